// SPDX-License-Identifier: MIT
/*
 * Multiboot (v1, 0.6.96) loading of ELF32 images: header search and
 * validation, module placement, the information structure and the 32-bit
 * protected-mode entry state. Images are user input: every field is checked
 * before use, in 64-bit arithmetic.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "multiboot"
#include "core/internal.h"
#include <kvmkit/loader.h>
#include <kvmkit/vcpu.h>
#include <kvmkit/irq.h>

#define OP "kvmkit_multiboot_parse"

#define LOW_RAM_TOP 0x9fc00ull /* start of the EBDA: conventional RAM ends */
#define ONE_MIB 0x100000ull
#define PAGE 4096ull

/* Header flags kvmkit understands among the required bits 0..15. */
#define KNOWN_REQUIRED \
	(KVMKIT_MB_FLAG_PAGE_ALIGN | KVMKIT_MB_FLAG_MEMORY_INFO | KVMKIT_MB_FLAG_VIDEO_MODE)

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* Offset of the first 4-byte aligned magic whose checksum holds, or -1. */
static long find_header(const uint8_t *b, size_t len)
{
	size_t end = len < KVMKIT_MULTIBOOT_SEARCH ? len : KVMKIT_MULTIBOOT_SEARCH;

	for (size_t off = 0; off + 12 <= end; off += 4) {
		if (rd32(b + off) != KVMKIT_MULTIBOOT_MAGIC)
			continue;
		if ((uint32_t)(rd32(b + off) + rd32(b + off + 4) + rd32(b + off + 8)) == 0)
			return (long)off;
	}
	return -1;
}

bool kvmkit_multiboot_detect(const void *buf, size_t len)
{
	const uint8_t *b = buf;

	if (!buf || len < EI_NIDENT || memcmp(b, ELFMAG, SELFMAG) || b[EI_CLASS] != ELFCLASS32)
		return false;
	return find_header(b, len) >= 0;
}

/* Entry points given as virtual addresses are translated through the
 * PT_LOAD that contains them, as boot loaders do for higher-half kernels. */
static int resolve_entry(const uint8_t *b, size_t len, struct kvmkit_multiboot_image *out)
{
	const struct kvmkit_elf_image *e = &out->elf;
	Elf32_Ehdr eh;

	for (unsigned int i = 0; i < e->nsegs; i++)
		if (e->entry >= e->segs[i].paddr &&
		    e->entry < e->segs[i].paddr + e->segs[i].memsz) {
			out->entry = (uint32_t)e->entry;
			return 0;
		}
	memcpy(&eh, b, sizeof(eh)); /* kvmkit_elf_parse checked the table bounds */
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf32_Phdr ph;

		memcpy(&ph, b + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (e->entry >= ph.p_vaddr && e->entry - ph.p_vaddr < ph.p_memsz) {
			out->entry = (uint32_t)(e->entry - ph.p_vaddr + ph.p_paddr);
			return 0;
		}
	}
	(void)len;
	return kvmk_err_format(OP, "entry point 0x%llx is outside the loaded segments",
			       (unsigned long long)e->entry);
}

int kvmkit_multiboot_parse(const void *buf, size_t len, struct kvmkit_multiboot_image *out)
{
	const uint8_t *b = buf;
	uint32_t flags;
	long off;
	int r;

	memset(out, 0, sizeof(*out));
	if (!buf || len < 12)
		return kvmk_err_format(OP, "file too short for a multiboot image (%zu bytes)", len);
	off = find_header(b, len);
	if (off < 0) {
		/* Say why: a magic with a bad checksum, one past 8 KiB, or none. */
		for (size_t o = 0; o + 4 <= len && o + 4 <= KVMKIT_MULTIBOOT_SEARCH; o += 4) {
			if (rd32(b + o) != KVMKIT_MULTIBOOT_MAGIC)
				continue;
			if (o + 12 > len)
				return kvmk_err_format(OP, "multiboot header at 0x%zx truncated",
						       o);
			if (o + 12 > KVMKIT_MULTIBOOT_SEARCH)
				return kvmk_err_format(
					OP,
					"multiboot header at 0x%zx extends past the first %d bytes",
					o, KVMKIT_MULTIBOOT_SEARCH);
			return kvmk_err_format(OP, "multiboot header at 0x%zx: bad checksum", o);
		}
		return kvmk_err_format(OP, "no multiboot header in the first %d bytes",
				       KVMKIT_MULTIBOOT_SEARCH);
	}
	flags = rd32(b + off + 4);
	out->header_offset = (uint32_t)off;
	out->flags = flags;
	if (flags & KVMKIT_MB_FLAG_AOUT_KLUDGE)
		return kvmk_err_format(
			OP,
			"multiboot flag 16 (a.out kludge, load addresses in the header) is not supported: use an ELF32 image without it");
	if (flags & 0xffffu & ~KNOWN_REQUIRED)
		return kvmk_err_format(
			OP, "multiboot header requires unsupported features (flags 0x%x)",
			flags & 0xffffu & ~KNOWN_REQUIRED);
	if ((flags & KVMKIT_MB_FLAG_VIDEO_MODE) && (size_t)off + 48 > len)
		return kvmk_err_format(OP, "multiboot header truncated (video fields)");
	r = kvmkit_elf_parse(buf, len, &out->elf);
	if (r)
		return r;
	if (out->elf.elf_class != 32 || out->elf.machine != EM_386)
		return kvmk_err_format(
			OP,
			"multiboot image is not an ELF32 i386 executable (class %u, machine %u)",
			out->elf.elf_class, out->elf.machine);
	r = resolve_entry(b, len, out);
	if (r)
		return r;
	if (flags & KVMKIT_MB_FLAG_VIDEO_MODE)
		kvmk_warn(
			"image asks for a video mode; kvmkit has no display and passes no video information");
	return 0;
}

static uint64_t low_ram_end(uint64_t mem_size)
{
	return mem_size < KVMKIT_X86_MMIO_HOLE ? mem_size : KVMKIT_X86_MMIO_HOLE;
}

int kvmkit_multiboot_place(const struct kvmkit_multiboot_image *img, uint64_t mem_size,
			   const struct kvmkit_multiboot_module *mods, unsigned int nmods,
			   struct kvmkit_multiboot_placed *placed)
{
	const char *op = "kvmkit_multiboot_place";
	uint64_t low = low_ram_end(mem_size);
	uint64_t next;

	if (mem_size < ONE_MIB)
		return kvmk_err_param(op, "mem_size", "multiboot needs at least 1 MiB of RAM",
				      "%llu", (unsigned long long)mem_size);
	if (nmods > KVMKIT_MULTIBOOT_MAX_MODULES)
		return kvmk_err_param(op, "nmods", "too many modules", "%u (max %d)", nmods,
				      KVMKIT_MULTIBOOT_MAX_MODULES);
	for (unsigned int i = 0; i < img->elf.nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->elf.segs[i];

		if (s->paddr < KVMKIT_MULTIBOOT_AREA_END &&
		    KVMKIT_MULTIBOOT_AREA_START < s->paddr + s->memsz)
			return kvmk_err_param(op, "segment",
					      "overlaps kvmkit's multiboot area 0x9000-0x10000",
					      "0x%llx+0x%llx", (unsigned long long)s->paddr,
					      (unsigned long long)s->memsz);
		if (s->paddr + s->memsz > low)
			return kvmk_err_param(
				op, "segment", "outside guest RAM",
				"0x%llx+0x%llx (RAM %llu MiB, low RAM ends at 0x%llx)",
				(unsigned long long)s->paddr, (unsigned long long)s->memsz,
				(unsigned long long)(mem_size >> 20), (unsigned long long)low);
	}
	next = img->elf.highest > ONE_MIB ? img->elf.highest : ONE_MIB;
	for (unsigned int i = 0; i < nmods; i++) {
		uint64_t start = (next + PAGE - 1) & ~(PAGE - 1);

		if (mods[i].len > low || start > low - mods[i].len)
			return kvmk_err_param(
				op, "module", "does not fit in RAM after the image",
				"module %u: %zu bytes at 0x%llx (low RAM ends at 0x%llx)", i,
				mods[i].len, (unsigned long long)start, (unsigned long long)low);
		placed[i].start = (uint32_t)start;
		placed[i].end = (uint32_t)(start + mods[i].len);
		placed[i].string = mods[i].string ? mods[i].string : "";
		next = start + mods[i].len;
	}
	return 0;
}

/* Appends @n bytes to the area being built; returns its guest address. */
struct builder {
	uint8_t *buf;
	size_t size, used;
	uint32_t gpa;
	bool overflow;
};

static uint32_t put(struct builder *b, const void *data, size_t n, size_t align)
{
	size_t at = (b->used + align - 1) & ~(align - 1);

	if (at > b->size || n > b->size - at) {
		b->overflow = true;
		return 0;
	}
	memcpy(b->buf + at, data, n);
	b->used = at + n;
	return b->gpa + (uint32_t)at;
}

static void mmap_entry(struct kvmkit_multiboot_mmap_entry *e, uint64_t base, uint64_t len,
		       uint32_t type)
{
	e->size = sizeof(*e) - sizeof(e->size);
	e->base_addr = base;
	e->length = len;
	e->type = type;
}

int kvmkit_multiboot_build_info(void *buf, size_t size, uint32_t gpa, uint64_t mem_size,
				const char *cmdline, const struct kvmkit_multiboot_placed *mods,
				unsigned int nmods)
{
	const char *op = "kvmkit_multiboot_build_info";
	struct kvmkit_multiboot_mmap_entry map[4];
	struct kvmkit_multiboot_mod_entry ents[KVMKIT_MULTIBOOT_MAX_MODULES];
	struct kvmkit_multiboot_info info;
	struct builder b = { buf, size, 0, gpa, false };
	uint64_t low = low_ram_end(mem_size);
	unsigned int n = 0;

	if (mem_size < ONE_MIB)
		return kvmk_err_param(op, "mem_size", "multiboot needs at least 1 MiB of RAM",
				      "%llu", (unsigned long long)mem_size);
	if (nmods > KVMKIT_MULTIBOOT_MAX_MODULES)
		return kvmk_err_param(op, "nmods", "too many modules", "%u", nmods);
	memset(&info, 0, sizeof(info));
	/* Reserve the structure's place first: it must be at @gpa. */
	put(&b, &info, sizeof(info), 4);

	info.flags = KVMKIT_MBI_MEM | KVMKIT_MBI_CMDLINE | KVMKIT_MBI_MODS | KVMKIT_MBI_MMAP |
		     KVMKIT_MBI_LOADER_NAME;
	info.mem_lower = 640;
	info.mem_upper = (uint32_t)((low - ONE_MIB) >> 10);

	mmap_entry(&map[n++], 0, LOW_RAM_TOP, 1);
	mmap_entry(&map[n++], LOW_RAM_TOP, ONE_MIB - LOW_RAM_TOP, 2);
	if (low > ONE_MIB)
		mmap_entry(&map[n++], ONE_MIB, low - ONE_MIB, 1);
	if (mem_size > low)
		mmap_entry(&map[n++], 1ull << 32, mem_size - low, 1);
	info.mmap_addr = put(&b, map, n * sizeof(map[0]), 4);
	info.mmap_length = n * sizeof(map[0]);

	for (unsigned int i = 0; i < nmods; i++) {
		ents[i].mod_start = mods[i].start;
		ents[i].mod_end = mods[i].end;
		ents[i].reserved = 0;
	}
	info.mods_count = nmods;
	/* Strings after the fixed-size parts. */
	for (unsigned int i = 0; i < nmods; i++) {
		const char *s = mods[i].string ? mods[i].string : "";

		ents[i].string = put(&b, s, strlen(s) + 1, 1);
	}
	info.mods_addr = put(&b, ents, nmods * sizeof(ents[0]), 4);
	info.cmdline = put(&b, cmdline ? cmdline : "", strlen(cmdline ? cmdline : "") + 1, 1);
	info.boot_loader_name = put(&b, "kvmkit", sizeof("kvmkit"), 1);
	if (b.overflow)
		return kvmk_err_param(
			op, "cmdline",
			"command line and module strings do not fit in the multiboot area",
			"%zu bytes available", size);
	memcpy(b.buf, &info, sizeof(info));
	return (int)b.used;
}

static int check_image(const void *image, size_t len, uint64_t mem_size,
		       const struct kvmkit_multiboot_module *mods, unsigned int nmods,
		       struct kvmkit_multiboot_image *img, struct kvmkit_multiboot_placed *placed)
{
	int r = kvmkit_multiboot_parse(image, len, img);

	if (r)
		return r;
	return kvmkit_multiboot_place(img, mem_size, mods, nmods, placed);
}

int kvmkit_boot_check_multiboot(const void *image, size_t len, uint64_t mem_size, size_t initrd_len)
{
	struct kvmkit_multiboot_module mod = { NULL, initrd_len, "initrd" };
	struct kvmkit_multiboot_placed placed[1];
	struct kvmkit_multiboot_image img;

	return check_image(image, len, mem_size, &mod, initrd_len ? 1 : 0, &img, placed);
}

#if defined(__x86_64__)
#include "boot/x86_boot.h"

#define CR0_PE (1ull << 0)
#define CR0_ET (1ull << 4)
#define GDT_CODE32 0x00cf9a000000ffffull /* P, DPL0, exec/read, D=1, G=1 */
#define GDT_DATA32 0x00cf92000000ffffull /* P, DPL0, read/write, B=1, G=1 */

static int setup_bsp(struct kvmkit_vcpu *vcpu, uint32_t entry, uint32_t info)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	int ret;

	ret = kvmkit_vcpu_get_sregs(vcpu, &s);
	if (ret)
		return ret;
	kvmk_x86_flat_segment(&s.cs, 0x08, 0xb, false); /* execute/read, accessed */
	kvmk_x86_flat_segment(&s.ds, 0x10, 0x3, false); /* read/write, accessed */
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.gdt.base = KVMKIT_MULTIBOOT_GDT;
	s.gdt.limit = 3 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = CR0_PE | CR0_ET;
	s.cr2 = 0;
	s.cr3 = 0;
	s.cr4 = 0;
	s.efer = 0;
	ret = kvmkit_vcpu_set_sregs(vcpu, &s);
	if (ret)
		return ret;
	memset(&r, 0, sizeof(r));
	r.rip = entry;
	r.rflags = 0x2;
	r.rax = KVMKIT_MULTIBOOT_BOOT_MAGIC;
	r.rbx = info;
	return kvmkit_vcpu_set_regs(vcpu, &r);
}

int kvmkit_boot_multiboot_modules(struct kvmkit_vm *vm, const void *image, size_t len,
				  const char *cmdline, const struct kvmkit_multiboot_module *mods,
				  unsigned int nmods)
{
	const char *op = "kvmkit_boot_multiboot";
	struct kvmkit_multiboot_placed placed[KVMKIT_MULTIBOOT_MAX_MODULES];
	uint64_t gdt[3] = { 0, GDT_CODE32, GDT_DATA32 };
	uint64_t mem = kvmkit_vm_ram_size(vm);
	unsigned int n = kvmkit_vm_config(vm)->vcpus;
	struct kvmkit_multiboot_image img;
	size_t area = KVMKIT_MULTIBOOT_AREA_END - KVMKIT_MULTIBOOT_INFO;
	uint8_t *info;
	int r;

	if (kvmkit_vm_vcpu_count(vm) != n)
		return kvmk_err_state("vm", "missing vCPUs", "all vCPUs created", "boot_multiboot");
	if (n > 1 && !kvmkit_vm_irqchip(vm))
		return kvmk_err_param(
			op, "vcpus",
			"multiboot with several vCPUs needs the in-kernel irqchip (APs wait for INIT/SIPI)",
			"%u", n);
	if (nmods && !mods)
		return kvmk_err_param(op, "mods", "NULL with a module count", "%u", nmods);
	r = check_image(image, len, mem, mods, nmods, &img, placed);
	if (r)
		return r;
	info = kvmkit_vm_gpa_to_hva(vm, KVMKIT_MULTIBOOT_INFO, area);
	if (!info)
		return kvmk_err_param(op, "mem_size", "RAM does not cover the multiboot area",
				      "%llu", (unsigned long long)mem);
	r = kvmkit_multiboot_build_info(info, area, (uint32_t)KVMKIT_MULTIBOOT_INFO, mem, cmdline,
					placed, nmods);
	if (r < 0)
		return r;
	r = kvmkit_vm_write(vm, KVMKIT_MULTIBOOT_GDT, gdt, sizeof(gdt));
	if (r)
		return r;
	r = kvmkit_elf_load(vm, image, len, &img.elf, KVMKIT_MULTIBOOT_AREA_START,
			    KVMKIT_MULTIBOOT_AREA_END);
	if (r)
		return r;
	for (unsigned int i = 0; i < nmods; i++) {
		r = kvmkit_vm_write(vm, placed[i].start, mods[i].data, mods[i].len);
		if (r)
			return r;
	}
	/* Only the BSP: the others keep KVM's reset state (waiting for SIPI). */
	r = setup_bsp(kvmkit_vm_vcpu(vm, 0), img.entry, (uint32_t)KVMKIT_MULTIBOOT_INFO);
	if (r)
		return r;
	kvmk_debug("multiboot: %u segment(s) 0x%llx-0x%llx, entry 0x%x, %u module(s)",
		   img.elf.nsegs, (unsigned long long)img.elf.lowest,
		   (unsigned long long)img.elf.highest, img.entry, nmods);
	return 0;
}
#else
int kvmkit_boot_multiboot_modules(struct kvmkit_vm *vm, const void *image, size_t len,
				  const char *cmdline, const struct kvmkit_multiboot_module *mods,
				  unsigned int nmods)
{
	(void)vm;
	(void)image;
	(void)len;
	(void)cmdline;
	(void)mods;
	(void)nmods;
	return kvmk_err_unsupported("kvmkit_boot_multiboot", ENOTSUP, "x86_64 only");
}
#endif

int kvmkit_boot_multiboot(struct kvmkit_vm *vm, const void *image, size_t len, const char *cmdline,
			  const void *initrd, size_t initrd_len)
{
	struct kvmkit_multiboot_module mod = { initrd, initrd_len, "initrd" };

	return kvmkit_boot_multiboot_modules(vm, image, len, cmdline, &mod, initrd ? 1 : 0);
}
