// SPDX-License-Identifier: MIT
/*
 * Linux x86 boot protocol: the bzImage setup header (validated field by
 * field against the image and the guest's RAM), placement of the kernel,
 * initrd and command line, the e820 map and boot_params. The image is user
 * input: every field is range-checked in 64-bit arithmetic before use and
 * nothing is written to guest RAM before everything has passed.
 */
#include <stdint.h>
#include <string.h>

#define KVMK_LOG_MODULE "linux"
#include "core/internal.h"
#include "boot/boot_internal.h"
#include <kvmkit/linux_boot.h>

#define OP "kvmkit_bzimage_parse"
#define ONE_MIB 0x100000ull
#define PAGE 4096ull
#define BOOT_PARAMS_HDR_END 0x290 /* boot_params has padding after the header */

static uint16_t rd16(const uint8_t *b, size_t off)
{
	uint16_t v;

	memcpy(&v, b + off, 2);
	return v;
}

static uint32_t rd32(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, 4);
	return v;
}

static uint64_t rd64(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, 8);
	return v;
}

static void wr16(uint8_t *b, size_t off, uint16_t v)
{
	memcpy(b + off, &v, 2);
}

static void wr32(uint8_t *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, 4);
}

static void wr64(uint8_t *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, 8);
}

bool kvmkit_bzimage_detect(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	return buf && len >= KVMKIT_BZ_HEADER + 4 && rd16(b, KVMKIT_BZ_BOOT_FLAG) == 0xaa55 &&
	       !memcmp(b + KVMKIT_BZ_HEADER, "HdrS", 4);
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The checks on a parsed (or hand-made) description that placement and
 * loading rely on: a caller may pass one that did not come from the
 * parser. */
static int check_desc(const char *op, const struct kvmkit_bzimage *img)
{
	if (img->version < KVMKIT_LINUX_MIN_VERSION)
		return kvmk_err_format(
			op,
			"boot protocol %u.%02u is too old: kvmkit needs %u.%02u (xloadflags, the 64-bit entry)",
			img->version >> 8, img->version & 0xff, KVMKIT_LINUX_MIN_VERSION >> 8,
			KVMKIT_LINUX_MIN_VERSION & 0xff);
	if (!(img->xloadflags & KVMKIT_BZ_XLF_KERNEL_64))
		return kvmk_err_format(
			op, "xloadflags 0x%x: no 64-bit entry point (not an x86_64 kernel)",
			img->xloadflags);
	if (!(img->loadflags & KVMKIT_BZ_LOADED_HIGH))
		return kvmk_err_format(op, "loadflags 0x%x: not a bzImage (LOADED_HIGH clear)",
				       img->loadflags);
	if (!pow2(img->kernel_alignment) || img->kernel_alignment < PAGE ||
	    img->kernel_alignment > (1u << 30))
		return kvmk_err_format(
			op, "kernel_alignment 0x%x: not a power of two from 4 KiB to 1 GiB",
			img->kernel_alignment);
	if (img->min_alignment < 12 || img->min_alignment > 30 ||
	    (1ull << img->min_alignment) > img->kernel_alignment)
		return kvmk_err_format(op,
				       "min_alignment %u: not from 12 to log2(kernel_alignment)",
				       img->min_alignment);
	if (img->kernel_size <= 0x200 || img->kernel_size > KVMKIT_IMAGE_MAX_SIZE)
		return kvmk_err_format(op, "protected-mode kernel of %llu bytes: no 64-bit entry",
				       (unsigned long long)img->kernel_size);
	if (img->init_size < img->kernel_size || img->init_size > (1u << 30))
		return kvmk_err_format(
			op, "init_size 0x%x: smaller than the kernel (0x%llx bytes) or above 1 GiB",
			img->init_size, (unsigned long long)img->kernel_size);
	if (img->pref_address % PAGE || img->pref_address > (1ull << 32))
		return kvmk_err_format(op, "pref_address 0x%llx: not page aligned below 4 GiB",
				       (unsigned long long)img->pref_address);
	if (img->initrd_addr_max < ONE_MIB)
		return kvmk_err_format(op, "initrd_addr_max 0x%x: below 1 MiB",
				       img->initrd_addr_max);
	if (!img->cmdline_size)
		return kvmk_err_format(op, "cmdline_size 0: no room for a command line");
	if (img->header_end < KVMKIT_BZ_INIT_SIZE + 4 || img->header_end > BOOT_PARAMS_HDR_END ||
	    img->header_end > img->setup_size)
		return kvmk_err_format(
			op,
			"setup header ends at 0x%x: not from 0x%x to 0x%x inside the setup code",
			img->header_end, KVMKIT_BZ_INIT_SIZE + 4, BOOT_PARAMS_HDR_END);
	if (img->kernel_offset != img->setup_size)
		return kvmk_err_format(op, "kernel at file offset 0x%llx, not after the setup code",
				       (unsigned long long)img->kernel_offset);
	return 0;
}

int kvmkit_bzimage_parse(const void *buf, size_t len, struct kvmkit_bzimage *out)
{
	const uint8_t *b = buf;
	unsigned int sects;
	uint64_t syssize;

	memset(out, 0, sizeof(*out));
	if (!buf || len < BOOT_PARAMS_HDR_END)
		return kvmk_err_format(OP, "file too short for a setup header (%zu bytes)", len);
	if (rd16(b, KVMKIT_BZ_BOOT_FLAG) != 0xaa55)
		return kvmk_err_format(OP, "boot_flag 0x%x, not 0xaa55: not a Linux kernel",
				       rd16(b, KVMKIT_BZ_BOOT_FLAG));
	if (memcmp(b + KVMKIT_BZ_HEADER, "HdrS", 4))
		return kvmk_err_format(OP, "no \"HdrS\" magic: not a Linux bzImage");
	sects = b[KVMKIT_BZ_SETUP_SECTS] ? b[KVMKIT_BZ_SETUP_SECTS] : 4; /* 0 means 4 */
	out->version = rd16(b, KVMKIT_BZ_VERSION);
	out->loadflags = b[KVMKIT_BZ_LOADFLAGS];
	out->xloadflags = rd16(b, KVMKIT_BZ_XLOADFLAGS);
	out->setup_size = (sects + 1) * 512;
	out->header_end = KVMKIT_BZ_HEADER + b[0x201]; /* the jump's displacement */
	out->kernel_offset = out->setup_size;
	out->initrd_addr_max = rd32(b, KVMKIT_BZ_INITRD_ADDR_MAX);
	out->kernel_alignment = rd32(b, KVMKIT_BZ_KERNEL_ALIGNMENT);
	out->relocatable = b[KVMKIT_BZ_RELOCATABLE] != 0;
	out->min_alignment = b[KVMKIT_BZ_MIN_ALIGNMENT];
	out->cmdline_size = rd32(b, KVMKIT_BZ_CMDLINE_SIZE);
	out->pref_address = rd64(b, KVMKIT_BZ_PREF_ADDRESS);
	out->init_size = rd32(b, KVMKIT_BZ_INIT_SIZE);
	if (out->setup_size >= len)
		return kvmk_err_format(OP,
				       "setup_sects %u: %u bytes of setup code, the file has %zu",
				       sects, out->setup_size, len);
	out->kernel_size = len - out->setup_size;
	/* syssize counts 16-byte paragraphs: a shorter file was truncated. */
	syssize = (uint64_t)rd32(b, 0x1f4) * 16;
	if (!syssize || syssize > out->kernel_size)
		return kvmk_err_format(
			OP,
			"syssize says %llu bytes of kernel, the file has %llu after the setup code (truncated?)",
			(unsigned long long)syssize, (unsigned long long)out->kernel_size);
	return check_desc(OP, out);
}

static uint64_t low_ram_end(uint64_t mem_size)
{
	return mem_size < KVMKIT_X86_MMIO_HOLE ? mem_size : KVMKIT_X86_MMIO_HOLE;
}

/* The initrd page aligned as high as possible below @top, at or above
 * @floor; -1 if it does not fit. */
static uint64_t initrd_high(uint64_t floor, uint64_t top, uint64_t size)
{
	uint64_t at;

	if (size > top)
		return (uint64_t)-1;
	at = (top - size) & ~(PAGE - 1);
	return at >= floor ? at : (uint64_t)-1;
}

int kvmk_linux_place_common(const char *op, uint64_t mem_size, uint64_t kernel_end,
			    uint64_t initrd_top, size_t cmdline_len, uint64_t cmdline_size,
			    size_t initrd_len, struct kvmkit_linux_layout *out)
{
	uint64_t low = low_ram_end(mem_size);
	uint64_t top = initrd_top < low ? initrd_top : low;
	uint64_t max = cmdline_size < KVMKIT_LINUX_CMDLINE_MAX - 1 ? cmdline_size :
								     KVMKIT_LINUX_CMDLINE_MAX - 1;

	if (cmdline_len > max)
		return kvmk_err_param(op, "cmdline", "command line too long",
				      "%zu bytes, the kernel takes at most %llu", cmdline_len,
				      (unsigned long long)max);
	if (low < KVMKIT_LINUX_CMDLINE + KVMKIT_LINUX_CMDLINE_MAX)
		return kvmk_err_param(op, "mem_size", "too little RAM for Linux", "%llu",
				      (unsigned long long)mem_size);
	out->cmdline = KVMKIT_LINUX_CMDLINE;
	out->info = KVMKIT_LINUX_ZERO_PAGE;
	out->initrd = 0;
	out->initrd_size = initrd_len;
	if (initrd_len) {
		out->initrd = initrd_high(kernel_end, top, initrd_len);
		if (out->initrd == (uint64_t)-1)
			return kvmk_err_param(
				op, "initrd", "initrd too big",
				"%zu bytes; room between the kernel's end 0x%llx and 0x%llx: %llu",
				initrd_len, (unsigned long long)kernel_end, (unsigned long long)top,
				(unsigned long long)(top > kernel_end ? top - kernel_end : 0));
	}
	return 0;
}

int kvmkit_linux_place(const struct kvmkit_bzimage *img, uint64_t mem_size, size_t cmdline_len,
		       size_t initrd_len, struct kvmkit_linux_layout *out)
{
	const char *op = "kvmkit_linux_place";
	uint64_t low = low_ram_end(mem_size);
	uint64_t need, at, align;
	int r;

	if (!img || !out)
		return kvmk_err_param(op, img ? "out" : "img", "NULL", "NULL");
	memset(out, 0, sizeof(*out));
	r = check_desc(op, img);
	if (r)
		return r;
	need = img->init_size;
	align = img->kernel_alignment;
	at = img->pref_address;
	if (at < KVMKIT_LINUX_KERNEL_MIN || at > low || need > low - at) {
		if (!img->relocatable)
			return kvmk_err_param(
				op, "kernel",
				"not relocatable and its pref_address + init_size is not in RAM",
				"0x%llx+0x%llx (RAM below 0x%llx)", (unsigned long long)at,
				(unsigned long long)need, (unsigned long long)low);
		at = (KVMKIT_LINUX_KERNEL_MIN + align - 1) & ~(align - 1);
		if (at > low || need > low - at)
			return kvmk_err_param(op, "mem_size", "the kernel does not fit in RAM",
					      "init_size %llu MiB at 0x%llx, RAM below 0x%llx",
					      (unsigned long long)(need >> 20),
					      (unsigned long long)at, (unsigned long long)low);
	}
	out->kernel = at;
	out->kernel_end = at + need;
	out->entry = at + 0x200;
	/* initrd_addr_max is the address of the initrd's last byte. */
	return kvmk_linux_place_common(op, mem_size, out->kernel_end,
				       (uint64_t)img->initrd_addr_max + 1, cmdline_len,
				       img->cmdline_size, initrd_len, out);
}

unsigned int kvmkit_linux_e820(uint64_t mem_size, struct kvmkit_e820_entry *out, unsigned int max)
{
	struct kvmkit_e820_entry map[4];
	uint64_t low = low_ram_end(mem_size);
	unsigned int n = 0;

	/* Only the RAM there is (a caller may ask about less than 640 KiB). */
	map[n++] = (struct kvmkit_e820_entry){
		0, low < KVMKIT_LINUX_LOW_RESERVED ? low : KVMKIT_LINUX_LOW_RESERVED,
		KVMKIT_E820_RAM
	};
	map[n++] = (struct kvmkit_e820_entry){ KVMKIT_LINUX_LOW_RESERVED,
					       ONE_MIB - KVMKIT_LINUX_LOW_RESERVED,
					       KVMKIT_E820_RESERVED };
	if (low > ONE_MIB)
		map[n++] = (struct kvmkit_e820_entry){ ONE_MIB, low - ONE_MIB, KVMKIT_E820_RAM };
	if (mem_size > low)
		map[n++] =
			(struct kvmkit_e820_entry){ 1ull << 32, mem_size - low, KVMKIT_E820_RAM };
	if (n > max)
		n = max;
	memcpy(out, map, n * sizeof(map[0]));
	return n;
}

void kvmk_linux_zero_page(uint8_t *zp, const void *image, const struct kvmkit_bzimage *img,
			  const struct kvmkit_linux_layout *lay, uint64_t mem_size, uint64_t rsdp)
{
	struct kvmkit_e820_entry map[KVMKIT_LINUX_E820_MAX];
	unsigned int n = kvmkit_linux_e820(mem_size, map, KVMKIT_LINUX_E820_MAX);

	memset(zp, 0, PAGE);
	/* The header as the image has it (check_desc bounds header_end), then
	 * what the loader fills in. */
	memcpy(zp + KVMKIT_BZ_SETUP_SECTS, (const uint8_t *)image + KVMKIT_BZ_SETUP_SECTS,
	       img->header_end - KVMKIT_BZ_SETUP_SECTS);
	wr16(zp, 0x1fa, 0xffff); /* vid_mode: "normal", no video set-up */
	zp[KVMKIT_BZ_TYPE_OF_LOADER] = 0xff; /* a loader without an assigned id */
	zp[KVMKIT_BZ_LOADFLAGS] = img->loadflags;
	wr32(zp, KVMKIT_BZ_CODE32_START, (uint32_t)lay->kernel);
	wr32(zp, KVMKIT_BZ_RAMDISK_IMAGE, (uint32_t)lay->initrd);
	wr32(zp, KVMKIT_BZ_RAMDISK_SIZE, (uint32_t)lay->initrd_size);
	wr32(zp, KVMKIT_BP_EXT_RAMDISK_IMAGE, (uint32_t)(lay->initrd >> 32));
	wr32(zp, KVMKIT_BP_EXT_RAMDISK_SIZE, (uint32_t)(lay->initrd_size >> 32));
	wr32(zp, KVMKIT_BZ_CMD_LINE_PTR, (uint32_t)lay->cmdline);
	wr32(zp, KVMKIT_BP_EXT_CMD_LINE_PTR, (uint32_t)(lay->cmdline >> 32));
	/* No setup_data chain and the default PC subarchitecture, whatever
	 * the image's header says. */
	wr64(zp, 0x250, 0);
	wr32(zp, 0x23c, 0);
	wr64(zp, KVMKIT_BP_ACPI_RSDP_ADDR, rsdp);
	zp[KVMKIT_BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + KVMKIT_BP_E820_TABLE, map, n * sizeof(map[0]));
}

int kvmk_linux_load_bzimage(const struct kvmk_guest_ram *ram, const struct kvmkit_linux_boot *boot,
			    struct kvmkit_linux_layout *lay)
{
	const char *op = "kvmkit_boot_linux";
	const uint64_t gdt[4] = { 0, 0, KVMK_GDT_CODE64, KVMK_GDT_DATA };
	const char *cmdline = boot->cmdline ? boot->cmdline : "";
	size_t clen = strlen(cmdline);
	struct kvmkit_bzimage img;
	uint8_t *zp, *cl, *kern, *rd = NULL;
	int r;

	r = kvmkit_bzimage_parse(boot->kernel, boot->kernel_len, &img);
	if (r)
		return r;
	r = kvmkit_linux_place(&img, ram->size, clen, boot->initrd ? boot->initrd_len : 0, lay);
	if (r)
		return r;
	/* Every destination is checked before the first write. */
	zp = ram->hva(ram, lay->info, PAGE);
	cl = ram->hva(ram, lay->cmdline, clen + 1);
	kern = ram->hva(ram, lay->kernel, lay->kernel_end - lay->kernel);
	if (lay->initrd_size)
		rd = ram->hva(ram, lay->initrd, lay->initrd_size);
	if (!zp || !cl || !kern || (lay->initrd_size && !rd))
		return kvmk_err_param(
			op, "mem_size", "RAM does not cover the Linux layout",
			"kernel 0x%llx-0x%llx, initrd 0x%llx+%llu (RAM %llu MiB)",
			(unsigned long long)lay->kernel, (unsigned long long)lay->kernel_end,
			(unsigned long long)lay->initrd, (unsigned long long)lay->initrd_size,
			(unsigned long long)(ram->size >> 20));
	r = kvmk_x86_boot_area(ram, gdt, 4);
	if (r)
		return r;
	kvmk_linux_zero_page(zp, boot->kernel, &img, lay, ram->size, boot->rsdp);
	memcpy(cl, cmdline, clen + 1);
	memcpy(kern, (const uint8_t *)boot->kernel + img.kernel_offset, img.kernel_size);
	if (rd)
		memcpy(rd, boot->initrd, lay->initrd_size);
	if (ram->wrote) {
		ram->wrote(ram, lay->info, PAGE);
		ram->wrote(ram, lay->cmdline, clen + 1);
		ram->wrote(ram, lay->kernel, img.kernel_size);
		if (rd)
			ram->wrote(ram, lay->initrd, lay->initrd_size);
	}
	return 0;
}
