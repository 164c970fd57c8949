// SPDX-License-Identifier: MIT
/* ELF parser and loader checks against malformed and truncated images. */
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
	};

	return cmocka_run_group_tests_name("elf", tests, NULL, NULL);
}
