/* SPDX-License-Identifier: MIT */
/*
 * The contract between the arm64 guest programs and the host tests that
 * run them (tests/arm64/): where things are in guest memory and what the
 * values mean. Macros only: guest C, guest assembly and host C include it.
 *
 * The lab: every vCPU runs a command loop on its own mailbox. The host
 * writes the arguments, then the command, then bumps `seq`; the vCPU runs
 * the command, writes `result` and sets `done` = `seq`. Interrupts are
 * counted per vCPU and INTID in `counts` (32-bit words) as they are taken.
 */
#ifndef KVMKIT_ARM64_ABI_H
#define KVMKIT_ARM64_ABI_H

#ifdef __ASSEMBLER__
#define A64_U64(x) x
#else
#define A64_U64(x) x##ULL
#endif

#define A64_RAM_BASE A64_U64(0x80000000)
#define A64_MIN_RAM (16 << 20)
#define A64_MAX_VCPUS 8
#define A64_UART A64_U64(0x09000000)
#define A64_GICD A64_U64(0x08000000)
#define A64_GICC A64_U64(0x08010000) /* GICv2 CPU interface */
#define A64_GICR A64_U64(0x080a0000) /* GICv3 redistributors */
#define A64_GICR_STRIDE 0x20000
#define A64_GITS A64_U64(0x08080000) /* GICv3 ITS */
#define A64_GITS_TRANSLATER (A64_GITS + 0x10040)
#define A64_LPI_BASE 8192

/* The ABI area: 2 MiB into RAM, past the image. */
#define A64_ABI (A64_RAM_BASE + 0x200000)
/* Mailbox of vCPU c: 64 bytes at A64_ABI + c * 64. */
#define A64_MBOX(c) (A64_ABI + (c)*64)
#define A64_MBOX_SEQ 0
#define A64_MBOX_DONE 8
#define A64_MBOX_CMD 16
#define A64_MBOX_ARG0 24
#define A64_MBOX_ARG1 32
#define A64_MBOX_ARG2 40
#define A64_MBOX_RESULT 48
#define A64_MBOX_ONLINE 56 /* the vCPU's loop runs (A64_ONLINE_MAGIC) */
#define A64_ONLINE_MAGIC A64_U64(0x6f6e6c696e650a00)
/* A fault: vCPU c's ESR, ELR, FAR at A64_FAULT(c) + 0/8/16 before the
 * guest asks for a reset. */
#define A64_FAULT(c) (A64_ABI + 0x1000 + (c)*32)
/* Interrupts taken by vCPU c on INTID i: a u32 at A64_COUNT(c, i); INTIDs
 * 0..1023 and LPIs 8192..9215 have a slot (others are not counted). */
#define A64_COUNT_SLOT(i) ((i) < 1024 ? (i) : (i)-A64_LPI_BASE + 1024)
#define A64_COUNT(c, i) (A64_ABI + 0x2000 + (c)*0x2000 + A64_COUNT_SLOT(i) * 4)
/* The LPI tables the guest gives its GIC: 64 KiB each, from RAM + 4 MiB:
 * properties, each vCPU's pending table, the ITS command queue, device
 * table, collection table, then 4 KiB of ITT per device id (< 16). */
#define A64_LPI_AREA (A64_RAM_BASE + 0x400000)
#define A64_LPI_PROP A64_LPI_AREA
#define A64_LPI_PEND(c) (A64_LPI_AREA + 0x10000 + (c)*0x10000)
#define A64_ITS_CMDQ (A64_LPI_AREA + 0x90000)
#define A64_ITS_DEVTAB (A64_LPI_AREA + 0xa0000)
#define A64_ITS_COLLTAB (A64_LPI_AREA + 0xb0000)
#define A64_ITS_ITT(d) (A64_LPI_AREA + 0xc0000 + (d)*0x1000)
#define A64_ITS_MAX_DEVICES 16
#define A64_ITS_EVENTS 32

/* Commands (result in the mailbox; 0 unless said otherwise). */
#define A64_CMD_NOP 0
/* arg0 = GIC version (2 or 3): the distributor (vCPU 0 only) and this
 * vCPU's CPU interface (and redistributor) on, IRQs unmasked. */
#define A64_CMD_GIC_INIT 1
/* arg0 = INTID (SPI), arg1 = 1 edge / 0 level, arg2 = target vCPU index
 * (GICv2 target list bit / GICv3 affinity of that vCPU's MPIDR, which
 * the host passes in bits 63:8 of arg2 for GICv3). Enables it. */
#define A64_CMD_SPI_ENABLE 2
/* arg0 = INTID: disabled at the distributor. */
#define A64_CMD_SPI_DISABLE 3
/* arg0 = MPIDR of the vCPU to start, arg1 = its index: PSCI CPU_ON to
 * the runtime's secondary entry; result = PSCI's return value. */
#define A64_CMD_CPU_ON 4
/* result = this vCPU's MPIDR_EL1. */
#define A64_CMD_MPIDR 5
/* PSCI SYSTEM_OFF / SYSTEM_RESET (no result: the VM stops). */
#define A64_CMD_SYSTEM_OFF 6
#define A64_CMD_SYSTEM_RESET 7
/* result = PSCI_VERSION. */
#define A64_CMD_PSCI_VERSION 8
/* arg0 = a GICD register offset: result = its 32-bit value. */
#define A64_CMD_GICD_READ 9
/* arg0 = INTID 0..31 (SGI or PPI): enabled on this vCPU. arg1 = 1: a PPI
 * is made edge-triggered where the GIC lets it (KVM keeps its PPIs level);
 * arg1 = 2: the handler disables it again when it takes it (a driver
 * quieting a level source), so a line held high counts once. */
#define A64_CMD_PRIVATE_ENABLE 10
/* arg0 = SGI INTID 0..15, arg1 = target vCPU index, arg2 = its MPIDR:
 * one SGI from this vCPU to it. */
#define A64_CMD_SGI 11
/* arg0 = ticks: the virtual timer fires once that far ahead (its PPI,
 * INTID 27, enabled first); the handler masks it again. */
#define A64_CMD_VTIMER 12
#define A64_VTIMER_INTID 27
/* GICv3: LPIs on for this vCPU (its redistributor's property and pending
 * tables). */
#define A64_CMD_LPI_INIT 13
/* GICv3: the ITS on (device and collection tables, command queue). */
#define A64_CMD_ITS_INIT 14
/* arg0 = device id (< 16), arg1 = event id (< 32), arg2 = LPI INTID |
 * target vCPU << 32: the ITS maps it (MAPC, MAPD once per device, MAPTI,
 * SYNC), the LPI enabled. result = 0, or 1 if the ITS never consumed the
 * commands. */
#define A64_CMD_ITS_MAP 15
/* PSCI CPU_OFF on this vCPU (no result: it stops; started again, it drops
 * this command). */
#define A64_CMD_CPU_OFF 16
/* arg0 = an affinity: result = PSCI AFFINITY_INFO (0 on, 1 off, 2 pending). */
#define A64_CMD_AFFINITY_INFO 17
/* A load pair from the UART: an MMIO access KVM cannot decode for
 * userspace (no ISV), which must stop the VM, not kvmkit. */
#define A64_CMD_BAD_MMIO 18
/* arg0 = a virtio-rng's virtio-mmio window, arg1 = requests (n), arg2 =
 * its INTID: the guest's driver (lib/virtio.c) sets the device up, makes
 * n requests of 16 bytes one at a time, each time waiting for the used
 * buffer and one more interrupt counted on that INTID (then acknowledging
 * InterruptStatus), and resets it. result = n, or an A64_VIRTIO_ERR_*. */
#define A64_CMD_VIRTIO_RNG 19
#define A64_VIRTIO_ERR_ID A64_U64(0xfff1) /* not a version 2 virtio-rng */
#define A64_VIRTIO_ERR_FEATURES A64_U64(0xfff2)
#define A64_VIRTIO_ERR_QUEUE A64_U64(0xfff3)
#define A64_VIRTIO_ERR_TIMEOUT A64_U64(0xfff4) /* no used buffer or interrupt */
#define A64_VIRTIO_ERR_LEN A64_U64(0xfff5)
#define A64_VIRTIO_ERR_DATA A64_U64(0xfff6) /* 16 zero bytes */
/* The driver's queue (descriptors, rings, buffers): 8 KiB at RAM + 3 MiB. */
#define A64_VIRTIO_AREA (A64_RAM_BASE + 0x300000)

#endif
