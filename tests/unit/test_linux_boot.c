// SPDX-License-Identifier: MIT
/*
 * The Linux loaders without KVM: bzImage setup headers crafted field by
 * field (each out of range is refused with the field named), placement of
 * the kernel, initrd and command line, the e820 map, boot_params as
 * written into a plain buffer standing for guest RAM, and the PVH note and
 * hvm_start_info.
 */
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

#define SETUP_SECTS 4
#define SETUP_SIZE ((SETUP_SECTS + 1) * 512)
#define KSIZE 0x10000u
#define IMG_LEN (SETUP_SIZE + KSIZE)
#define MIB (1ull << 20)

static void w8(uint8_t *b, size_t off, uint8_t v)
{
	b[off] = v;
}

static void w16(uint8_t *b, size_t off, uint16_t v)
{
	memcpy(b + off, &v, 2);
}

static void w32(uint8_t *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, 4);
}

static void w64(uint8_t *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, 8);
}

static uint32_t r32(const uint8_t *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, 4);
	return v;
}

static uint64_t r64(const uint8_t *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, 8);
	return v;
}

/* A bzImage as Debian's 6.1 has it (protocol 2.15), with a small kernel. */
static uint8_t *make_bz(void)
{
	uint8_t *b = calloc(1, IMG_LEN);

	w8(b, 0x1f1, SETUP_SECTS);
	w32(b, 0x1f4, KSIZE / 16);
	w16(b, 0x1fe, 0xaa55);
	w8(b, 0x200, 0xeb);
	w8(b, 0x201, 0x6a); /* header ends at 0x26c */
	memcpy(b + 0x202, "HdrS", 4);
	w16(b, 0x206, 0x020f);
	w8(b, 0x211, 0x01);
	w32(b, 0x214, 0x100000);
	w32(b, 0x22c, 0x7fffffff);
	w32(b, 0x230, 0x200000);
	w8(b, 0x234, 1);
	w8(b, 0x235, 21);
	w16(b, 0x236, 0x7f);
	w32(b, 0x238, 2047);
	w64(b, 0x250, 0xdeadbeef); /* setup_data: kvmkit must not pass it on */
	w64(b, 0x258, 0x1000000);
	w32(b, 0x260, 0x200000);
	for (unsigned int i = 0; i < KSIZE; i++)
		b[SETUP_SIZE + i] = (uint8_t)(i * 7 + 1);
	return b;
}

static void expect_format(const uint8_t *b, size_t len, const char *needle)
{
	struct kvmkit_bzimage img;

	assert_int_equal(kvmkit_bzimage_parse(b, len, &img), -ENOEXEC);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_FORMAT);
	if (!strstr(kvmkit_strerror(), needle))
		fail_msg("error '%s' does not mention '%s'", kvmkit_strerror(), needle);
}

static void test_parse_ok(void **state)
{
	uint8_t *b = make_bz();
	struct kvmkit_bzimage img;

	assert_true(kvmkit_bzimage_detect(b, IMG_LEN));
	assert_true(kvmkit_linux_detect(b, IMG_LEN));
	assert_int_equal(kvmkit_bzimage_parse(b, IMG_LEN, &img), 0);
	assert_int_equal(img.version, 0x020f);
	assert_int_equal(img.setup_size, SETUP_SIZE);
	assert_int_equal(img.kernel_offset, SETUP_SIZE);
	assert_int_equal(img.kernel_size, KSIZE);
	assert_int_equal(img.header_end, 0x26c);
	assert_int_equal(img.pref_address, 0x1000000);
	assert_int_equal(img.init_size, 0x200000);
	assert_true(img.relocatable);
	/* setup_sects 0 means 4. */
	w8(b, 0x1f1, 0);
	assert_int_equal(kvmkit_bzimage_parse(b, IMG_LEN, &img), 0);
	assert_int_equal(img.setup_size, SETUP_SIZE);
	free(b);
}

/* Each field out of range, one at a time, on an otherwise good image. */
static void test_parse_fields(void **state)
{
	static const struct {
		size_t off;
		unsigned int width;
		uint64_t value;
		const char *needle;
	} cases[] = {
		{ 0x1fe, 2, 0x55aa, "boot_flag" },
		{ 0x202, 4, 0x53726448 + 1, "HdrS" },
		{ 0x206, 2, 0x020b, "too old" },
		{ 0x236, 2, 0x7e, "xloadflags" },
		{ 0x211, 1, 0x00, "loadflags" },
		{ 0x230, 4, 0x300000, "kernel_alignment" },
		{ 0x230, 4, 0x800, "kernel_alignment" },
		{ 0x230, 4, 0x80000000, "kernel_alignment" },
		{ 0x235, 1, 11, "min_alignment" },
		{ 0x235, 1, 22, "min_alignment" },
		{ 0x235, 1, 67, "min_alignment" }, /* a shift past 64 bits (fuzz) */
		{ 0x260, 4, KSIZE - 16, "init_size" },
		{ 0x260, 4, 0x40000001, "init_size" },
		{ 0x258, 8, 0x1000001, "pref_address" },
		{ 0x258, 8, 0x100000000000ull, "pref_address" },
		{ 0x22c, 4, 0xfffff, "initrd_addr_max" },
		{ 0x238, 4, 0, "cmdline_size" },
		{ 0x201, 1, 0x10, "setup header ends" },
		{ 0x201, 1, 0xa0, "setup header ends" },
		{ 0x1f1, 1, 200, "setup_sects" },
		{ 0x1f4, 4, KSIZE / 16 + 1, "syssize" },
		{ 0x1f4, 4, 0, "syssize" },
	};

	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *b = make_bz();

		memcpy(b + cases[i].off, &cases[i].value, cases[i].width);
		expect_format(b, IMG_LEN, cases[i].needle);
		free(b);
	}
}

static void test_parse_truncated(void **state)
{
	uint8_t *b = make_bz();

	expect_format(b, 0x100, "too short");
	expect_format(b, SETUP_SIZE, "setup_sects");
	expect_format(b, SETUP_SIZE + 0x100, "syssize"); /* cut in the kernel */
	expect_format(NULL, 0, "too short");
	/* Every length up to the whole image is refused or parses: never a
	 * read past the buffer (ASan build). */
	for (size_t len = 0; len < IMG_LEN; len += 61) {
		struct kvmkit_bzimage img;
		uint8_t *c = malloc(len ? len : 1);

		memcpy(c, b, len);
		assert_int_not_equal(kvmkit_bzimage_parse(c, len, &img), 0);
		free(c);
	}
	free(b);
}

static void test_place(void **state)
{
	uint8_t *b = make_bz();
	struct kvmkit_bzimage img;
	struct kvmkit_linux_layout lay;

	assert_int_equal(kvmkit_bzimage_parse(b, IMG_LEN, &img), 0);
	/* pref_address fits: the kernel there, the initrd at the top. */
	assert_int_equal(kvmkit_linux_place(&img, 512 * MIB, 10, 0x123456, &lay), 0);
	assert_int_equal(lay.kernel, 0x1000000);
	assert_int_equal(lay.kernel_end, 0x1200000);
	assert_int_equal(lay.entry, 0x1000200);
	assert_int_equal(lay.initrd, (512 * MIB - 0x123456) & ~0xfffull);
	assert_int_equal(lay.initrd_size, 0x123456);
	assert_int_equal(lay.cmdline, KVMKIT_LINUX_CMDLINE);
	assert_int_equal(lay.info, KVMKIT_LINUX_ZERO_PAGE);
	/* Too little RAM for pref_address: the lowest aligned place. */
	assert_int_equal(kvmkit_linux_place(&img, 16 * MIB, 10, 0, &lay), 0);
	assert_int_equal(lay.kernel, 2 * MIB);
	assert_int_equal(lay.initrd_size, 0);
	/* ... but a kernel that is not relocatable goes there or nowhere. */
	img.relocatable = false;
	assert_int_equal(kvmkit_linux_place(&img, 16 * MIB, 10, 0, &lay), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "not relocatable"));
	img.relocatable = true;
	/* Not even at 2 MiB. */
	img.init_size = 0x1000000;
	assert_int_equal(kvmkit_linux_place(&img, 16 * MIB, 10, 0, &lay), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "does not fit"));
	img.init_size = 0x200000;
	/* initrd_addr_max bounds the initrd's last byte. */
	img.initrd_addr_max = 0x0fffffff;
	assert_int_equal(kvmkit_linux_place(&img, 512 * MIB, 10, 0x1000, &lay), 0);
	assert_int_equal(lay.initrd, 0x0ffff000);
	img.initrd_addr_max = 0x7fffffff;
	/* Above 3 GiB of RAM the initrd stays under initrd_addr_max. */
	assert_int_equal(kvmkit_linux_place(&img, 6ull << 30, 10, 0x1000, &lay), 0);
	assert_int_equal(lay.initrd, 0x7ffff000);
	/* An initrd that does not fit above the kernel. */
	assert_int_equal(kvmkit_linux_place(&img, 32 * MIB, 10, 15 * MIB, &lay), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "initrd too big"));
	assert_int_equal(kvmkit_linux_place(&img, 32 * MIB, 10, 14 * MIB, &lay), 0);
	assert_true(lay.initrd >= lay.kernel_end);
	/* The command line: cmdline_size bytes at most. */
	assert_int_equal(kvmkit_linux_place(&img, 512 * MIB, 2047, 0, &lay), 0);
	assert_int_equal(kvmkit_linux_place(&img, 512 * MIB, 2048, 0, &lay), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "command line too long"));
	/* A hand-made description is checked again. */
	img.version = 0x0206;
	assert_int_equal(kvmkit_linux_place(&img, 512 * MIB, 10, 0, &lay), -ENOEXEC);
	free(b);
}

static void test_e820(void **state)
{
	struct kvmkit_e820_entry m[8];
	unsigned int n;

	n = kvmkit_linux_e820(512 * MIB, m, 8);
	assert_int_equal(n, 3);
	assert_int_equal(m[0].addr, 0);
	assert_int_equal(m[0].size, 0x9fc00);
	assert_int_equal(m[0].type, KVMKIT_E820_RAM);
	assert_int_equal(m[1].addr, 0x9fc00);
	assert_int_equal(m[1].addr + m[1].size, MIB);
	assert_int_equal(m[1].type, KVMKIT_E820_RESERVED);
	assert_int_equal(m[2].addr, MIB);
	assert_int_equal(m[2].addr + m[2].size, 512 * MIB);
	/* RAM past the 32-bit MMIO gap continues at 4 GiB. */
	n = kvmkit_linux_e820(4ull << 30, m, 8);
	assert_int_equal(n, 4);
	assert_int_equal(m[2].addr + m[2].size, KVMKIT_X86_MMIO_HOLE);
	assert_int_equal(m[3].addr, 1ull << 32);
	assert_int_equal(m[3].size, (4ull << 30) - KVMKIT_X86_MMIO_HOLE);
	assert_int_equal(kvmkit_linux_e820(4ull << 30, m, 2), 2);
	/* Less RAM than the low 640 KiB: the map claims no RAM it lacks. */
	n = kvmkit_linux_e820(0x80000, m, 8);
	assert_int_equal(n, 2);
	assert_int_equal(m[0].size, 0x80000);
	assert_int_equal(m[0].type, KVMKIT_E820_RAM);
	assert_int_equal(m[1].type, KVMKIT_E820_RESERVED);
}

#define RAM (64 * MIB)

/* Every byte of the RAM buffer still zero: a failed load wrote nothing. */
static void assert_untouched(const uint8_t *mem)
{
	for (size_t i = 0; i < RAM; i++)
		if (mem[i])
			fail_msg("byte written at 0x%zx", i);
}

static void test_load_bzimage(void **state)
{
	uint8_t *b = make_bz();
	uint8_t *mem = calloc(1, RAM);
	struct kvmkit_linux_boot boot = {
		b, IMG_LEN, "initrd!", 7, "console=ttyS0 quiet", 0xe0000
	};
	struct kvmkit_linux_layout lay;
	struct kvmk_guest_ram ram;
	const uint8_t *zp = mem + KVMKIT_LINUX_ZERO_PAGE;
	uint64_t gdt[4];

	kvmk_guest_ram_of_buffer(&ram, mem, RAM);
	assert_int_equal(kvmk_linux_load_bzimage(&ram, &boot, &lay), 0);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(zp[0x210], 0xff); /* type_of_loader */
	assert_int_equal(r32(zp, 0x214), 0x1000000);
	assert_int_equal(r32(zp, 0x218), lay.initrd);
	assert_int_equal(r32(zp, 0x21c), 7);
	assert_int_equal(r32(zp, 0x228), KVMKIT_LINUX_CMDLINE);
	assert_int_equal(r64(zp, 0x250), 0); /* the image's setup_data dropped */
	assert_int_equal(r64(zp, 0x070), 0xe0000); /* acpi_rsdp_addr */
	assert_int_equal(zp[0x1e8], 3);
	assert_int_equal(r64(zp, 0x2d0 + 20), 0x9fc00);
	assert_int_equal(r32(zp, 0x2d0 + 36), KVMKIT_E820_RESERVED);
	assert_int_equal(r64(zp, 0x2d0 + 48), RAM - MIB);
	assert_int_equal(zp[0x2d0 + 3 * 20], 0); /* nothing past the last entry */
	assert_string_equal((const char *)mem + KVMKIT_LINUX_CMDLINE, "console=ttyS0 quiet");
	assert_memory_equal(mem + lay.initrd, "initrd!", 7);
	assert_memory_equal(mem + 0x1000000, b + SETUP_SIZE, KSIZE);
	memcpy(gdt, mem + KVMKIT_X86_BOOT_GDT, sizeof(gdt));
	assert_int_equal(gdt[2], KVMK_GDT_CODE64); /* __BOOT_CS 0x10 */
	assert_int_equal(gdt[3], KVMK_GDT_DATA); /* __BOOT_DS 0x18 */
	assert_int_equal(r64(mem, KVMKIT_X86_BOOT_PML4) & ~0xfffull, KVMKIT_X86_BOOT_PDPT);

	/* Nothing is written when something does not fit. */
	memset(mem, 0, RAM);
	boot.initrd_len = 60 * MIB;
	assert_int_equal(kvmk_linux_load_bzimage(&ram, &boot, &lay), -EINVAL);
	assert_untouched(mem);
	free(mem);
	free(b);
}

/* ---- PVH ---------------------------------------------------------------- */

struct pvh_img {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	uint8_t notes[64];
	uint8_t seg[0x1000];
};

#define PVH_LOAD 0x1000000u

static void note(uint8_t *p, const char *name, uint32_t type, const void *desc, uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;

	memcpy(p, &namesz, 4);
	memcpy(p + 4, &descsz, 4);
	memcpy(p + 8, &type, 4);
	memcpy(p + 12, name, namesz);
	memcpy(p + 12 + ((namesz + 3) & ~3u), desc, descsz);
}

static struct pvh_img *make_pvh(uint64_t entry)
{
	struct pvh_img *im = calloc(1, sizeof(*im));
	uint32_t linux_desc = 0x12345678;

	memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
	im->eh.e_ident[EI_CLASS] = ELFCLASS64;
	im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	im->eh.e_ident[EI_VERSION] = EV_CURRENT;
	im->eh.e_type = ET_EXEC;
	im->eh.e_machine = EM_X86_64;
	im->eh.e_entry = 0xffffffff81000000ull; /* virtual: not what PVH uses */
	im->eh.e_phoff = offsetof(struct pvh_img, ph);
	im->eh.e_phentsize = sizeof(Elf64_Phdr);
	im->eh.e_phnum = 2;
	im->ph[0].p_type = PT_LOAD;
	im->ph[0].p_offset = offsetof(struct pvh_img, seg);
	im->ph[0].p_paddr = PVH_LOAD;
	im->ph[0].p_vaddr = 0xffffffff81000000ull;
	im->ph[0].p_filesz = sizeof(im->seg);
	im->ph[0].p_memsz = 0x3000;
	im->ph[1].p_type = PT_NOTE;
	im->ph[1].p_offset = offsetof(struct pvh_img, notes);
	im->ph[1].p_filesz = 24 + 24;
	/* Another note first, then Xen's with an 8-byte entry. */
	note(im->notes, "Linux", 6, &linux_desc, 4);
	note(im->notes + 24, "Xen", KVMKIT_PVH_NOTE_PHYS32_ENTRY, &entry, 8);
	memset(im->seg, 0x90, sizeof(im->seg));
	return im;
}

static void test_pvh_note(void **state)
{
	struct pvh_img *im = make_pvh(PVH_LOAD + 0x100);
	uint32_t big = 0xffffff00;

	assert_int_equal(kvmkit_pvh_entry(im, sizeof(*im)), PVH_LOAD + 0x100);
	assert_true(kvmkit_linux_detect(im, sizeof(*im)));
	assert_false(kvmkit_bzimage_detect(im, sizeof(*im)));
	free(im);
	/* Entry outside every segment, above 4 GiB, zero: no PVH image. */
	im = make_pvh(0x100000);
	assert_int_equal(kvmkit_pvh_entry(im, sizeof(*im)), 0);
	free(im);
	im = make_pvh(0x100000000ull + PVH_LOAD);
	assert_int_equal(kvmkit_pvh_entry(im, sizeof(*im)), 0);
	free(im);
	/* A note whose size runs past its segment, a wrong name, a note
	 * segment past the file: no entry, no overread. */
	im = make_pvh(PVH_LOAD);
	memcpy(im->notes + 24 + 4, &big, 4);
	assert_int_equal(kvmkit_pvh_entry(im, sizeof(*im)), 0);
	free(im);
	im = make_pvh(PVH_LOAD);
	memcpy(im->notes + 24 + 12, "Xex", 4);
	assert_int_equal(kvmkit_pvh_entry(im, sizeof(*im)), 0);
	free(im);
	im = make_pvh(PVH_LOAD);
	im->ph[1].p_filesz = 0x10000;
	assert_int_equal(kvmkit_pvh_entry(im, sizeof(*im)), 0);
	/* Not an ELF at all. */
	assert_int_equal(kvmkit_pvh_entry("hello", 5), 0);
	free(im);
}

static void test_load_pvh(void **state)
{
	struct pvh_img *im = make_pvh(PVH_LOAD + 0x10);
	uint8_t *mem = calloc(1, RAM);
	struct kvmkit_linux_boot boot = { im, sizeof(*im), "rd", 2, "root=/dev/vda", 0xe0000 };
	struct kvmkit_linux_layout lay;
	struct kvmk_guest_ram ram;
	const uint8_t *si = mem + KVMKIT_LINUX_ZERO_PAGE;
	uint64_t mod;

	kvmk_guest_ram_of_buffer(&ram, mem, RAM);
	assert_int_equal(kvmk_linux_load_pvh(&ram, &boot, &lay), 0);
	assert_int_equal(lay.entry, PVH_LOAD + 0x10);
	assert_int_equal(r32(si, 0), KVMKIT_PVH_MAGIC);
	assert_int_equal(r32(si, 4), 1); /* version */
	assert_int_equal(r32(si, 12), 1); /* nr_modules */
	assert_int_equal(r64(si, 24), KVMKIT_LINUX_CMDLINE);
	assert_int_equal(r64(si, 32), 0xe0000); /* rsdp */
	assert_int_equal(r32(si, 48), 3); /* memmap entries */
	mod = r64(si, 16);
	assert_int_equal(r64(mem, mod), lay.initrd);
	assert_int_equal(r64(mem, mod + 8), 2);
	assert_true(lay.initrd >= PVH_LOAD + 0x3000);
	assert_memory_equal(mem + lay.initrd, "rd", 2);
	assert_int_equal(r64(mem, r64(si, 40) + 24 + 8), 0x100000 - 0x9fc00);
	assert_int_equal(r32(mem, r64(si, 40) + 24 + 16), KVMKIT_E820_RESERVED);
	assert_string_equal((const char *)mem + KVMKIT_LINUX_CMDLINE, "root=/dev/vda");
	assert_int_equal(mem[PVH_LOAD], 0x90);
	assert_int_equal(mem[PVH_LOAD + 0x1000], 0); /* .bss */
	assert_int_equal(r64(mem, KVMKIT_X86_BOOT_GDT + 8), KVMK_GDT_CODE32);
	free(im);

	/* A segment below 1 MiB would meet kvmkit's own areas. */
	im = make_pvh(0x8010);
	im->ph[0].p_paddr = 0x8000;
	boot.kernel = im;
	memset(mem, 0, RAM);
	assert_int_equal(kvmk_linux_load_pvh(&ram, &boot, &lay), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "1 MiB"));
	assert_untouched(mem);
	assert_int_equal(kvmkit_boot_check_linux(im, sizeof(*im), RAM, NULL, 0), -EINVAL);
	free(im);
	free(mem);
}

static void test_check(void **state)
{
	uint8_t *b = make_bz();

	assert_int_equal(kvmkit_boot_check_linux(b, IMG_LEN, RAM, "quiet", 1000), 0);
	assert_int_equal(kvmkit_boot_check_linux(b, IMG_LEN, RAM, "quiet", 60 * MIB), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "initrd too big"));
	/* Neither a bzImage nor a PVH ELF. */
	assert_false(kvmkit_linux_detect("not a kernel", 12));
	assert_int_equal(kvmkit_boot_check_linux("not a kernel", 12, RAM, NULL, 0), -ENOEXEC);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_truncated),
		cmocka_unit_test(test_place),
		cmocka_unit_test(test_e820),
		cmocka_unit_test(test_load_bzimage),
		cmocka_unit_test(test_pvh_note),
		cmocka_unit_test(test_load_pvh),
		cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
