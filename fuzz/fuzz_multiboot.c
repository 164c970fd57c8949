// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: Multiboot header parse, placement of modules and of
 * kvmkit's area, the information structure, and the whole load into a
 * plain buffer standing for guest RAM (exactly RAM-sized, so ASan sees any
 * write past it). The input is a recipe (RAM size, command line, modules,
 * optionally a corruption of the parsed description) and then either a
 * raw image or the fields of an ELF32 image the target assembles with a
 * valid Multiboot header, so that most inputs get past the parser.
 * Traps if:
 *  - a parsed image describes bytes outside the file, filesz > memsz, or an
 *    entry point outside its segments;
 *  - a placement puts kvmkit's area or a module over a segment, over each
 *    other, outside low RAM, on page 0, unaligned, or larger than its bound;
 *  - the information structure needs more than the area gives it, or does
 *    not read back as built (command line, module list, memory map);
 *  - placement succeeds but the load into RAM of that size fails, or the
 *    loaded RAM does not hold the file bytes, zeroed .bss and the modules.
 */
#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "boot/boot_internal.h"
#include <kvmkit/kvmkit.h>

#define MB_MAX_RAM (4u << 20) /* RAM the load runs with, at most */
#define MAX_FILE 0x6000u
#define MAX_MODS 4

/* An ELF32 i386 image with a Multiboot header after its program headers;
 * the fields come from the input. Returns its length. */
static size_t assemble(struct fuzz_in *in, uint8_t *f)
{
	unsigned int nph = (unsigned int)fuzz_take(in, 1) % 6;
	uint32_t flags = (uint32_t)fuzz_take(in, 1) & 0x7;
	size_t hdr = sizeof(Elf32_Ehdr) + nph * sizeof(Elf32_Phdr);
	size_t len = 0x2000 + (size_t)fuzz_take(in, 2) % (MAX_FILE - 0x2000);
	Elf32_Ehdr eh = { 0 };
	uint32_t entry_seg = (uint32_t)fuzz_take(in, 1), entry_off = (uint32_t)fuzz_take(in, 2);

	memset(f, 0, MAX_FILE);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_386;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf32_Phdr);
	eh.e_phnum = (uint16_t)nph;
	for (unsigned int i = 0; i < nph; i++) {
		uint8_t shape = (uint8_t)fuzz_take(in, 1);
		Elf32_Phdr ph = { 0 };

		ph.p_type = (shape & 1) ? PT_NOTE : PT_LOAD;
		/* Mostly low and page-granular, so that RAM of a few MiB holds it. */
		ph.p_paddr =
			(shape & 2) ? (uint32_t)fuzz_take(in, 4) : (uint32_t)fuzz_take(in, 2) << 6;
		ph.p_vaddr = (shape & 4) ? ph.p_paddr + 0xc0000000u : ph.p_paddr;
		ph.p_offset =
			(shape & 8) ? (uint32_t)fuzz_take(in, 4) : (uint32_t)fuzz_take(in, 2) % len;
		ph.p_filesz = (uint32_t)fuzz_take(in, 2);
		ph.p_memsz = (shape & 16) ? (uint32_t)fuzz_take(in, 4) :
					    ph.p_filesz + ((uint32_t)fuzz_take(in, 2) << 4);
		if (i == entry_seg % (nph ? nph : 1))
			eh.e_entry = ph.p_vaddr + entry_off;
		memcpy(f + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
	}
	memcpy(f, &eh, sizeof(eh));
	hdr = (hdr + 3) & ~(size_t)3;
	memcpy(f + hdr, &(uint32_t){ KVMKIT_MULTIBOOT_MAGIC }, 4);
	memcpy(f + hdr + 4, &flags, 4);
	memcpy(f + hdr + 8, &(uint32_t){ 0u - (KVMKIT_MULTIBOOT_MAGIC + flags) }, 4);
	/* The rest of the input is the segments' bytes. */
	for (size_t i = hdr + 12; i < len && in->n; i++)
		f[i] = (uint8_t)fuzz_take(in, 1);
	return len;
}

static void check_parsed(const struct kvmkit_multiboot_image *img, size_t len)
{
	const struct kvmkit_elf_image *e = &img->elf;
	bool entry_in = false;

	CHECK(e->nsegs >= 1 && e->nsegs <= KVMKIT_ELF_MAX_SEGMENTS);
	for (unsigned int i = 0; i < e->nsegs; i++) {
		const struct kvmkit_elf_segment *s = &e->segs[i];

		CHECK(s->offset <= len && s->filesz <= len - s->offset);
		CHECK(s->filesz <= s->memsz);
		CHECK(s->paddr + s->memsz <= (1ull << 32));
		entry_in |= img->entry >= s->paddr && img->entry - s->paddr < s->memsz;
	}
	CHECK(entry_in);
}

static void check_layout(const struct kvmkit_multiboot_image *img,
			 const struct kvmkit_multiboot_layout *lay, uint64_t mem,
			 unsigned int nmods, const size_t *mod_len)
{
	uint64_t low = mem < KVMKIT_X86_MMIO_HOLE ? mem : KVMKIT_X86_MMIO_HOLE;

	CHECK(lay->area >= 4096 && lay->area % 4096 == 0);
	CHECK(lay->area_size && lay->area_size % 4096 == 0);
	CHECK(lay->area_size <= KVMKIT_MULTIBOOT_AREA_MAX);
	CHECK((uint64_t)lay->area + lay->area_size <= low);
	CHECK(lay->info == lay->area + KVMKIT_MULTIBOOT_INFO_OFFSET);
	CHECK(lay->nmods == nmods);
	for (unsigned int i = 0; i < img->elf.nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->elf.segs[i];

		CHECK(!fuzz_overlap(s->paddr, s->memsz, lay->area, lay->area_size));
		for (unsigned int m = 0; m < nmods; m++)
			CHECK(!fuzz_overlap(s->paddr, s->memsz, lay->mods[m].start,
					    lay->mods[m].end - lay->mods[m].start));
	}
	for (unsigned int m = 0; m < nmods; m++) {
		const struct kvmkit_multiboot_placed *p = &lay->mods[m];

		CHECK(p->start % 4096 == 0 && p->start >= (1u << 20));
		CHECK(p->end - p->start == mod_len[m] && p->end <= low && p->end >= p->start);
		CHECK(!fuzz_overlap(p->start, mod_len[m], lay->area, lay->area_size));
		for (unsigned int o = 0; o < m; o++)
			CHECK(!fuzz_overlap(p->start, mod_len[m], lay->mods[o].start, mod_len[o]));
	}
}

/* @info (guest address @gpa) as built: the command line, modules and map. */
static void check_info(const uint8_t *info, size_t size, uint32_t gpa, uint64_t mem,
		       const char *cmdline, const struct kvmkit_multiboot_layout *lay)
{
	struct kvmkit_multiboot_info mi;
	struct kvmkit_multiboot_mod_entry me;
	uint64_t total = 0;

	memcpy(&mi, info, sizeof(mi));
	CHECK(mi.cmdline >= gpa && mi.cmdline - gpa < size);
	CHECK(!strncmp((const char *)info + (mi.cmdline - gpa), cmdline,
		       size - (mi.cmdline - gpa)));
	CHECK(mi.mods_count == lay->nmods);
	CHECK(mi.mods_addr >= gpa && mi.mods_addr - gpa + lay->nmods * sizeof(me) <= size);
	for (unsigned int m = 0; m < lay->nmods; m++) {
		memcpy(&me, info + (mi.mods_addr - gpa) + m * sizeof(me), sizeof(me));
		CHECK(me.mod_start == lay->mods[m].start && me.mod_end == lay->mods[m].end);
		CHECK(me.string >= gpa && me.string - gpa < size);
	}
	CHECK(mi.mmap_addr >= gpa && mi.mmap_addr - gpa + mi.mmap_length <= size);
	for (uint32_t o = 0; o + 24 <= mi.mmap_length; o += 24) {
		struct kvmkit_multiboot_mmap_entry e;

		memcpy(&e, info + (mi.mmap_addr - gpa) + o, sizeof(e));
		CHECK(e.size == 20);
		total += e.length;
	}
	/* Usable and reserved below 1 MiB plus the rest of RAM. */
	CHECK(total == mem);
}

static void check_loaded(const uint8_t *ram, const uint8_t *file,
			 const struct kvmkit_multiboot_image *img,
			 const struct kvmkit_multiboot_layout *lay, const uint8_t *const *mod_data,
			 const size_t *mod_len, uint64_t mem, const char *cmdline)
{
	for (unsigned int i = 0; i < img->elf.nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->elf.segs[i];

		CHECK(!memcmp(ram + s->paddr, file + s->offset, s->filesz));
		for (uint64_t a = s->filesz; a < s->memsz; a++)
			CHECK(ram[s->paddr + a] == 0);
	}
	for (unsigned int m = 0; m < lay->nmods; m++)
		CHECK(!memcmp(ram + lay->mods[m].start, mod_data[m], mod_len[m]));
	CHECK(!memcmp(ram + lay->area + 8, &(uint64_t){ 0x00cf9a000000ffffull }, 8));
	check_info(ram + lay->info, lay->area_size - KVMKIT_MULTIBOOT_INFO_OFFSET, lay->info, mem,
		   cmdline, lay);
}

/* A hand-made description: one field of one segment, or the count, set
 * to a raw value or near its own or another field's value (where the
 * off-by-one cases are: filesz = memsz + 1, offset + filesz = len + 1).
 * Read from the recipe, before the image takes the rest of the input. */
struct corruption {
	uint8_t seg, which, how;
	int16_t delta;
	uint64_t raw;
};

static void corrupt(const struct corruption *c, struct kvmkit_multiboot_image *img)
{
	struct kvmkit_elf_segment *s = &img->elf.segs[c->seg % img->elf.nsegs];
	uint64_t *f[4] = { &s->paddr, &s->offset, &s->filesz, &s->memsz };
	unsigned int which = c->which % 5;
	uint64_t v;

	if (c->how % 3 == 0)
		v = c->raw;
	else if (c->how % 3 == 1)
		v = (which < 4 ? *f[which] : img->elf.nsegs) + (uint64_t)(int64_t)c->delta;
	else
		v = *f[(c->how >> 2) % 4] + (uint64_t)(int64_t)c->delta;
	if (which < 4)
		*f[which] = v;
	else
		img->elf.nsegs = (unsigned int)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t file[MAX_FILE], modbuf[MAX_MODS][8192];
	static char cmdline[KVMKIT_MULTIBOOT_AREA_MAX + 64], names[MAX_MODS][32];
	struct kvmkit_multiboot_module mods[MAX_MODS];
	const uint8_t *mod_data[MAX_MODS];
	size_t mod_len[MAX_MODS];
	struct kvmkit_multiboot_layout lay;
	struct kvmkit_multiboot_image img;
	struct kvmk_guest_ram ram;
	struct fuzz_in in = { data, size };
	struct corruption cor = { 0 };
	uint8_t mode = (uint8_t)fuzz_take(&in, 1);
	uint64_t mem;
	unsigned int nmods;
	size_t clen, len;
	const uint8_t *image;
	uint8_t *rambuf;
	uint32_t entry;
	bool placed;

	/* Mostly RAM the load can run with; sometimes many GiB (placement). */
	mem = (mode & 2) ? fuzz_take(&in, 2) << 20 :
			   (1u << 20) + (fuzz_take(&in, 2) % 0x301) * 4096;
	clen = (mode & 4) ? fuzz_take(&in, 2) % sizeof(cmdline) : fuzz_take(&in, 1);
	for (size_t i = 0; i < clen; i++)
		cmdline[i] = (char)(fuzz_take(&in, 1) % 94 + 33);
	cmdline[clen] = 0;
	nmods = (unsigned int)fuzz_take(&in, 1) % (MAX_MODS + 1);
	for (unsigned int m = 0; m < nmods; m++) {
		size_t nlen = fuzz_take(&in, 1) % sizeof(names[m]);

		mod_len[m] = fuzz_take(&in, 2) % sizeof(modbuf[m]);
		for (size_t i = 0; i < mod_len[m]; i++)
			modbuf[m][i] = (uint8_t)(i * 31 + m);
		for (size_t i = 0; i < nlen; i++)
			names[m][i] = (char)(fuzz_take(&in, 1) % 94 + 33);
		names[m][nlen] = 0;
		mod_data[m] = modbuf[m];
		mods[m] = (struct kvmkit_multiboot_module){ modbuf[m], mod_len[m], names[m] };
	}
	if (mode & 8) {
		cor.seg = (uint8_t)fuzz_take(&in, 1);
		cor.which = (uint8_t)fuzz_take(&in, 1);
		cor.how = (uint8_t)fuzz_take(&in, 1);
		cor.delta = (int16_t)fuzz_take(&in, 2);
		cor.raw = fuzz_take(&in, 8);
	}
	if (mode & 1) {
		image = in.p;
		len = in.n;
	} else {
		len = assemble(&in, file);
		image = file;
	}

	(void)kvmkit_multiboot_detect(image, len);
	if (kvmkit_multiboot_parse(image, len, &img))
		return 0;
	check_parsed(&img, len);
	if (mode & 8) {
		corrupt(&cor, &img);
		if (mem <= MB_MAX_RAM && (rambuf = malloc(mem))) {
			kvmk_guest_ram_of_buffer(&ram, rambuf, mem);
			(void)kvmkit_multiboot_place(&img, mem, cmdline, mods, nmods, &lay);
			(void)kvmk_elf_load(&ram, image, len, &img.elf, 0, 0);
			free(rambuf);
		}
		return 0;
	}
	placed = !kvmkit_multiboot_place(&img, mem, cmdline, mods, nmods, &lay);
	if (placed) {
		static uint8_t info[KVMKIT_MULTIBOOT_AREA_MAX];
		size_t isize = lay.area_size - KVMKIT_MULTIBOOT_INFO_OFFSET;
		int need = kvmkit_multiboot_build_info(NULL, 0, 0, mem, cmdline, lay.mods, nmods);

		check_layout(&img, &lay, mem, nmods, mod_len);
		CHECK(need > 0 && (size_t)need <= isize);
		CHECK(kvmkit_multiboot_build_info(info, isize, lay.info, mem, cmdline, lay.mods,
						  nmods) == need);
		check_info(info, isize, lay.info, mem, cmdline, &lay);
	}
	if (mem > MB_MAX_RAM || !(rambuf = malloc(mem)))
		return 0;
	kvmk_guest_ram_of_buffer(&ram, rambuf, mem);
	/* RAM-sized buffer: the load succeeds exactly when placement does. */
	CHECK(!kvmk_multiboot_load(&ram, image, len, cmdline, mods, nmods, &lay, &entry) == placed);
	if (placed) {
		CHECK(entry == img.entry);
		check_loaded(rambuf, image, &img, &lay, mod_data, mod_len, mem, cmdline);
	}
	free(rambuf);
	return 0;
}
