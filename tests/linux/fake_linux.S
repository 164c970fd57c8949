/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for a Linux kernel's protected-mode part, for the kvm suite
 * (tests/linux/test_fake_linux.sh): wrapped into a bzImage by
 * mkbzimage.py, loaded at 16 MiB, entered at +0x200 through the 64-bit boot
 * protocol. A straight line of CPL0 code (cheap on KVM-PVM): it checks what
 * kvmkit promised (segments, RSI = boot_params and its fields, the initrd,
 * the command line, the RSDP) and exits through isa-debug-exit with the
 * number of the first failed check (status (n << 1) | 1), or, all well,
 * does what the command line's first letter says: 'p' ACPI S5 poweroff
 * (status 0), 'r' the ACPI reset register, 'k' the i8042 reset (118).
 */
	.code64
	.text
	.globl	_start
_start:
	.fill	0x200, 1, 0xcc		/* the 64-bit entry is at +0x200 */
entry64:
	mov	$1, %edi
	mov	%cs, %ax
	cmp	$0x10, %ax		/* __BOOT_CS */
	jne	fail
	inc	%edi
	mov	%ds, %ax
	cmp	$0x18, %ax		/* __BOOT_DS */
	jne	fail
	mov	%ss, %ax
	cmp	$0x18, %ax
	jne	fail
	inc	%edi			/* 3 */
	cmp	$0x8000, %rsi		/* boot_params */
	jne	fail
	inc	%edi			/* 4 */
	cmpl	$0x53726448, 0x202(%rsi) /* "HdrS" copied from the image */
	jne	fail
	inc	%edi			/* 5 */
	cmpb	$0xff, 0x210(%rsi)	/* type_of_loader */
	jne	fail
	inc	%edi			/* 6 */
	cmpb	$3, 0x1e8(%rsi)		/* e820 entries (RAM below 3 GiB) */
	jne	fail
	cmpl	$0x9fc00, 0x2d0 + 8(%rsi) /* first entry: 0 .. 0x9fc00 RAM */
	jne	fail
	inc	%edi			/* 7 */
	mov	0x218(%rsi), %eax	/* ramdisk_image */
	cmpl	$0x44524e49, (%rax)	/* the initrd starts "INRD" */
	jne	fail
	cmpl	$4096, 0x21c(%rsi)	/* ramdisk_size */
	jne	fail
	inc	%edi			/* 8 */
	mov	0x70(%rsi), %rax	/* acpi_rsdp_addr */
	cmp	$0xe0000, %rax
	jne	fail
	cmpl	$0x20445352, (%rax)	/* "RSD " */
	jne	fail
	inc	%edi			/* 9 */
	mov	0x228(%rsi), %ebx	/* cmd_line_ptr */
	movzbl	(%rbx), %eax
	cmp	$'p', %al
	je	poweroff
	cmp	$'r', %al
	je	acpi_reset
	cmp	$'k', %al
	je	kbd_reset
	jmp	fail
poweroff:
	mov	$0x34, %al		/* SLP_TYP 5 << 2 | SLP_EN */
	mov	$0x600, %dx
	out	%al, %dx
	jmp	hang
acpi_reset:
	mov	$1, %al
	mov	$0x602, %dx
	out	%al, %dx
	jmp	hang
kbd_reset:
	mov	$0xfe, %al
	out	%al, $0x64
	jmp	hang
fail:
	mov	%edi, %eax
	out	%al, $0xf4		/* isa-debug-exit: status (n << 1) | 1 */
hang:
	hlt
	jmp	hang
