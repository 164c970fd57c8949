// SPDX-License-Identifier: MIT
/*
 * Multiboot (v1, 0.6.96) loading of ELF32 images: header search and
 * validation, the placement of modules and of kvmkit's area (GDT and
 * information structure) where no segment lies, the information structure,
 * loading into guest RAM (a VM's or a plain buffer) and the 32-bit
 * protected-mode entry state. Images are user input and image descriptions
 * may be hand-made: every field is checked before use, in 64-bit
 * arithmetic, and every write goes through the RAM's bounds check.
 */
#include <elf.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "multiboot"
#include "core/internal.h"
#include "boot/boot_internal.h"
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
	struct kvmk_elf_ehdr eh;

	for (unsigned int i = 0; i < e->nsegs; i++)
		if (e->entry >= e->segs[i].paddr &&
		    e->entry < e->segs[i].paddr + e->segs[i].memsz) {
			out->entry = (uint32_t)e->entry;
			return 0;
		}
	eh = kvmk_elf_ehdr(b, 32); /* kvmkit_elf_parse checked the table bounds */
	for (unsigned int i = 0; i < eh.phnum; i++) {
		struct kvmk_elf_phdr ph = kvmk_elf_phdr(b, 32, &eh, i);

		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		if (e->entry >= ph.vaddr && e->entry - ph.vaddr < ph.memsz) {
			out->entry = (uint32_t)(e->entry - ph.vaddr + ph.paddr);
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

static uint64_t page_up(uint64_t a)
{
	return (a + PAGE - 1) & ~(PAGE - 1);
}

struct busy {
	uint64_t start, end;
};

/* The lowest page-aligned @size bytes inside [lo, hi) that meet none of
 * @busy, or 0 (no window starts below page 1). Each busy range moves the
 * candidate past its end at most once, so this is O(n^2) for n <= 48. */
static uint64_t first_fit(uint64_t lo, uint64_t hi, uint64_t size, const struct busy *busy,
			  unsigned int n)
{
	uint64_t at = page_up(lo);
	bool moved = true;

	while (moved) {
		moved = false;
		if (at > hi || size > hi - at)
			return 0;
		for (unsigned int i = 0; i < n; i++) {
			if (busy[i].start < busy[i].end && busy[i].start < at + size &&
			    at < busy[i].end) {
				at = page_up(busy[i].end);
				moved = true;
			}
		}
	}
	return at;
}

/* The image description may be hand-made: check what placement relies on. */
static int check_image_desc(const char *op, const struct kvmkit_multiboot_image *img,
			    uint64_t mem_size, uint64_t low)
{
	const struct kvmkit_elf_image *e = &img->elf;
	int r = kvmk_elf_check_image(op, e, SIZE_MAX);

	if (r)
		return r;
	if (!e->nsegs)
		return kvmk_err_format(op, "no loadable (PT_LOAD) segment");
	for (unsigned int i = 0; i < e->nsegs; i++) {
		const struct kvmkit_elf_segment *s = &e->segs[i];

		if (s->memsz && s->paddr + s->memsz > low)
			return kvmk_err_param(
				op, "segment", "outside guest RAM",
				"%u: 0x%llx+0x%llx (RAM %llu MiB, low RAM ends at 0x%llx)", i,
				(unsigned long long)s->paddr, (unsigned long long)s->memsz,
				(unsigned long long)(mem_size >> 20), (unsigned long long)low);
	}
	if (!kvmk_elf_in_segment(e, img->entry))
		return kvmk_err_format(op, "entry point 0x%x is outside the loaded segments",
				       img->entry);
	return 0;
}

int kvmkit_multiboot_place(const struct kvmkit_multiboot_image *img, uint64_t mem_size,
			   const char *cmdline, const struct kvmkit_multiboot_module *mods,
			   unsigned int nmods, struct kvmkit_multiboot_layout *layout)
{
	const char *op = "kvmkit_multiboot_place";
	struct busy busy[KVMKIT_ELF_MAX_SEGMENTS + KVMKIT_MULTIBOOT_MAX_MODULES];
	uint64_t low = low_ram_end(mem_size);
	uint64_t next = ONE_MIB, need, area;
	unsigned int nb = 0;
	int r;

	if (!img || !layout)
		return kvmk_err_param(op, img ? "layout" : "img", "NULL", "NULL");
	memset(layout, 0, sizeof(*layout));
	if (mem_size < ONE_MIB)
		return kvmk_err_param(op, "mem_size", "multiboot needs at least 1 MiB of RAM",
				      "%llu", (unsigned long long)mem_size);
	if (nmods > KVMKIT_MULTIBOOT_MAX_MODULES)
		return kvmk_err_param(op, "nmods", "too many modules", "%u (max %d)", nmods,
				      KVMKIT_MULTIBOOT_MAX_MODULES);
	if (nmods && !mods)
		return kvmk_err_param(op, "mods", "NULL with a module count", "%u", nmods);
	r = check_image_desc(op, img, mem_size, low);
	if (r)
		return r;
	for (unsigned int i = 0; i < img->elf.nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->elf.segs[i];

		if (!s->memsz)
			continue; /* occupies nothing, wherever it claims to be */
		busy[nb++] = (struct busy){ s->paddr, s->paddr + s->memsz };
		if (s->paddr + s->memsz > next)
			next = s->paddr + s->memsz;
	}
	for (unsigned int i = 0; i < nmods; i++) {
		uint64_t start = page_up(next);

		if (mods[i].len > low || start > low - mods[i].len)
			return kvmk_err_param(op, "module", "does not fit in RAM after the image",
					      "%u: %zu bytes at 0x%llx (low RAM ends at 0x%llx)", i,
					      mods[i].len, (unsigned long long)start,
					      (unsigned long long)low);
		layout->mods[i].start = (uint32_t)start;
		layout->mods[i].end = (uint32_t)(start + mods[i].len);
		layout->mods[i].string = mods[i].string ? mods[i].string : "";
		busy[nb++] = (struct busy){ start, start + mods[i].len };
		next = start + mods[i].len;
	}
	layout->nmods = nmods;
	r = kvmkit_multiboot_build_info(NULL, 0, 0, mem_size, cmdline, layout->mods, nmods);
	if (r < 0)
		return r;
	need = page_up(KVMKIT_MULTIBOOT_INFO_OFFSET + (uint64_t)r);
	if (need > KVMKIT_MULTIBOOT_AREA_MAX)
		return kvmk_err_param(
			op, "cmdline",
			"command line and module strings do not fit in the multiboot area",
			"%d bytes of information, at most %llu", r,
			KVMKIT_MULTIBOOT_AREA_MAX - KVMKIT_MULTIBOOT_INFO_OFFSET);
	/* Conventional memory first, where it always was; then above 1 MiB;
	 * below 0x9000, where real-mode payloads keep stacks, last. */
	area = first_fit(KVMKIT_MULTIBOOT_AREA_DEFAULT, LOW_RAM_TOP, need, busy, nb);
	if (!area)
		area = first_fit(ONE_MIB, low, need, busy, nb);
	if (!area)
		area = first_fit(PAGE, KVMKIT_MULTIBOOT_AREA_DEFAULT, need, busy, nb);
	if (!area)
		return kvmk_err_param(op, "mem_size",
				      "no free RAM for the multiboot information area",
				      "%llu (%llu bytes needed)", (unsigned long long)mem_size,
				      (unsigned long long)need);
	layout->area = (uint32_t)area;
	layout->area_size = (uint32_t)need;
	layout->info = (uint32_t)(area + KVMKIT_MULTIBOOT_INFO_OFFSET);
	return 0;
}

/* Appends @n bytes to the area being built (or only counts them when there
 * is no buffer); returns their guest address. */
struct builder {
	uint8_t *buf;
	size_t size, used;
	uint32_t gpa;
	bool overflow;
};

static uint32_t put(struct builder *b, const void *data, size_t n, size_t align)
{
	size_t at = (b->used + align - 1) & ~(align - 1);

	if (at < b->used || at > b->size || n > b->size - at) {
		b->overflow = true;
		return 0;
	}
	if (b->buf)
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
	struct builder b = { buf, buf ? size : SIZE_MAX, 0, buf ? gpa : 0, false };
	uint64_t low = low_ram_end(mem_size);
	unsigned int n = 0;

	if (mem_size < ONE_MIB)
		return kvmk_err_param(op, "mem_size", "multiboot needs at least 1 MiB of RAM",
				      "%llu", (unsigned long long)mem_size);
	if (nmods > KVMKIT_MULTIBOOT_MAX_MODULES)
		return kvmk_err_param(op, "nmods", "too many modules", "%u", nmods);
	if (nmods && !mods)
		return kvmk_err_param(op, "mods", "NULL with a module count", "%u", nmods);
	for (unsigned int i = 0; i < nmods; i++)
		if (mods[i].end < mods[i].start)
			return kvmk_err_param(op, "module", "ends before it starts",
					      "%u: 0x%x-0x%x", i, mods[i].start, mods[i].end);
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
	if (b.overflow || b.used > INT_MAX)
		return kvmk_err_param(
			op, "cmdline",
			"command line and module strings do not fit in the multiboot area",
			"%zu bytes available", size);
	if (buf && (uint64_t)gpa + b.used > (1ull << 32))
		return kvmk_err_param(op, "gpa", "information area crosses 4 GiB", "0x%x+%zu", gpa,
				      b.used);
	if (buf)
		memcpy(b.buf, &info, sizeof(info));
	return (int)b.used;
}

#define GDT_CODE32 0x00cf9a000000ffffull /* P, DPL0, exec/read, D=1, G=1 */
#define GDT_DATA32 0x00cf92000000ffffull /* P, DPL0, read/write, B=1, G=1 */

int kvmk_multiboot_load(const struct kvmk_guest_ram *ram, const void *image, size_t len,
			const char *cmdline, const struct kvmkit_multiboot_module *mods,
			unsigned int nmods, struct kvmkit_multiboot_layout *layout, uint32_t *entry)
{
	const char *op = "kvmkit_boot_multiboot";
	const uint64_t gdt[3] = { 0, GDT_CODE32, GDT_DATA32 };
	uint8_t *mod_dst[KVMKIT_MULTIBOOT_MAX_MODULES];
	struct kvmkit_multiboot_image img;
	uint8_t *area;
	int r;

	r = kvmkit_multiboot_parse(image, len, &img);
	if (r)
		return r;
	r = kvmkit_multiboot_place(&img, ram->size, cmdline, mods, nmods, layout);
	if (r)
		return r;
	/* Every destination is checked before the first write; the segments'
	 * own checks come last, in kvmk_elf_load, before it writes. */
	area = ram->hva(ram, layout->area, layout->area_size);
	if (!area)
		return kvmk_err_param(op, "mem_size", "RAM does not cover the multiboot area",
				      "0x%x+0x%x (RAM %llu MiB)", layout->area, layout->area_size,
				      (unsigned long long)(ram->size >> 20));
	for (unsigned int i = 0; i < nmods; i++) {
		const struct kvmkit_multiboot_placed *p = &layout->mods[i];

		if (mods[i].len && !mods[i].data)
			return kvmk_err_param(op, "module", "no data", "%u: NULL, %zu bytes", i,
					      mods[i].len);
		mod_dst[i] = ram->hva(ram, p->start, p->end - p->start);
		if (!mod_dst[i])
			return kvmk_err_param(op, "module", "outside guest RAM", "%u: 0x%x-0x%x", i,
					      p->start, p->end);
	}
	r = kvmk_elf_load(ram, image, len, &img.elf, layout->area,
			  (uint64_t)layout->area + layout->area_size);
	if (r)
		return r;
	memset(area, 0, layout->area_size);
	memcpy(area, gdt, sizeof(gdt));
	r = kvmkit_multiboot_build_info(area + KVMKIT_MULTIBOOT_INFO_OFFSET,
					layout->area_size - KVMKIT_MULTIBOOT_INFO_OFFSET,
					layout->info, ram->size, cmdline, layout->mods, nmods);
	if (r < 0)
		return r;
	for (unsigned int i = 0; i < nmods; i++)
		if (mods[i].len)
			memcpy(mod_dst[i], mods[i].data, mods[i].len);
	if (ram->wrote) {
		ram->wrote(ram, layout->area, layout->area_size);
		for (unsigned int i = 0; i < nmods; i++)
			if (mods[i].len)
				ram->wrote(ram, layout->mods[i].start, mods[i].len);
	}
	*entry = img.entry;
	return 0;
}

int kvmkit_boot_check_multiboot(const void *image, size_t len, uint64_t mem_size, size_t initrd_len)
{
	struct kvmkit_multiboot_module mod = { NULL, initrd_len, "initrd" };
	struct kvmkit_multiboot_layout layout;
	struct kvmkit_multiboot_image img;
	int r = kvmkit_multiboot_parse(image, len, &img);

	if (r)
		return r;
	return kvmkit_multiboot_place(&img, mem_size, NULL, &mod, initrd_len ? 1 : 0, &layout);
}

#if defined(__x86_64__)
#include "boot/x86_boot.h"

static int setup_bsp(struct kvmkit_vcpu *vcpu, uint32_t entry, uint32_t gdt, uint32_t info)
{
	struct kvm_regs r = {
		.rip = entry, .rflags = 0x2, .rax = KVMKIT_MULTIBOOT_BOOT_MAGIC, .rbx = info
	};

	return kvmk_x86_vcpu_prot32(vcpu, gdt, false, &r);
}

int kvmkit_boot_multiboot_modules(struct kvmkit_vm *vm, const void *image, size_t len,
				  const char *cmdline, const struct kvmkit_multiboot_module *mods,
				  unsigned int nmods)
{
	const char *op = "kvmkit_boot_multiboot";
	struct kvmkit_multiboot_layout layout;
	unsigned int n = kvmkit_vm_config(vm)->vcpus;
	struct kvmk_guest_ram ram;
	uint32_t entry;
	int r;

	if (kvmkit_vm_vcpu_count(vm) != n)
		return kvmk_err_state("vm", "missing vCPUs", "all vCPUs created", "boot_multiboot");
	if (n > 1 && !kvmkit_vm_irqchip(vm))
		return kvmk_err_param(
			op, "vcpus",
			"multiboot with several vCPUs needs the in-kernel irqchip (APs wait for INIT/SIPI)",
			"%u", n);
	kvmk_guest_ram_of_vm(&ram, vm);
	r = kvmk_multiboot_load(&ram, image, len, cmdline, mods, nmods, &layout, &entry);
	if (r)
		return r;
	/* Only the BSP: the others keep KVM's reset state (waiting for SIPI). */
	r = setup_bsp(kvmkit_vm_vcpu(vm, 0), entry, layout.area, layout.info);
	if (r)
		return r;
	kvmk_debug("multiboot: entry 0x%x, area 0x%x+0x%x, info 0x%x, %u module(s)", entry,
		   layout.area, layout.area_size, layout.info, nmods);
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
