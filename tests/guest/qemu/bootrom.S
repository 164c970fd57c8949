/* SPDX-License-Identifier: MIT */
/*
 * Stand-in firmware for running the guest kit under QEMU/TCG where there is
 * no /dev/kvm (development aid only; see run.py). It recreates the entry
 * state kvmkit gives ELF64 guests (include/kvmkit/loader.h): boot GDT at
 * 0x1000, 4 GiB identity map with 2 MiB user pages at 0x2000..0x7fff,
 * long mode, CPL0, IF = 0, RDI = vCPU index, RSI = vCPU count,
 * RDX = RAM size, RSP = 0, then jumps to the guest's entry point.
 *
 * run.py loads the guest ELF with QEMU's generic loader and stores the
 * parameters at PARAMS: +0 entry, +8 vCPU count, +16 RAM size; +24 is the
 * next AP index.
 *
 * This 64 KiB image is mapped at 0xffff0000 and aliased at 0xf0000. The BSP
 * starts at the reset vector; it wakes the APs with INIT/SIPI (vector 0xf0:
 * they start at 0xf000:0000), and everyone takes the same path.
 */
#define ROM 0xf0000
#define PARAMS 0x9000
#define BOOT_GDT 0x1000
#define PML4 0x2000
#define PDPT 0x3000
#define PD 0x4000
#define APIC_ICR_LO 0xfee00300
#define APIC_ICR_HI 0xfee00310
#define PTE_P_RW_US 0x7
#define PDE_2M (0x80 | PTE_P_RW_US)

	.section .text, "ax", @progbits
	.code16
start16:
	cli
	cld
	mov	$(ROM >> 4), %ax
	mov	%ax, %ds
	lgdtl	rom_gdt_desc
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x08, $(ROM + start32)

	.code32
start32:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss

	mov	$0x1b, %ecx		/* IA32_APIC_BASE: bit 8 = BSP */
	rdmsr
	test	$0x100, %eax
	jz	.Lap

	/* BSP: boot GDT and page tables, as kvmkit writes them. */
	movl	$0, BOOT_GDT
	movl	$0, BOOT_GDT + 4
	movl	$0x0000ffff, BOOT_GDT + 8
	movl	$0x00af9a00, BOOT_GDT + 12
	movl	$0x0000ffff, BOOT_GDT + 16
	movl	$0x00cf9200, BOOT_GDT + 20

	mov	$PML4, %edi
	mov	$(2 * 4096 / 4), %ecx
	xor	%eax, %eax
	rep stosl
	movl	$(PDPT | PTE_P_RW_US), PML4
	movl	$((PD + 0x0000) | PTE_P_RW_US), PDPT + 0
	movl	$((PD + 0x1000) | PTE_P_RW_US), PDPT + 8
	movl	$((PD + 0x2000) | PTE_P_RW_US), PDPT + 16
	movl	$((PD + 0x3000) | PTE_P_RW_US), PDPT + 24
	mov	$PD, %edi
	mov	$PDE_2M, %eax
1:	mov	%eax, (%edi)
	movl	$0, 4(%edi)
	add	$8, %edi
	add	$0x200000, %eax
	jnc	1b			/* 2048 entries: until 4 GiB wraps */

	movl	$1, PARAMS + 24		/* next AP index */
	cmpl	$1, PARAMS + 8
	jbe	1f
	movl	$0, APIC_ICR_HI
	movl	$0x000c4500, APIC_ICR_LO	/* INIT, all excluding self */
	movl	$0x000c46f0, APIC_ICR_LO	/* SIPI, vector 0xf0 */
1:	xor	%esi, %esi
	jmp	.Llong

.Lap:
	mov	$1, %esi
	lock xadd %esi, PARAMS + 24

.Llong:
	mov	$0x620, %eax		/* CR4 = PAE | OSFXSR | OSXMMEXCPT */
	mov	%eax, %cr4
	mov	$PML4, %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx	/* EFER = LME | SCE */
	mov	$0x101, %eax
	xor	%edx, %edx
	wrmsr
	mov	$0x80010033, %eax	/* CR0 = PG | WP | NE | ET | MP | PE */
	mov	%eax, %cr0
	ljmp	$0x18, $(ROM + start64)

	.code64
start64:
	lgdt	ROM + boot_gdt_desc
	ljmpl	*(ROM + boot_cs_ptr)	/* no stack yet (RSP = 0 on entry) */
reload_cs:
	mov	$0x10, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %fs
	mov	%eax, %gs
	mov	%eax, %ss
	mov	%esi, %edi		/* vCPU index */
	mov	PARAMS + 8, %rsi
	mov	PARAMS + 16, %rdx
	mov	PARAMS + 0, %rax
	xor	%esp, %esp
	xor	%ebx, %ebx
	xor	%ecx, %ecx
	xor	%ebp, %ebp
	jmp	*%rax

	.balign	8
rom_gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08: code32 */
	.quad	0x00cf92000000ffff	/* 0x10: data */
	.quad	0x00af9a000000ffff	/* 0x18: code64 */
rom_gdt_desc:
	.word	4 * 8 - 1
	.long	ROM + rom_gdt
boot_gdt_desc:
	.word	3 * 8 - 1
	.quad	BOOT_GDT
boot_cs_ptr:
	.long	ROM + reload_cs
	.word	0x08

	.org	0xfff0
	.code16
	jmp	start16
	.org	0x10000

	.section .note.GNU-stack, "", @progbits
