/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for a PVH vmlinux, for the kvm suite (test_fake_linux.sh): an
 * ELF64 at 1 MiB whose XEN_ELFNOTE_PHYS32_ENTRY note points at 32-bit code.
 * Straight-line CPL0 code: it checks the PVH entry state kvmkit promised
 * (flat segments 0x08/0x10, paging off, EBX = hvm_start_info and its
 * fields, the initrd as module 0, the command line, the RSDP, the memory
 * map) and exits through isa-debug-exit with the number of the first
 * failed check (status (n << 1) | 1), or powers off through ACPI S5.
 */
	.section .note.Xen, "a", @note
	.balign	4
	.long	4			/* namesz */
	.long	8			/* descsz */
	.long	18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.quad	entry32

	.text
	.code32
	.globl	_start
_start:
entry32:
	mov	$1, %edi
	mov	%cs, %ax
	cmp	$0x08, %ax
	jne	fail
	mov	%ds, %ax
	cmp	$0x10, %ax
	jne	fail
	inc	%edi			/* 2: paging off, protected mode */
	mov	%cr0, %eax
	test	$0x80000000, %eax
	jnz	fail
	test	$1, %eax
	jz	fail
	inc	%edi			/* 3 */
	cmp	$0x8000, %ebx
	jne	fail
	cmpl	$0x336ec578, (%ebx)	/* magic */
	jne	fail
	cmpl	$1, 4(%ebx)		/* version */
	jne	fail
	inc	%edi			/* 4: module 0 is the initrd */
	cmpl	$1, 12(%ebx)		/* nr_modules */
	jne	fail
	mov	16(%ebx), %esi		/* modlist_paddr */
	mov	(%esi), %eax		/* paddr */
	cmpl	$0x44524e49, (%eax)	/* "INRD" */
	jne	fail
	cmpl	$4096, 8(%esi)		/* size */
	jne	fail
	inc	%edi			/* 5 */
	mov	32(%ebx), %eax		/* rsdp_paddr */
	cmpl	$0x20445352, (%eax)	/* "RSD " */
	jne	fail
	inc	%edi			/* 6 */
	cmpl	$3, 48(%ebx)		/* memmap_entries */
	jne	fail
	mov	40(%ebx), %esi		/* memmap_paddr */
	cmpl	$2, 24 + 16(%esi)	/* entry 1: reserved */
	jne	fail
	inc	%edi			/* 7 */
	mov	24(%ebx), %esi		/* cmdline_paddr */
	cmpb	$'p', (%esi)
	jne	fail
	mov	$0x34, %al		/* SLP_TYP 5 << 2 | SLP_EN */
	mov	$0x600, %dx
	out	%al, %dx
	jmp	hang
fail:
	mov	%edi, %eax
	out	%al, $0xf4
hang:
	hlt
	jmp	hang
