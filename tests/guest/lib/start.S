/* SPDX-License-Identifier: MIT */
/*
 * Guest entry, CPL0 -> CPL3 switch and interrupt entry stubs.
 *
 * kvmkit starts every vCPU here in 64-bit mode at CPL0, interrupts off,
 * RSP = 0, RDI = vCPU index, RSI = vCPU count, RDX = RAM size. CPL0 code
 * may run emulated on some hosts, so this path is straight-line: pick the
 * stacks, let guest_cpu_init() load the descriptor tables, then iretq to
 * CPL3 where everything else runs.
 */
#include "arch.h"

	.section .text.entry, "ax", @progbits
	.code64
	.globl	_start
	.type	_start, @function
_start:
	cld
	cmp	$GUEST_MAX_VCPUS, %rdi
	jae	.Ltoo_many

	/* Kernel stack: top of guest_kstacks[id]. */
	lea	1(%rdi), %rax
	shl	$KSTACK_SHIFT, %rax
	lea	guest_kstacks(%rax), %rsp

	mov	%rdi, %r12
	mov	%rsi, %r13
	call	guest_cpu_init		/* (id, count, ram_size) */

	/* iretq to user_entry at CPL3 on top of guest_ustacks[id]. */
	lea	1(%r12), %rax
	shl	$USTACK_SHIFT, %rax
	lea	guest_ustacks(%rax), %rax
	pushq	$SEL_UDATA
	push	%rax
	pushq	$RFLAGS_USER
	pushq	$SEL_UCODE
	pushq	$user_entry
	mov	%r12, %rdi
	mov	%r13, %rsi
	iretq

.Ltoo_many:
	mov	$GUEST_STATUS_TOO_MANY_VCPUS, %eax
	mov	$GUEST_REPORT_POWER_OFF, %edx
	out	%eax, %dx
1:	cli
	hlt
	jmp	1b
	.size	_start, . - _start

	.text
	/* CPL3, RSP 16-byte aligned, RDI = id, RSI = count. */
	.type	user_entry, @function
user_entry:
	call	guest_user_start	/* does not return */
	ud2
	.size	user_entry, . - user_entry

/*
 * The kit's gate from CPL3 to CPL0: `call guest_gate_insn` runs the ud2
 * below; the #UD entry sees that address in the frame and treats it as a
 * request instead of a fault. A ud2 gate rather than `int $n` or `syscall`
 * because on nested hypervisors that run guest CPL3 in hardware ring 3
 * (KVM-PVM) `int $n` from CPL3 raises #UD and `syscall` does not change
 * privilege, while exceptions are delivered correctly everywhere.
 *
 * Request: EAX = GATE_* (arch.h), RDI/RSI/RDX = arguments; result in RAX,
 * every other register preserved (GATE_CALL: as by a C call).
 * The entry runs with IF = 0 (interrupt gate) on the vCPU's kernel stack.
 */
	.globl	guest_gate_insn
	.type	guest_gate_insn, @function
guest_gate_insn:
	ud2
	ret
	.size	guest_gate_insn, . - guest_gate_insn

	.type	ud_entry, @function
ud_entry:
	cmpq	$guest_gate_insn, (%rsp)
	je	1f
	pushq	$0
	pushq	$6
	jmp	exception_common
1:	addq	$2, (%rsp)		/* resume at the ret after ud2 */
	cmp	$GATE_OUT, %eax
	je	.Lout
	cmp	$GATE_OUTS, %eax
	je	.Louts
	cmp	$GATE_IN, %eax
	je	.Lin
	cmp	$GATE_CALL, %eax
	je	.Lcall
	cmp	$GATE_IRQ_ON, %eax
	je	.Lirq_on
	cmp	$GATE_IRQ_OFF, %eax
	je	.Lirq_off
	mov	$-1, %rax
	iretq
.Lout:	/* RDX = port, RSI = value, RDI = size */
	mov	%esi, %eax
	cmp	$1, %edi
	je	2f
	cmp	$2, %edi
	je	3f
	out	%eax, %dx
	iretq
2:	out	%al, %dx
	iretq
3:	out	%ax, %dx
	iretq
.Louts:	/* RDX = port, RSI = buffer, RDI = count: one rep outsb */
	push	%rcx
	push	%rsi
	mov	%rdi, %rcx
	cld
	rep outsb
	pop	%rsi
	pop	%rcx
	iretq
.Lin:	/* RDX = port, RDI = size */
	xor	%eax, %eax
	cmp	$1, %edi
	je	2f
	cmp	$2, %edi
	je	3f
	in	%dx, %eax
	iretq
2:	in	%dx, %al
	iretq
3:	in	%dx, %ax
	iretq
.Lcall:	/* RDI = fn, RSI = argument: fn(arg); the caller clobbers all */
	sub	$8, %rsp		/* 5-word frame: realign for the call */
	mov	%rdi, %rax
	mov	%rsi, %rdi
	call	*%rax
	add	$8, %rsp
	iretq
.Lirq_on:	/* the caller's RFLAGS.IF, restored by iretq */
	orq	$RFLAGS_IF, 16(%rsp)
	iretq
.Lirq_off:
	andq	$~RFLAGS_IF, 16(%rsp)
	iretq
	.size	ud_entry, . - ud_entry

/*
 * Vector entry stubs, one per 16 bytes (each is at most 12): push a zero
 * error code where the CPU pushes none, push the vector, jump to the common
 * code. guest_vector_stubs[] holds their addresses for the IDT.
 */
	.balign	16
.Lstubs:
	.set	.Lvec, 0
	.rept	NUM_VECTORS
	.balign	16
	.if (.Lvec == 8) || ((.Lvec >= 10) && (.Lvec <= 14)) || (.Lvec == 17) || (.Lvec == 21) || (.Lvec == 29) || (.Lvec == 30)
	.else
	pushq	$0
	.endif
	pushq	$.Lvec
	.if .Lvec < 32
	jmp	exception_common
	.else
	jmp	irq_common
	.endif
	.set	.Lvec, .Lvec + 1
	.endr

/* Exceptions (CPL0): save everything, hand the frame to C, never return. */
	.type	exception_common, @function
exception_common:
	cld
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, %rdi		/* 22 words pushed: still 16-aligned */
	call	guest_exception
1:	hlt
	jmp	1b
	.size	exception_common, . - exception_common

/*
 * Interrupts 32..255: at CPL3 or CPL0 depending on the gate. Saves the
 * caller-saved registers, calls guest_irq_handlers[vector](vector).
 */
	.type	irq_common, @function
irq_common:
	cld
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	mov	72(%rsp), %edi		/* vector; 16 words pushed: aligned */
	call	*guest_irq_handlers(, %rdi, 8)
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	add	$16, %rsp		/* vector, error code */
	iretq
	.size	irq_common, . - irq_common

	.globl	guest_ud_entry
	.set	guest_ud_entry, ud_entry

	.section .rodata
	.balign	8
	.globl	guest_vector_stubs
guest_vector_stubs:
	.set	.Lvec, 0
	.rept	NUM_VECTORS
	.quad	.Lstubs + 16 * .Lvec
	.set	.Lvec, .Lvec + 1
	.endr
	.size	guest_vector_stubs, . - guest_vector_stubs

	.section .note.GNU-stack, "", @progbits
