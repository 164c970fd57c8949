/* SPDX-License-Identifier: MIT */
/*
 * The contract between the multiboot probe payload (progs/mb_probe.c, a
 * 32-bit multiboot image) and tests/kvm/test_multiboot.c: the order of the
 * values it reports (one 4-byte write each to port 0x500), the lines it
 * prints on COM1, and its debug-exit status. Macros and an enum only.
 */
#ifndef KVMKIT_MB_PROBE_ABI_H
#define KVMKIT_MB_PROBE_ABI_H

/* Loaded (and linked) at 4 MiB, as kvm-unit-tests' x86 payloads are;
 * mb_probe_low, the same program, at 0x8000, the usual link address of
 * real-mode test payloads. */
#define MB_PROBE_LOAD_ADDR 0x400000
#define MB_PROBE_LOW_LOAD_ADDR 0x8000
/* Written to isa-debug-exit at the end: status (V << 1) | 1. */
#define MB_PROBE_EXIT_OK 0x21
#define MB_PROBE_STATUS_OK ((MB_PROBE_EXIT_OK << 1) | 1)
/* EAX was not 0x2BADB002: the probe stops after reporting it. */
#define MB_PROBE_EXIT_BAD_MAGIC 0x22
/* The real-mode AP start-up code the probe copies to page 0 stores this at
 * 0x800 (the probe reads 0x800 before sending INIT/SIPI, expecting 0). */
#define MB_PROBE_AP_MARKER 0x5a5a0001
#define MB_PROBE_AP_MARKER_ADDR 0x800
/* IRQ lines the probe raises and lowers through the test device's ports
 * (0x2000 + n), MB_PROBE_IRQ_ROUNDS times each, with the PIC masked and the
 * lines routed through the IOAPIC to the BSP's LAPIC: A (a legacy ISA pin)
 * edge-triggered, B (an IOAPIC-only pin) level-triggered. B's handler
 * lowers B before its EOI; A is lowered by the probe after its handler ran.
 * The handlers count interrupts and record the LAPIC's in-service vector. */
#define MB_PROBE_IRQ_A 10
#define MB_PROBE_IRQ_B 17
#define MB_PROBE_VEC_A 0x40
#define MB_PROBE_VEC_B 0x41
#define MB_PROBE_IRQ_ROUNDS 2
/* Values the probe writes to the test device and reads back. */
#define MB_PROBE_SCRATCH0 0x1122aa44 /* 0x11223344, then byte 1 = 0xaa */
#define MB_PROBE_SCRATCH1 0xcafef00d
#define MB_PROBE_MMIO_VALUE 0x600dcafe
#define MB_PROBE_FLUSH_VALUE 0x0f1a5bed
#define MB_PROBE_PIC_MASTER_MASK 0xfb
#define MB_PROBE_PIC_SLAVE_MASK 0xff
/* Things the loader placed, each checked against the probe's image. */
#define MB_PROBE_OVL_INFO (1u << 0) /* the information structure */
#define MB_PROBE_OVL_CMDLINE (1u << 1)
#define MB_PROBE_OVL_MMAP (1u << 2)
#define MB_PROBE_OVL_MODS (1u << 3) /* the module list */
#define MB_PROBE_OVL_MOD_DATA (1u << 4)
#define MB_PROBE_OVL_MOD_STRING (1u << 5)
#define MB_PROBE_OVL_GDT (1u << 6)
#define MB_PROBE_INTACT 0x1a7ac7

enum mb_probe_report {
	MBP_EAX,
	MBP_EBX,
	MBP_FLAGS,
	MBP_MEM_LOWER,
	MBP_MEM_UPPER,
	MBP_MMAP_COUNT,
	MBP_MMAP_USABLE_LOW_KIB, /* type-1 bytes below 4 GiB, in KiB */
	MBP_MMAP_USABLE_HIGH_MIB, /* type-1 bytes at or above 4 GiB, in MiB */
	MBP_MMAP_RESERVED_KIB, /* type-2 bytes, in KiB */
	MBP_CMDLINE_LEN,
	MBP_MODS_COUNT,
	MBP_MOD_SIZE,
	MBP_MOD_FIRST_WORD,
	MBP_MOD_START_PAGE_OFFSET, /* mod_start & 0xfff */
	MBP_FW_SIGNATURE,
	MBP_FW_ID,
	MBP_FW_NB_CPUS,
	MBP_FW_MAX_CPUS,
	MBP_FW_RAM_LO,
	MBP_FW_RAM_HI,
	MBP_FW_PAST_END, /* 4 bytes read after NB_CPUS's 2 */
	MBP_PIC_MASTER,
	MBP_PIC_SLAVE,
	MBP_SCRATCH0,
	MBP_SCRATCH1,
	MBP_MMIO,
	MBP_FLUSH,
	MBP_IRQ_A_COUNT, /* interrupts taken for line A */
	MBP_IRQ_A_VECTOR, /* in-service vector A's handler saw; 0: none, ~0: several */
	MBP_IRQ_A_ENTRY, /* A's redirection entry, low word, afterwards */
	MBP_IRQ_B_COUNT,
	MBP_IRQ_B_VECTOR,
	MBP_IRQ_B_ENTRY, /* remote IRR (bit 14) must be clear again */
	MBP_PAGE0_BEFORE,
	MBP_AP_MARKER, /* 0 when there is only one CPU */
	MBP_IMAGE_START, /* the probe's own image: [start, end), .bss included */
	MBP_IMAGE_END,
	MBP_GDT_BASE, /* GDTR base at entry (kvmkit's area) */
	MBP_OVERLAPS, /* MB_PROBE_OVL_* bits: what lies over the image (0) */
	MBP_MOD_HASH, /* FNV-1a (32-bit) of the first module's bytes; 0: none */
	MBP_IMAGE_INTACT, /* MB_PROBE_INTACT: .data as linked, .bss zero at entry */
	MBP_COUNT
};

#endif
