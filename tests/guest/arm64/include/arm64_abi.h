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
/* Interrupts taken by vCPU c on INTID i: a u32 at A64_COUNT(c, i). */
#define A64_COUNT(c, i) (A64_ABI + 0x2000 + (c)*0x1000 + (i)*4)

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

#endif
