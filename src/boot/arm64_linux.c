// SPDX-License-Identifier: MIT
/*
 * arm64 Linux boot (include/kvmkit/arm64.h; the protocol is Linux's
 * Documentation/arch/arm64/booting.rst): the Image at RAM base +
 * text_offset, the initrd and the device tree at the top of RAM, vCPU 0
 * entering the image with X0 = the DTB. The image is untrusted: its header
 * is checked and every placement bounded before anything is written.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "boot"
#include "core/internal.h"
#include <kvmkit/arm64.h>
#include <kvmkit/loader.h>
#include <kvmkit/vcpu.h>

#define HDR_SIZE 64
#define HDR_TEXT_OFFSET 8
#define HDR_IMAGE_SIZE 16
#define HDR_FLAGS 24
#define HDR_MAGIC 0x38
#define FLAG_BE 1ull /* bit 0: big-endian kernel */
#define FLAG_PAGE_SHIFT 1 /* bits 2:1: 0 unspecified, 1 4K, 2 16K, 3 64K */
#define DTB_WINDOW (2ull << 20) /* the DTB lives in RAM's last 2 MiB */
#define PAGE 4096ull

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

bool kvmkit_arm64_image_detect(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	return buf && len >= HDR_SIZE &&
	       (uint32_t)(b[HDR_MAGIC] | b[HDR_MAGIC + 1] << 8 | b[HDR_MAGIC + 2] << 16 |
			  (uint32_t)b[HDR_MAGIC + 3] << 24) == KVMKIT_ARM64_IMAGE_MAGIC;
}

/* The image's footprint in memory (image_size, or the file for images
 * older than 3.17 that leave it 0) at RAM base + text_offset. */
static int check_image(const char *op, const uint8_t *b, size_t len, uint64_t ram, uint64_t *offset,
		       uint64_t *size)
{
	uint64_t flags;
	unsigned int page;

	if (!kvmkit_arm64_image_detect(b, len))
		return kvmk_err_format(op, "not an arm64 Linux Image (no \"ARM\\x64\" magic)");
	*offset = le64(b + HDR_TEXT_OFFSET);
	*size = le64(b + HDR_IMAGE_SIZE);
	flags = le64(b + HDR_FLAGS);
	if (!*size) {
		*size = len;
		*offset = 0x80000; /* what such old images assume */
	}
	page = (unsigned int)(flags >> FLAG_PAGE_SHIFT & 3);
	if (flags & FLAG_BE)
		return kvmk_err_format(op, "a big-endian kernel");
	if (page > 1)
		return kvmk_err_format(op, "a kernel with %s pages (kvmkit's vCPUs: 4K)",
				       page == 2 ? "16K" : "64K");
	if (*size < len || *offset % PAGE || *offset >= DTB_WINDOW || *size > ram ||
	    *offset > ram - *size)
		return kvmk_err_format(op,
				       "image header: text_offset 0x%llx image_size 0x%llx "
				       "(file %zu bytes, RAM %llu MiB)",
				       (unsigned long long)*offset, (unsigned long long)*size, len,
				       (unsigned long long)(ram >> 20));
	return 0;
}

int kvmkit_boot_arm64_linux(struct kvmkit_vm *vm, const void *image, size_t len, const void *initrd,
			    size_t initrd_len, const char *cmdline)
{
	const char *op = "kvmkit_boot_arm64_linux";
	uint64_t ram = kvmkit_vm_ram_size(vm), offset = 0, size = 0, dtb_gpa, kernel, top;
	struct kvmkit_arm64_platform p;
	uint64_t x[4] = { 0 };
	void *dtb = NULL;
	size_t dtb_len;
	int r;

	r = check_image(op, image, len, ram, &offset, &size);
	if (r)
		return r;
	r = kvmkit_arm64_platform_of(vm, &p);
	if (r)
		return r;
	kernel = KVMKIT_ARM64_RAM_BASE + offset;
	if (ram < DTB_WINDOW || offset + size > ram - DTB_WINDOW)
		return kvmk_err_param(op, "mem_size",
				      "too small for the kernel and its device tree",
				      "%llu MiB (image 0x%llx bytes)",
				      (unsigned long long)(ram >> 20), (unsigned long long)size);
	top = KVMKIT_ARM64_RAM_BASE + ram - DTB_WINDOW;
	if (initrd && initrd_len) {
		uint64_t room = top - (kernel + size);

		if (initrd_len > room)
			return kvmk_err_param(op, "initrd",
					      "does not fit between the kernel and "
					      "the device tree",
					      "%zu bytes (%llu free)", initrd_len,
					      (unsigned long long)room);
		p.initrd_start = (top - initrd_len) & ~(PAGE - 1);
		p.initrd_end = p.initrd_start + initrd_len;
	}
	p.bootargs = cmdline;
	r = kvmkit_arm64_fdt_build(&p, &dtb, &dtb_len);
	if (r)
		return r;
	dtb_gpa = top;
	/* Checked: now written (each write bounds-checked again). */
	r = kvmkit_vm_write(vm, kernel, image, len);
	if (!r && initrd && initrd_len)
		r = kvmkit_vm_write(vm, p.initrd_start, initrd, initrd_len);
	if (!r)
		r = kvmkit_vm_write(vm, dtb_gpa, dtb, dtb_len);
	free(dtb);
	if (r)
		return r;
	x[0] = dtb_gpa;
	r = kvmkit_arm64_vcpu_set_entry(kvmkit_vm_vcpu(vm, 0), kernel, x, 4);
	if (!r)
		kvmk_debug("Image at 0x%llx (0x%llx bytes), initrd 0x%llx-0x%llx, DTB at 0x%llx "
			   "(%zu bytes)",
			   (unsigned long long)kernel, (unsigned long long)size,
			   (unsigned long long)p.initrd_start, (unsigned long long)p.initrd_end,
			   (unsigned long long)dtb_gpa, dtb_len);
	return r;
}
