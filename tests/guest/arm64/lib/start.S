/* SPDX-License-Identifier: MIT */
/*
 * arm64 guest runtime entry. kvmkit starts vCPU 0 here at EL1h, DAIF
 * masked, MMU off, X0 = vCPU index, X1 = vCPU count (include/kvmkit/arm64.h);
 * the others come in at a64_secondary_entry through PSCI CPU_ON with
 * X0 = the context id, which the runtime uses for the vCPU index. Each
 * vCPU takes its stack, installs the vectors, turns the MMU on (identity
 * map, RAM cacheable: exclusives and coherent sharing with the host need
 * Normal memory) and calls a64_main(index, count).
 */
#include "arm64_abi.h"

#define STACK_SHIFT 14 /* 16 KiB per vCPU */

	.section .text.start, "ax"
	.global _start
_start:
	mov	x19, x0
	mov	x20, x1
	b	common

	.global a64_secondary_entry
a64_secondary_entry:
	mov	x19, x0
	mov	x20, #0
common:
	cmp	x19, #A64_MAX_VCPUS
	b.hs	reset
	adrp	x9, a64_stacks
	add	x9, x9, :lo12:a64_stacks
	add	x10, x19, #1
	lsl	x10, x10, #STACK_SHIFT
	add	sp, x9, x10
	adrp	x9, a64_vectors
	add	x9, x9, :lo12:a64_vectors
	msr	vbar_el1, x9
	msr	tpidr_el1, x19	/* the vCPU index, for a64_fault */
	mov	x0, x19
	bl	a64_mmu_on
	mov	x0, x19
	mov	x1, x20
	bl	a64_main
reset:
	movz	x0, #0x0009
	movk	x0, #0x8400, lsl #16	/* PSCI SYSTEM_RESET */
	hvc	#0
1:	wfi
	b	1b

/* Saves the caller-saved registers, calls @fn, restores them. */
.macro SAVE_CALL fn
	sub	sp, sp, #(22 * 8)
	stp	x0, x1, [sp, #0]
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x29, [sp, #144]
	str	x30, [sp, #160]
	bl	\fn
	ldp	x0, x1, [sp, #0]
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldp	x8, x9, [sp, #64]
	ldp	x10, x11, [sp, #80]
	ldp	x12, x13, [sp, #96]
	ldp	x14, x15, [sp, #112]
	ldp	x16, x17, [sp, #128]
	ldp	x18, x29, [sp, #144]
	ldr	x30, [sp, #160]
	add	sp, sp, #(22 * 8)
	eret
.endm

/* Anything but an IRQ at EL1 with SP_EL1 is a fault: a64_fault(). */
.macro VEC_FAULT kind
	.balign	0x80
	mov	x0, #\kind
	mrs	x1, esr_el1
	mrs	x2, elr_el1
	mrs	x3, far_el1
	b	a64_fault
.endm

	.section .text.vectors, "ax"
	.balign	0x800
	.global a64_vectors
a64_vectors:
	VEC_FAULT 0	/* current EL, SP_EL0: sync */
	VEC_FAULT 1	/* irq */
	VEC_FAULT 2	/* fiq */
	VEC_FAULT 3	/* serror */
	VEC_FAULT 4	/* current EL, SP_ELx: sync */
	.balign	0x80	/* current EL, SP_ELx: irq */
	b	irq_entry
	VEC_FAULT 6	/* fiq */
	VEC_FAULT 7	/* serror */
	VEC_FAULT 8	/* lower EL, AArch64 */
	VEC_FAULT 9
	VEC_FAULT 10
	VEC_FAULT 11
	VEC_FAULT 12	/* lower EL, AArch32 */
	VEC_FAULT 13
	VEC_FAULT 14
	VEC_FAULT 15

irq_entry:
	SAVE_CALL a64_irq

	.bss
	.balign	16
	.global a64_stacks
a64_stacks:
	.space	A64_MAX_VCPUS << STACK_SHIFT
