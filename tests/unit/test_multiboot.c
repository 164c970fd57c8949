// SPDX-License-Identifier: MIT
/* Multiboot header search, ELF32 checks, module placement and the
 * information structure, without KVM. */
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
	struct kvmkit_multiboot_image img;

	/* Overlapping PT_LOADs are refused by the ELF parser. */
	im->ph[1].p_paddr = LOAD + 0x800;
	expect_format(im, sizeof(*im), "overlaps");
	im->ph[1].p_paddr = LOAD + 0x1000;

	/* Image over kvmkit's area. */
	im->ph[0].p_paddr = 0xf000;
	im->ph[1].p_paddr = 0x10000;
	im->eh.e_entry = 0xf020;
	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, NULL, 0, NULL), -EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	assert_non_null(strstr(kvmkit_strerror(), "multiboot area"));
	assert_int_equal(kvmkit_boot_check_multiboot(im, sizeof(*im), 64 << 20, 0), -EINVAL);
	/* Just below the area is fine; page 0 too. */
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
	struct kvmkit_multiboot_placed p[2];

	assert_int_equal(kvmkit_multiboot_parse(im, sizeof(*im), &img), 0);
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, mods, 2, p), 0);
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
	assert_int_equal(kvmkit_multiboot_place(&img, 64 << 20, mods, 1, p), 0);
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
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),	      cmocka_unit_test(test_header_search),
		cmocka_unit_test(test_bad_checksum),  cmocka_unit_test(test_flags),
		cmocka_unit_test(test_truncated),     cmocka_unit_test(test_not_elf32),
		cmocka_unit_test(test_entry),	      cmocka_unit_test(test_overlap_and_ram),
		cmocka_unit_test(test_place_modules), cmocka_unit_test(test_info_layout),
		cmocka_unit_test(test_info_high_ram), cmocka_unit_test(test_info_overflow),
	};

	return cmocka_run_group_tests_name("multiboot", tests, NULL, NULL);
}
