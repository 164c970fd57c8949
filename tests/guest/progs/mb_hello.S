/* SPDX-License-Identifier: MIT */
/*
 * The smallest Multiboot payload that shows it ran: four instructions in
 * 32-bit protected mode write one byte to COM1 and stop the VM through
 * isa-debug-exit. Start-up benchmarks time exec -> this byte
 * (bench/startup_bare.c, bench/startup_exec.c).
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .text.entry, "ax"
	.code32
	.globl _start
_start:
	mov $0x3f8, %dx		/* COM1 THR */
	mov $'K', %al
	out %al, %dx		/* the byte being timed */
	out %al, $0xf4		/* isa-debug-exit: status ('K' << 1) | 1 */
	/* Not reached where the debug-exit device exists. */
1:	cli
	hlt
	jmp 1b
