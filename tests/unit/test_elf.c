// SPDX-License-Identifier: MIT
/* ELF parser and loader checks against malformed and truncated images and
 * hand-made image descriptions (loading into a plain buffer standing for
 * guest RAM: no KVM). */
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

/* An ELF64 image with up to 4 program headers, built in a buffer. */
struct img64 {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[4];
	uint8_t payload[256];
};

static void make64(struct img64 *im, unsigned int nph)
{
	memset(im, 0, sizeof(*im));
	memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
	im->eh.e_ident[EI_CLASS] = ELFCLASS64;
	im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im->eh.e_ident[EI_VERSION] = EV_CURRENT;
	im->eh.e_type = ET_EXEC;
	im->eh.e_machine = EM_X86_64;
	im->eh.e_version = EV_CURRENT;
	im->eh.e_entry = 0x100000;
	im->eh.e_phoff = offsetof(struct img64, ph);
	im->eh.e_phentsize = sizeof(Elf64_Phdr);
	im->eh.e_phnum = (uint16_t)nph;
	im->eh.e_ehsize = sizeof(Elf64_Ehdr);
	for (unsigned int i = 0; i < nph; i++) {
		im->ph[i].p_type = PT_LOAD;
		im->ph[i].p_offset = offsetof(struct img64, payload);
		im->ph[i].p_paddr = im->ph[i].p_vaddr = 0x100000 + i * 0x10000;
		im->ph[i].p_filesz = 64;
		im->ph[i].p_memsz = 0x1000;
		im->ph[i].p_flags = PF_R | PF_X;
	}
}

static void expect_format_error(const void *buf, size_t len, const char *needle)
{
	struct kvmkit_elf_image img;
	int r = kvmkit_elf_parse(buf, len, &img);

	assert_int_equal(r, -ENOEXEC);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_FORMAT);
	if (needle && !strstr(kvmkit_strerror(), needle))
		fail_msg("error '%s' does not mention '%s'", kvmkit_strerror(), needle);
}

static void test_valid(void **state)
{
	struct img64 im;
	struct kvmkit_elf_image img;

	make64(&im, 2);
	assert_int_equal(kvmkit_elf_parse(&im, sizeof(im), &img), 0);
	assert_int_equal(img.elf_class, 64);
	assert_int_equal(img.machine, EM_X86_64);
	assert_int_equal(img.nsegs, 2);
	assert_int_equal(img.entry, 0x100000);
	assert_int_equal(img.lowest, 0x100000);
	assert_int_equal(img.highest, 0x111000);
	assert_int_equal(img.segs[1].filesz, 64);
	assert_int_equal(kvmkit_boot_check_elf64(&im, sizeof(im), 64 << 20), 0);
}

static void test_bad_magic_and_header(void **state)
{
	struct img64 im;

	make64(&im, 1);
	expect_format_error(&im, 3, "too short");
	expect_format_error(NULL, 0, "too short");
	im.eh.e_ident[1] = 'X';
	expect_format_error(&im, sizeof(im), "magic");
	make64(&im, 1);
	im.eh.e_ident[EI_CLASS] = 7;
	expect_format_error(&im, sizeof(im), "class");
	make64(&im, 1);
	im.eh.e_ident[EI_DATA] = ELFDATA2MSB;
	expect_format_error(&im, sizeof(im), "little-endian");
	make64(&im, 1);
	im.eh.e_type = ET_DYN;
	expect_format_error(&im, sizeof(im), "executable");
	/* Header cut short after the identification bytes. */
	make64(&im, 1);
	expect_format_error(&im, 40, "truncated");
}

static void test_phdr_table(void **state)
{
	struct img64 im;

	make64(&im, 1);
	im.eh.e_phoff = sizeof(im) - 8;
	expect_format_error(&im, sizeof(im), "program header table");
	make64(&im, 1);
	im.eh.e_phoff = UINT64_MAX - 10;
	expect_format_error(&im, sizeof(im), "program header table");
	make64(&im, 1);
	im.eh.e_phnum = 0;
	expect_format_error(&im, sizeof(im), "no program headers");
	make64(&im, 1);
	im.eh.e_phnum = PN_XNUM;
	expect_format_error(&im, sizeof(im), "extended");
	make64(&im, 1);
	im.eh.e_phentsize = 10;
	expect_format_error(&im, sizeof(im), "e_phentsize");
	/* Truncation that cuts the program headers off. */
	make64(&im, 2);
	expect_format_error(&im, sizeof(Elf64_Ehdr) + 10, "program header table");
}

static void test_segments(void **state)
{
	struct img64 im;

	make64(&im, 1);
	im.ph[0].p_filesz = 0x2000; /* more than memsz */
	expect_format_error(&im, sizeof(im), "p_filesz");
	make64(&im, 1);
	im.ph[0].p_offset = sizeof(im) - 10;
	expect_format_error(&im, sizeof(im), "beyond");
	make64(&im, 1);
	im.ph[0].p_offset = UINT64_MAX - 1;
	expect_format_error(&im, sizeof(im), "beyond");
	make64(&im, 1);
	im.ph[0].p_paddr = UINT64_MAX - 0x10;
	expect_format_error(&im, sizeof(im), "wraps");
	make64(&im, 2);
	im.ph[1].p_paddr = 0x100800; /* inside segment 0 */
	expect_format_error(&im, sizeof(im), "overlaps");
	make64(&im, 1);
	im.ph[0].p_type = PT_NOTE;
	expect_format_error(&im, sizeof(im), "PT_LOAD");
	/* A truncated file: the segment's bytes are cut off. */
	make64(&im, 1);
	expect_format_error(&im, offsetof(struct img64, payload) + 10, "truncated");
}

static void test_elf32(void **state)
{
	struct {
		Elf32_Ehdr eh;
		Elf32_Phdr ph;
		uint8_t payload[32];
	} im;
	struct kvmkit_elf_image img;

	memset(&im, 0, sizeof(im));
	memcpy(im.eh.e_ident, ELFMAG, SELFMAG);
	im.eh.e_ident[EI_CLASS] = ELFCLASS32;
	im.eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im.eh.e_ident[EI_VERSION] = EV_CURRENT;
	im.eh.e_type = ET_EXEC;
	im.eh.e_machine = EM_386;
	im.eh.e_entry = 0x400000;
	im.eh.e_phoff = sizeof(Elf32_Ehdr);
	im.eh.e_phentsize = sizeof(Elf32_Phdr);
	im.eh.e_phnum = 1;
	im.ph.p_type = PT_LOAD;
	im.ph.p_offset = offsetof(typeof(im), payload);
	im.ph.p_paddr = 0x400000;
	im.ph.p_filesz = 32;
	im.ph.p_memsz = 64;
	assert_int_equal(kvmkit_elf_parse(&im, sizeof(im), &img), 0);
	assert_int_equal(img.elf_class, 32);
	assert_int_equal(img.machine, EM_386);
	/* A 32-bit image is not an ELF64 x86_64 guest. */
	assert_int_equal(kvmkit_boot_check_elf64(&im, sizeof(im), 64 << 20), -ENOEXEC);
	im.ph.p_paddr = 0xfffffff0;
	expect_format_error(&im, sizeof(im), "4 GiB");
}

static void test_boot_checks(void **state)
{
	struct img64 im;

	make64(&im, 1);
	im.ph[0].p_paddr = 0x2000; /* page tables live there */
	im.eh.e_entry = 0x2000;
	assert_int_equal(kvmkit_boot_check_elf64(&im, sizeof(im), 64 << 20), -EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	assert_non_null(strstr(kvmkit_strerror(), "boot area"));

	make64(&im, 1);
	im.ph[0].p_paddr = 0x4000000; /* at 64 MiB, RAM is 64 MiB */
	im.eh.e_entry = 0x4000000;
	assert_int_equal(kvmkit_boot_check_elf64(&im, sizeof(im), 64 << 20), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "outside guest RAM"));
	/* The same image fits 128 MiB. */
	assert_int_equal(kvmkit_boot_check_elf64(&im, sizeof(im), 128 << 20), 0);

	make64(&im, 1);
	im.eh.e_entry = 0x900000;
	assert_int_equal(kvmkit_boot_check_elf64(&im, sizeof(im), 64 << 20), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "entry point"));

	/* Between two segments: inside [lowest, highest) but not loaded. */
	make64(&im, 2);
	im.eh.e_entry = 0x108000;
	assert_int_equal(kvmkit_boot_check_elf64(&im, sizeof(im), 64 << 20), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "entry point 0x108000"));

	make64(&im, 1);
	im.eh.e_machine = EM_AARCH64;
	assert_int_equal(kvmkit_boot_check_elf64(&im, sizeof(im), 64 << 20), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "x86_64"));
}

/* Every prefix of a valid image must be rejected cleanly (no crash, no
 * out-of-bounds read: ASan checks the latter). */
static void test_every_truncation(void **state)
{
	struct img64 im;
	struct kvmkit_elf_image img;
	size_t full = offsetof(struct img64, payload) + 64;

	make64(&im, 1);
	for (size_t len = 0; len < full; len++) {
		uint8_t *copy = malloc(len ? len : 1);

		memcpy(copy, &im, len);
		assert_int_not_equal(kvmkit_elf_parse(copy, len, &img), 0);
		free(copy);
	}
	assert_int_equal(kvmkit_elf_parse(&im, full, &img), 0);
}

/* ---- loading: kvmk_elf_load on a plain buffer standing for guest RAM ---- */

#define RAM (1u << 20)
#define GUARD (1u << 20)
#define FILL 0x5a

static uint8_t *new_ram(struct kvmk_guest_ram *ram)
{
	uint8_t *buf = malloc(RAM + GUARD);

	memset(buf, FILL, RAM + GUARD);
	kvmk_guest_ram_of_buffer(ram, buf, RAM);
	return buf;
}

static void assert_untouched(const uint8_t *mem)
{
	for (uint32_t a = 0; a < RAM + GUARD; a++)
		if (mem[a] != FILL)
			fail_msg("byte 0x%x written", a);
}

/* A parsed image of make64's, relocated into the 1 MiB RAM. */
static void parsed(struct img64 *im, struct kvmkit_elf_image *img, unsigned int nph)
{
	make64(im, nph);
	for (unsigned int i = 0; i < nph; i++)
		im->ph[i].p_paddr = 0x10000 + i * 0x10000;
	for (size_t i = 0; i < sizeof(im->payload); i++)
		im->payload[i] = (uint8_t)(i + 1);
	assert_int_equal(kvmkit_elf_parse(im, sizeof(*im), img), 0);
}

static void expect_load_error(const struct kvmk_guest_ram *ram, const struct img64 *im,
			      const struct kvmkit_elf_image *img, int err, const char *needle)
{
	int r = kvmk_elf_load(ram, im, sizeof(*im), img, 0x1000, 0x8000);

	assert_int_equal(r, err);
	assert_int_equal(kvmkit_last_error()->kind,
			 err == -ENOEXEC ? KVMKIT_ERR_FORMAT : KVMKIT_ERR_PARAM);
	if (!strstr(kvmkit_strerror(), needle))
		fail_msg("error '%s' does not mention '%s'", kvmkit_strerror(), needle);
}

static void test_load(void **state)
{
	struct kvmk_guest_ram ram;
	uint8_t *mem = new_ram(&ram);
	struct kvmkit_elf_image img;
	struct img64 im;

	parsed(&im, &img, 2);
	assert_int_equal(kvmk_elf_load(&ram, &im, sizeof(im), &img, 0x1000, 0x8000), 0);
	for (unsigned int i = 0; i < 2; i++) {
		const uint8_t *seg = mem + 0x10000 + i * 0x10000;

		assert_memory_equal(seg, im.payload, 64);
		for (uint32_t a = 64; a < 0x1000; a++)
			assert_int_equal(seg[a], 0);
		assert_int_equal(seg[0x1000], FILL);
	}
	free(mem);
}

/* The description passed to the loader is the caller's: each of these was
 * written through before (filesz > memsz wrote 16 MiB past guest RAM). */
static void test_load_hostile_desc(void **state)
{
	struct kvmk_guest_ram ram;
	uint8_t *mem = new_ram(&ram);
	struct kvmkit_elf_image img, good;
	struct img64 im;

	parsed(&im, &good, 2);
	/* filesz > memsz, the segment at the end of RAM. */
	img = good;
	img.segs[1].paddr = RAM - 0x1000;
	img.segs[1].memsz = 0x1000;
	img.segs[1].filesz = 0x2000;
	img.segs[1].offset = 0;
	expect_load_error(&ram, &im, &img, -ENOEXEC, "segment 1: filesz 0x2000 > memsz 0x1000");
	/* A file range whose end wraps: offset + filesz overflows. */
	img = good;
	img.segs[1].offset = UINT64_MAX - 0xf;
	img.segs[1].filesz = 0x20;
	expect_load_error(&ram, &im, &img, -ENOEXEC, "segment 1: file range");
	/* Past the image's end. */
	img = good;
	img.segs[0].offset = sizeof(im) - 8;
	expect_load_error(&ram, &im, &img, -ENOEXEC, "beyond the");
	/* An address range that wraps. */
	img = good;
	img.segs[1].paddr = UINT64_MAX - 0x10;
	expect_load_error(&ram, &im, &img, -ENOEXEC, "wraps");
	/* A segment past the end of RAM, and one far beyond it. */
	img = good;
	img.segs[1].paddr = RAM - 0x800;
	expect_load_error(&ram, &im, &img, -EINVAL, "outside guest RAM");
	img.segs[1].paddr = 16ull << 20;
	expect_load_error(&ram, &im, &img, -EINVAL, "'1: 0x1000000+0x1000");
	/* More segments than the array holds. */
	img = good;
	img.nsegs = KVMKIT_ELF_MAX_SEGMENTS + 1;
	expect_load_error(&ram, &im, &img, -ENOEXEC, "33 segments");
	/* Two segments over each other. */
	img = good;
	img.segs[1].paddr = img.segs[0].paddr + 0x800;
	expect_load_error(&ram, &im, &img, -ENOEXEC, "overlaps segment 0");
	/* Into the reserved boot area. */
	img = good;
	img.segs[1].paddr = 0x7800;
	expect_load_error(&ram, &im, &img, -EINVAL, "boot area");
	/* No image bytes at all. */
	assert_int_equal(kvmk_elf_load(&ram, NULL, 100, &good, 0, 0), -EINVAL);
	assert_int_equal(kvmk_elf_load(&ram, &im, sizeof(im), NULL, 0, 0), -EINVAL);
	/* Each refusal came before any write, the good segment 0 included. */
	assert_untouched(mem);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_bad_magic_and_header),
		cmocka_unit_test(test_phdr_table),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_elf32),
		cmocka_unit_test(test_boot_checks),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_load_hostile_desc),
	};

	return cmocka_run_group_tests_name("elf", tests, NULL, NULL);
}
