// SPDX-License-Identifier: MIT
/* Multiboot header search, ELF32 checks, placement of modules and of
 * kvmkit's area, the information structure, and loading into a plain buffer
 * standing for guest RAM, without KVM. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <kvmkit/kvmkit.h>
#include "boot/boot_internal.h"

#define LOAD 0x400000u

/* An ELF32 image: header, 2 program headers, a multiboot header at @mb_off
 * in the payload (the payload is at file offset 0x100). */
struct img32 {
	Elf32_Ehdr eh;
	Elf32_Phdr ph[2];
	uint8_t pad[0x100 - sizeof(Elf32_Ehdr) - 2 * sizeof(Elf32_Phdr)];
	uint8_t payload[0x2400];
};

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void mb_header(uint8_t *p, uint32_t flags)
{
	put32(p, KVMKIT_MULTIBOOT_MAGIC);
	put32(p + 4, flags);
	put32(p + 8, 0u - (KVMKIT_MULTIBOOT_MAGIC + flags));
}

static struct img32 *make32(uint32_t flags)
{
	struct img32 *im = calloc(1, sizeof(*im));

	memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
	im->eh.e_ident[EI_CLASS] = ELFCLASS32;
	im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im->eh.e_ident[EI_VERSION] = EV_CURRENT;
	im->eh.e_type = ET_EXEC;
	im->eh.e_machine = EM_386;
	im->eh.e_version = EV_CURRENT;
	im->eh.e_entry = LOAD + 0x20;
	im->eh.e_phoff = offsetof(struct img32, ph);
	im->eh.e_phentsize = sizeof(Elf32_Phdr);
	im->eh.e_phnum = 2;
	im->eh.e_ehsize = sizeof(Elf32_Ehdr);
	im->ph[0].p_type = PT_LOAD;
	im->ph[0].p_offset = offsetof(struct img32, payload);
	im->ph[0].p_paddr = im->ph[0].p_vaddr = LOAD;
	im->ph[0].p_filesz = 0x1000;
	im->ph[0].p_memsz = 0x1000;
	im->ph[1].p_type = PT_LOAD;
	im->ph[1].p_offset = offsetof(struct img32, payload) + 0x1000;
	im->ph[1].p_paddr = im->ph[1].p_vaddr = LOAD + 0x1000;
	im->ph[1].p_filesz = 0x100;
	im->ph[1].p_memsz = 0x3000; /* .bss */
	mb_header(im->payload, flags);
	return im;
}

static void expect_format(const void *buf, size_t len, const char *needle)
{
	struct kvmkit_multiboot_image img;

	assert_int_equal(kvmkit_multiboot_parse(buf, len, &img), -ENOEXEC);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_FORMAT);
	if (needle && !strstr(kvmkit_strerror(), needle))
		fail_msg("error '%s' does not mention '%s'", kvmkit_strerror(), needle);
}

static void test_valid(void **state)
{
	struct img32 *im = make32(KVMKIT_MB_FLAG_PAGE_ALIGN | KVMKIT_MB_FLAG_MEMORY_INFO);
	struct kvmkit_multiboot_image img;

	assert_true(kvmkit_multiboot_detect(im, sizeof(*im)));
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(img.header_offset, offsetof(struct img32, payload));
	assert_int_equal(img.flags, 3);
	assert_int_equal(img.entry, LOAD + 0x20);
	assert_int_equal(img.elf.nsegs, 2);
	assert_int_equal(img.elf.lowest, LOAD);
	assert_int_equal(img.elf.highest, LOAD + 0x4000);
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), 64 << 20, 0), 0);
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), 64 << 20, 12345), 0);
	free(im);
}

static void test_header_search(void **state)
{
	struct img32 *im = make32(0);
	struct kvmkit_multiboot_image img;

	/* A misaligned copy is not found. */
	memset(im->payload, 0, 12);
	mb_header(im->payload + 2, 0);
	assert_false(kvmkit_multiboot_detect(im, sizeof(*im)));
	expect_format(im, sizeof(*im), "no multiboot header");
	/* The last aligned slot inside 8 KiB is found ... */
	memset(im->payload, 0, 16);
	mb_header((uint8_t *)im + KVMKIT_MULTIBOOT_SEARCH - 12, 0);
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(img.header_offset, KVMKIT_MULTIBOOT_SEARCH - 12);
	/* ... one that ends past 8 KiB is not. */
	memset((uint8_t *)im + KVMKIT_MULTIBOOT_SEARCH - 12, 0, 12);
	mb_header((uint8_t *)im + KVMKIT_MULTIBOOT_SEARCH - 8, 0);
	expect_format(im, sizeof(*im), "extends past the first 8192 bytes");
	memset((uint8_t *)im + KVMKIT_MULTIBOOT_SEARCH - 8, 0, 8);
	mb_header((uint8_t *)im + KVMKIT_MULTIBOOT_SEARCH, 0);
	expect_format(im, sizeof(*im), "first 8192 bytes");
	free(im);
}

static void test_bad_checksum(void **state)
{
	struct img32 *im = make32(0);

	put32(im->payload + 8, 0x12345678);
	assert_false(kvmkit_multiboot_detect(im, sizeof(*im)));
	expect_format(im, sizeof(*im), "bad checksum");
	/* Flags changed without fixing the checksum. */
	mb_header(im->payload, 0);
	put32(im->payload + 4, 2);
	expect_format(im, sizeof(*im), "bad checksum");
	free(im);
}

static void test_flags(void **state)
{
	struct img32 *im = make32(KVMKIT_MB_FLAG_AOUT_KLUDGE);
	struct kvmkit_multiboot_image img;

	expect_format(im, sizeof(*im), "a.out kludge");
	mb_header(im->payload, 1u << 3); /* unknown required bit */
	expect_format(im, sizeof(*im), "unsupported features");
	mb_header(im->payload, 1u << 20); /* unknown optional bit: fine */
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	mb_header(im->payload, KVMKIT_MB_FLAG_VIDEO_MODE); /* warned about, accepted */
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	free(im);
}

static void test_truncated(void **state)
{
	struct img32 *im = make32(0);

	expect_format(im, 0, "too short");
	expect_format(im, 11, "too short");
	/* Header present, segment data cut off. */
	expect_format(im, offsetof(struct img32, payload) + 0x200, "beyond");
	/* Header cut in the middle. */
	expect_format(im, offsetof(struct img32, payload) + 8, "truncated");
	free(im);
}

static void test_not_elf32(void **state)
{
	struct img32 *im = make32(0);

	im->eh.e_machine = EM_X86_64;
	expect_format(im, sizeof(*im), "not an ELF32 i386");
	im->eh.e_machine = EM_386;
	im->eh.e_ident[EI_CLASS] = ELFCLASS64;
	assert_false(kvmkit_multiboot_detect(im, sizeof(*im)));
	im->eh.e_ident[EI_CLASS] = ELFCLASS32;
	im->eh.e_ident[EI_MAG3] = 'X';
	assert_false(kvmkit_multiboot_detect(im, sizeof(*im)));
	expect_format(im, sizeof(*im), "not an ELF");
	free(im);
}

static void test_entry(void **state)
{
	struct img32 *im = make32(0);
	struct kvmkit_multiboot_image img;

	im->eh.e_entry = LOAD + 0x10000;
	expect_format(im, sizeof(*im), "entry point");
	/* A higher-half kernel: virtual entry translated to physical. */
	im->ph[0].p_vaddr = 0xc0000000u + LOAD;
	im->ph[1].p_vaddr = 0xc0000000u + LOAD + 0x1000;
	im->eh.e_entry = 0xc0000000u + LOAD + 0x1010;
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(img.entry, LOAD + 0x1010);
	free(im);
}

static void test_overlap_and_ram(void **state)
{
	struct img32 *im = make32(0);

	/* Overlapping PT_LOADs are refused by the ELF parser. */
	im->ph[1].p_paddr = LOAD + 0x800;
	expect_format(im, sizeof(*im), "overlaps");
	im->ph[1].p_paddr = LOAD + 0x1000;

	/* Where kvmkit's area used to be fixed (0x9000-0x10000): fine now. */
	im->ph[0].p_paddr = 0xf000;
	im->ph[1].p_paddr = 0x10000;
	im->eh.e_entry = 0xf020;
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), 64 << 20, 0), 0);
	/* Page 0 too. */
	im->ph[0].p_paddr = 0;
	im->ph[1].p_paddr = 0x1000;
	im->eh.e_entry = 0x20;
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), 64 << 20, 0), 0);

	/* Out of memory: the image ends past RAM. */
	im->ph[0].p_paddr = LOAD;
	im->ph[1].p_paddr = LOAD + 0x1000;
	im->eh.e_entry = LOAD + 0x20;
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), 4 << 20, 0), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "outside guest RAM"));
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), (4 << 20) + 0x4000, 0), 0);
	/* The module does not fit after the image. */
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), (4 << 20) + 0x4000, 1),
			 -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "does not fit"));
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), (4 << 20) + 0x5000, 4096), 0);
	/* Less than 1 MiB of RAM. */
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), 512 << 10, 0), -EINVAL);
	/* The 3 GiB hole: low RAM ends there even with more RAM. */
	im->ph[0].p_paddr = 0xbffff000u;
	im->ph[0].p_memsz = 0x2000;
	im->ph[1].p_paddr = LOAD;
	im->eh.e_entry = LOAD + 0x20;
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), 4ull << 30, 0), -EINVAL);
	free(im);
}

static void test_place_modules(void **state)
{
	struct img32 *im = make32(0);
	struct kvmkit_multiboot_image img;
	struct kvmkit_multiboot_module mods[2] = { { NULL, 100, "a" }, { NULL, 5000, NULL } };
	struct kvmkit_multiboot_layout lay;
	const struct kvmkit_multiboot_placed *p = lay.mods;

	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, mods, 2, &lay), 0);
	assert_int_equal(lay.nmods, 2);
	/* Nothing in conventional memory: kvmkit's area where it always was. */
	assert_int_equal(lay.area, KVMKIT_MULTIBOOT_AREA_DEFAULT);
	assert_int_equal(lay.info, KVMKIT_MULTIBOOT_INFO);
	assert_int_equal(lay.area_size, 4096);
	assert_int_equal(p[0].start, LOAD + 0x4000);
	assert_int_equal(p[0].end, LOAD + 0x4000 + 100);
	assert_int_equal(p[1].start, LOAD + 0x5000); /* page aligned */
	assert_int_equal(p[1].end, LOAD + 0x5000 + 5000);
	assert_string_equal(p[0].string, "a");
	assert_string_equal(p[1].string, "");
	/* A low image: modules still go at 1 MiB or above. */
	im->ph[0].p_paddr = 0x20000;
	im->ph[1].p_paddr = 0x21000;
	im->eh.e_entry = 0x20020;
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, mods, 1, &lay), 0);
	assert_int_equal(p[0].start, 0x100000);
	free(im);
}

static const struct kvmkit_multiboot_info *info_of(const uint8_t *buf)
{
	return (const struct kvmkit_multiboot_info *)buf;
}

#define GPA 0x9100u
static const void *at(const uint8_t *buf, uint32_t gpa)
{
	return buf + (gpa - GPA);
}

static void test_info_layout(void **state)
{
	static uint8_t buf[4096];
	struct kvmkit_multiboot_placed mods[1] = { { 0x500000, 0x500123, "/tmp/initrd.img" } };
	const struct kvmkit_multiboot_info *mi = info_of(buf);
	struct kvmkit_multiboot_mmap_entry e[4];
	struct kvmkit_multiboot_mod_entry me;
	int n;

	n = kvmkit_multiboot_build_info(buf, sizeof(buf), GPA, 256 << 20, "/k/mb.elf a=1 b", mods,
					1);
	assert_true(n > (int)sizeof(*mi));
	assert_int_equal(mi->flags, KVMKIT_MBI_MEM | KVMKIT_MBI_CMDLINE | KVMKIT_MBI_MODS |
					    KVMKIT_MBI_MMAP | KVMKIT_MBI_LOADER_NAME);
	assert_int_equal(mi->mem_lower, 640);
	assert_int_equal(mi->mem_upper, (256 << 10) - 1024);
	/* Field offsets of the 0.6.96 layout. */
	assert_int_equal(offsetof(struct kvmkit_multiboot_info, cmdline), 16);
	assert_int_equal(offsetof(struct kvmkit_multiboot_info, mmap_length), 44);
	assert_int_equal(offsetof(struct kvmkit_multiboot_info, boot_loader_name), 64);
	assert_int_equal(sizeof(struct kvmkit_multiboot_mmap_entry), 24);

	assert_string_equal(at(buf, mi->cmdline), "/k/mb.elf a=1 b");
	assert_string_equal(at(buf, mi->boot_loader_name), "kvmkit");
	assert_int_equal(mi->mods_count, 1);
	memcpy(&me, at(buf, mi->mods_addr), sizeof(me));
	assert_int_equal(me.mod_start, 0x500000);
	assert_int_equal(me.mod_end, 0x500123);
	assert_string_equal(at(buf, me.string), "/tmp/initrd.img");

	assert_int_equal(mi->mmap_length, 3 * 24);
	memcpy(e, at(buf, mi->mmap_addr), 3 * 24);
	assert_int_equal(e[0].size, 20);
	assert_int_equal(e[0].base_addr, 0);
	assert_int_equal(e[0].length, 0x9fc00);
	assert_int_equal(e[0].type, 1);
	assert_int_equal(e[1].base_addr, 0x9fc00);
	assert_int_equal(e[1].length, 0x100000 - 0x9fc00);
	assert_int_equal(e[1].type, 2);
	assert_int_equal(e[2].base_addr, 0x100000);
	assert_int_equal(e[2].length, (256 << 20) - 0x100000);
	assert_int_equal(e[2].type, 1);
	/* Everything stays inside the bytes reported used. */
	assert_true(mi->cmdline + sizeof("/k/mb.elf a=1 b") <= GPA + (uint32_t)n);
	assert_true(mi->mmap_addr % 4 == 0 && mi->mods_addr % 4 == 0);
}

static void test_info_high_ram(void **state)
{
	static uint8_t buf[4096];
	const struct kvmkit_multiboot_info *mi = info_of(buf);
	struct kvmkit_multiboot_mmap_entry e[4];

	assert_true(kvmkit_multiboot_build_info(buf, sizeof(buf), GPA, 5ull << 30, NULL, NULL, 0) >
		    0);
	assert_int_equal(mi->mem_upper, (3u << 20) - 1024); /* KiB up to the hole */
	assert_int_equal(mi->mods_count, 0);
	assert_string_equal(at(buf, mi->cmdline), "");
	assert_int_equal(mi->mmap_length, 4 * 24);
	memcpy(e, at(buf, mi->mmap_addr), 4 * 24);
	assert_int_equal(e[2].base_addr + e[2].length, 0xc0000000ull);
	assert_int_equal(e[3].base_addr, 1ull << 32);
	assert_int_equal(e[3].length, 2ull << 30);
	assert_int_equal(e[3].type, 1);
}

static void test_info_overflow(void **state)
{
	static uint8_t buf[512];
	char line[600];

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	assert_int_equal(
		kvmkit_multiboot_build_info(buf, sizeof(buf), GPA, 64 << 20, line, NULL, 0),
		-EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	assert_non_null(strstr(kvmkit_strerror(), "do not fit"));
	line[100] = 0;
	assert_true(kvmkit_multiboot_build_info(buf, sizeof(buf), GPA, 64 << 20, line, NULL, 0) >
		    0);
	assert_int_equal(kvmkit_multiboot_build_info(buf, sizeof(buf), GPA, 1 << 19, line, NULL, 0),
			 -EINVAL);
	/* Without a buffer: the size it needs, the same as it uses. */
	assert_int_equal(
		kvmkit_multiboot_build_info(NULL, 0, 0, 64 << 20, line, NULL, 0),
		kvmkit_multiboot_build_info(buf, sizeof(buf), GPA, 64 << 20, line, NULL, 0));
	/* Nothing may end past 4 GiB; a module cannot end before it starts. */
	assert_int_equal(
		kvmkit_multiboot_build_info(buf, sizeof(buf), 0xffffff00u, 64 << 20, line, NULL, 0),
		-EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "4 GiB"));
	{
		struct kvmkit_multiboot_placed bad = { 0x200000, 0x1ff000, "x" };

		assert_int_equal(
			kvmkit_multiboot_build_info(buf, sizeof(buf), GPA, 64 << 20, NULL, &bad, 1),
			-EINVAL);
		assert_non_null(strstr(kvmkit_strerror(), "ends before"));
	}
}

/* ---- placement where no segment lies (low-linked payloads) ------------- */

#define LOW 0x8000u /* the usual link address of real-mode test payloads */

/* make32's image moved to @at: segments [at, at+0x1000) and
 * [at+0x1000, at+0x4000) (.bss from at+0x1100), payload bytes patterned. */
static struct img32 *make_at(uint32_t at)
{
	struct img32 *im = make32(KVMKIT_MB_FLAG_PAGE_ALIGN | KVMKIT_MB_FLAG_MEMORY_INFO);

	for (size_t i = 12; i < sizeof(im->payload); i++)
		im->payload[i] = (uint8_t)(i * 7 + 3);
	im->ph[0].p_paddr = im->ph[0].p_vaddr = at;
	im->ph[1].p_paddr = im->ph[1].p_vaddr = at + 0x1000;
	im->eh.e_entry = at + 0x20;
	return im;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* Neither the area nor a module meets a segment, each other or page 0. */
static void assert_disjoint(const struct kvmkit_multiboot_image *img,
			    const struct kvmkit_multiboot_layout *lay, uint64_t mem)
{
	assert_int_equal(lay->area % 4096, 0);
	assert_int_equal(lay->area_size % 4096, 0);
	assert_true(lay->area >= 4096);
	assert_true((uint64_t)lay->area + lay->area_size <= mem);
	assert_int_equal(lay->info, lay->area + KVMKIT_MULTIBOOT_INFO_OFFSET);
	for (unsigned int i = 0; i < img->elf.nsegs; i++) {
		const struct kvmkit_elf_segment *sg = &img->elf.segs[i];

		if (overlaps(sg->paddr, sg->memsz, lay->area, lay->area_size))
			fail_msg("area 0x%x+0x%x overlaps segment %u", lay->area, lay->area_size,
				 i);
		for (unsigned int m = 0; m < lay->nmods; m++)
			if (overlaps(sg->paddr, sg->memsz, lay->mods[m].start,
				     lay->mods[m].end - lay->mods[m].start))
				fail_msg("module %u overlaps segment %u", m, i);
	}
	for (unsigned int m = 0; m < lay->nmods; m++) {
		assert_int_equal(lay->mods[m].start % 4096, 0);
		assert_true(lay->mods[m].end <= mem);
		assert_false(overlaps(lay->mods[m].start, lay->mods[m].end - lay->mods[m].start,
				      lay->area, lay->area_size));
		for (unsigned int o = 0; o < m; o++)
			assert_false(overlaps(
				lay->mods[m].start, lay->mods[m].end - lay->mods[m].start,
				lay->mods[o].start, lay->mods[o].end - lay->mods[o].start));
	}
}

/* Refused by today's fixed 0x9000-0x10000 area; placed after it now. */
static void test_place_low_image(void **state)
{
	struct img32 *im = make_at(LOW);
	struct kvmkit_multiboot_module mods[1] = { { NULL, 100, "m" } };
	struct kvmkit_multiboot_layout lay;
	struct kvmkit_multiboot_image img;

	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), 64 << 20, 100), 0);
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, "x y", mods, 1, &lay), 0);
	/* The first free page after the image's last segment (0x8000-0xbfff). */
	assert_int_equal(lay.area, 0xc000);
	assert_int_equal(lay.info, 0xc100);
	assert_int_equal(lay.mods[0].start, 0x100000);
	assert_disjoint(&img, &lay, 64 << 20);
	free(im);
}

static void test_place_fallbacks(void **state)
{
	struct img32 *im = make_at(LOW);
	struct kvmkit_multiboot_module mods[1] = { { NULL, 100, "m" } };
	struct kvmkit_multiboot_layout lay;
	struct kvmkit_multiboot_image img;
	char line[8192];

	/* Conventional memory full from 0x8000 to 0x9f000: above 1 MiB,
	 * after the module. */
	im->ph[1].p_memsz = 0x9f000 - (LOW + 0x1000);
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, mods, 1, &lay), 0);
	assert_int_equal(lay.mods[0].start, 0x100000);
	assert_int_equal(lay.area, 0x101000);
	assert_disjoint(&img, &lay, 64 << 20);
	/* 1 MiB of RAM: nothing above it, so below 0x8000 (page 0 left). */
	assert_int_equal(kvmkit_multiboot_place(&img, 1 << 20, NULL, NULL, 0, &lay), 0);
	assert_int_equal(lay.area, 0x1000);
	assert_disjoint(&img, &lay, 1 << 20);
	/* A long command line takes more pages; one too long is refused. */
	memset(line, 'c', sizeof(line) - 1);
	line[sizeof(line) - 1] = 0;
	assert_int_equal(kvmkit_multiboot_place(&img, 1 << 20, line, NULL, 0, &lay), 0);
	assert_int_equal(lay.area, 0x1000);
	assert_int_equal(lay.area_size, 0x3000);
	assert_disjoint(&img, &lay, 1 << 20);
	/* No free page at all below 1 MiB, no RAM above it. */
	im->ph[0].p_paddr = 0x1000;
	im->ph[0].p_memsz = 0x1000;
	im->ph[1].p_paddr = 0x2000;
	im->ph[1].p_memsz = 0x9fc00 - 0x2000;
	im->eh.e_entry = 0x1020;
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(kvmkit_multiboot_place(&img, 1 << 20, NULL, NULL, 0, &lay), -EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	assert_non_null(strstr(kvmkit_strerror(), "no free RAM"));
	free(im);
	/* More than KVMKIT_MULTIBOOT_AREA_MAX of strings. */
	{
		static char huge[KVMKIT_MULTIBOOT_AREA_MAX];

		im = make_at(LOW);
		memset(huge, 'h', sizeof(huge) - 1);
		assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
		assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, huge, NULL, 0, &lay),
				 -EINVAL);
		assert_non_null(strstr(kvmkit_strerror(), "do not fit"));
		free(im);
	}
}

/* kvmkit_multiboot_place trusts no field of a hand-made description. */
static void test_place_hostile_desc(void **state)
{
	struct img32 *im = make_at(0x400000);
	struct kvmkit_multiboot_layout lay;
	struct kvmkit_multiboot_image good, img;

	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &good), 0);
	free(im);
	img = good;
	img.elf.nsegs = KVMKIT_ELF_MAX_SEGMENTS + 1;
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, NULL, 0, &lay), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "segments"));
	img = good;
	img.elf.segs[1].filesz = img.elf.segs[1].memsz + 1;
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, NULL, 0, &lay), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "segment 1: filesz"));
	img = good;
	img.elf.segs[1].paddr = UINT64_MAX - 0x10;
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, NULL, 0, &lay), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "wraps"));
	img = good;
	img.elf.segs[1].paddr = img.elf.segs[0].paddr + 0x800;
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, NULL, 0, &lay), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "overlaps"));
	img = good;
	img.entry = 0x10;
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, NULL, 0, &lay), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "entry point"));
	/* Past the end of RAM although the cached bounds say otherwise. */
	img = good;
	img.elf.segs[1].paddr = (64 << 20) - 0x1000;
	img.elf.highest = 0x404000;
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, NULL, 0, &lay), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "segment '1: 0x3fff000+0x3000"));
	img = good;
	img.elf.nsegs = 0;
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, NULL, 0, &lay), -ENOEXEC);
	/* An empty segment near the top of the address space moves nothing
	 * (the modules' start would wrap to page 0). */
	{
		struct kvmkit_multiboot_module mod = { NULL, 100, "m" };

		img = good;
		img.elf.nsegs = 3;
		img.elf.segs[2] = (struct kvmkit_elf_segment){ UINT64_MAX - 0xffe, 0, 0, 0, 0 };
		assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, &mod, 1, &lay), 0);
		assert_int_equal(lay.mods[0].start, 0x404000);
	}
}

#define RAM (2u << 20)
#define GUARD 0x10000u
#define FILL 0x5a

static uint8_t *new_ram(struct kvmk_guest_ram *ram)
{
	uint8_t *buf = malloc(RAM + GUARD);

	memset(buf, FILL, RAM + GUARD);
	kvmk_guest_ram_of_buffer(ram, buf, RAM);
	return buf;
}

static const char *str_at(const uint8_t *mem, uint32_t gpa)
{
	assert_true(gpa < RAM);
	assert_non_null(memchr(mem + gpa, 0, RAM - gpa));
	return (const char *)mem + gpa;
}

/* Everything read back from guest memory: segments intact, .bss zero, the
 * GDT, the information structure and everything it points to, none of it
 * over a segment. */
static void test_load_low_image(void **state)
{
	static const char text_a[] = "module-a-contents", cmd[] = "/low.elf a=1 -- b";
	static uint8_t data_b[5000];
	struct img32 *im = make_at(LOW);
	struct kvmkit_multiboot_module mods[2] = { { text_a, sizeof(text_a), "/boot/a" },
						   { data_b, sizeof(data_b), NULL } };
	struct kvmkit_multiboot_layout lay;
	struct kvmkit_multiboot_image img;
	struct kvmkit_multiboot_info mi;
	struct kvmkit_multiboot_mod_entry me[2];
	struct kvmkit_multiboot_mmap_entry map[3];
	struct kvmk_guest_ram ram;
	uint8_t *mem = new_ram(&ram);
	uint64_t gdt[3];
	uint32_t entry = 0;

	for (size_t i = 0; i < sizeof(data_b); i++)
		data_b[i] = (uint8_t)(i ^ 0x3c);
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(kvmk_multiboot_load(&ram, im, sizeof(*im), cmd, mods, 2, &lay, &entry), 0);
	assert_int_equal(entry, LOW + 0x20);
	assert_int_equal(lay.area, 0xc000);
	assert_disjoint(&img, &lay, RAM);

	/* The image: file bytes, then zeroed .bss; page 0 untouched. */
	assert_memory_equal(mem + LOW, im->payload, 0x1000);
	assert_memory_equal(mem + LOW + 0x1000, im->payload + 0x1000, 0x100);
	for (uint32_t a = LOW + 0x1100; a < LOW + 0x4000; a++)
		assert_int_equal(mem[a], 0);
	for (uint32_t a = 0; a < 4096; a++)
		assert_int_equal(mem[a], FILL);

	memcpy(gdt, mem + lay.area, sizeof(gdt));
	assert_int_equal(gdt[0], 0);
	assert_int_equal(gdt[1], 0x00cf9a000000ffffull);
	assert_int_equal(gdt[2], 0x00cf92000000ffffull);

	memcpy(&mi, mem + lay.info, sizeof(mi));
	assert_int_equal(mi.flags, KVMKIT_MBI_MEM | KVMKIT_MBI_CMDLINE | KVMKIT_MBI_MODS |
					   KVMKIT_MBI_MMAP | KVMKIT_MBI_LOADER_NAME);
	assert_int_equal(mi.mem_upper, (RAM >> 10) - 1024);
	assert_string_equal(str_at(mem, mi.cmdline), cmd);
	assert_string_equal(str_at(mem, mi.boot_loader_name), "kvmkit");
	assert_int_equal(mi.mmap_length, 3 * sizeof(map[0]));
	memcpy(map, mem + mi.mmap_addr, sizeof(map));
	assert_int_equal(map[0].base_addr, 0);
	assert_int_equal(map[0].length, 0x9fc00);
	assert_int_equal(map[2].base_addr + map[2].length, RAM);
	assert_int_equal(mi.mods_count, 2);
	memcpy(me, mem + mi.mods_addr, sizeof(me));
	assert_int_equal(me[0].mod_start, lay.mods[0].start);
	assert_int_equal(me[0].mod_end - me[0].mod_start, sizeof(text_a));
	assert_memory_equal(mem + me[0].mod_start, text_a, sizeof(text_a));
	assert_string_equal(str_at(mem, me[0].string), "/boot/a");
	assert_int_equal(me[1].mod_end - me[1].mod_start, sizeof(data_b));
	assert_memory_equal(mem + me[1].mod_start, data_b, sizeof(data_b));
	assert_string_equal(str_at(mem, me[1].string), "");

	/* Everything the structure points at is inside the area. */
	{
		const uint32_t at[][2] = {
			{ lay.info, sizeof(mi) },
			{ mi.cmdline, sizeof(cmd) },
			{ mi.mmap_addr, mi.mmap_length },
			{ mi.mods_addr, sizeof(me) },
			{ me[0].string, sizeof("/boot/a") },
			{ me[1].string, 1 },
			{ mi.boot_loader_name, sizeof("kvmkit") },
		};

		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
			if (at[i][0] < lay.area + 24 ||
			    at[i][0] + at[i][1] > lay.area + lay.area_size)
				fail_msg("item %zu at 0x%x+%u outside the area 0x%x+0x%x", i,
					 at[i][0], at[i][1], lay.area, lay.area_size);
	}
	/* Nothing past RAM. */
	for (uint32_t a = RAM; a < RAM + GUARD; a++)
		assert_int_equal(mem[a], FILL);
	free(mem);
	free(im);
}

/* A load that cannot complete writes nothing. */
static void test_load_refused_writes_nothing(void **state)
{
	struct img32 *im = make_at(LOW);
	struct kvmkit_multiboot_module mod = { NULL, RAM, "big" };
	struct kvmkit_multiboot_layout lay;
	struct kvmk_guest_ram ram;
	uint8_t *mem = new_ram(&ram);
	uint32_t entry = 0;

	assert_int_equal(kvmk_multiboot_load(&ram, im, sizeof(*im), NULL, &mod, 1, &lay, &entry),
			 -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "does not fit"));
	/* A module with a length but no data. */
	mod.len = 10;
	assert_int_equal(kvmk_multiboot_load(&ram, im, sizeof(*im), NULL, &mod, 1, &lay, &entry),
			 -EINVAL);
	/* A segment past this RAM. */
	im->ph[1].p_paddr = RAM - 0x1000;
	assert_int_equal(kvmk_multiboot_load(&ram, im, sizeof(*im), NULL, NULL, 0, &lay, &entry),
			 -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "outside guest RAM"));
	for (uint32_t a = 0; a < RAM + GUARD; a++)
		if (mem[a] != FILL)
			fail_msg("byte 0x%x written", a);
	free(mem);
	free(im);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_header_search),
		cmocka_unit_test(test_bad_checksum),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_not_elf32),
		cmocka_unit_test(test_entry),
		cmocka_unit_test(test_overlap_and_ram),
		cmocka_unit_test(test_place_modules),
		cmocka_unit_test(test_info_layout),
		cmocka_unit_test(test_info_high_ram),
		cmocka_unit_test(test_info_overflow),
		cmocka_unit_test(test_place_low_image),
		cmocka_unit_test(test_place_fallbacks),
		cmocka_unit_test(test_place_hostile_desc),
		cmocka_unit_test(test_load_low_image),
		cmocka_unit_test(test_load_refused_writes_nothing),
	};

	return cmocka_run_group_tests_name("multiboot", tests, NULL, NULL);
}
