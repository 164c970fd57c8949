// SPDX-License-Identifier: MIT
/*
 * The snapshot state file without KVM (src/migration/format.c): a built
 * file parses back to what was built; every truncation and every flipped
 * bit of it is refused; a file with a right CRC but a wrong structure
 * (missing, duplicate or unknown sections, bad regions, trailing bytes)
 * is refused with a message naming the fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "migration/snap_format.h"
#include <kvmkit/kvmkit.h>

static const uint8_t chip[] = { 1, 2, 3, 4, 5 };
static const uint8_t dev[] = { 9, 8, 7 };
static const uint8_t cpu0[] = { 0x10, 0x11 }, cpu1[] = { 0x20, 0x21, 0x22 };

/* A two-vCPU snapshot with an irqchip and two regions, built. */
static void build(struct kvmk_blob *b, uint32_t vcpus)
{
	struct kvmk_snap_ref cpus[2] = { { cpu0, sizeof(cpu0) }, { cpu1, sizeof(cpu1) } };
	struct kvmk_snap s = {
		.version = KVMK_SNAP_VERSION,
		.arch = KVMKIT_ARCH_X86_64,
		.vcpus = vcpus,
		.irqchip = 2,
		.mem_size = 3 << 20,
		.nr_regions = 2,
		.regions = { { 0, 2 << 20, 0, 0, 0 }, { 1ull << 32, 1 << 20, 2 << 20, 0, 1 } },
		.clock = 0x123456789abcull,
		.irqchip_blob = { chip, sizeof(chip) },
		.devices_blob = { dev, sizeof(dev) },
		.vcpu = cpus,
	};

	memset(b, 0, sizeof(*b));
	assert_int_equal(kvmk_snap_build(&s, b), 0);
}

static void test_round_trip(void **state)
{
	struct kvmk_blob b;
	struct kvmk_snap s;

	build(&b, 2);
	assert_int_equal(kvmk_snap_parse(b.data, b.len, &s), 0);
	assert_int_equal(s.vcpus, 2);
	assert_int_equal(s.irqchip, 2);
	assert_int_equal(s.nr_regions, 2);
	assert_int_equal(s.regions[1].gpa, 1ull << 32);
	assert_int_equal(s.regions[1].file_off, 2 << 20);
	assert_int_equal(kvmk_snap_memory_len(&s), 3 << 20);
	assert_int_equal(s.clock, 0x123456789abcull);
	assert_int_equal(s.irqchip_blob.len, sizeof(chip));
	assert_memory_equal(s.irqchip_blob.p, chip, sizeof(chip));
	assert_memory_equal(s.devices_blob.p, dev, sizeof(dev));
	assert_memory_equal(s.vcpu[1].p, cpu1, sizeof(cpu1));
	kvmk_snap_release(&s);
	kvmk_blob_free(&b);
}

/* The built file's CRC-32 is zlib's (the format's definition, and what
 * files written by kvmkit versions that used zlib carry). */
static void test_crc_is_zlibs(void **state)
{
	struct kvmk_blob b;
	uint32_t trailer;

	build(&b, 2);
	memcpy(&trailer, b.data + b.len - 4, 4);
	assert_int_equal(trailer, (uint32_t)crc32(0, b.data, (uInt)(b.len - 4)));
	kvmk_blob_free(&b);
}

/* Every shorter file and every single-bit flip is refused. */
static void test_truncated_and_flipped(void **state)
{
	struct kvmk_blob b;
	struct kvmk_snap s;
	uint8_t *copy;

	build(&b, 2);
	copy = malloc(b.len);
	assert_non_null(copy);
	for (size_t n = 0; n < b.len; n++) {
		memcpy(copy, b.data, n);
		assert_int_equal(kvmk_snap_parse(copy, n, &s), -ENOEXEC);
	}
	for (size_t i = 0; i < b.len * 8; i++) {
		memcpy(copy, b.data, b.len);
		copy[i / 8] ^= (uint8_t)(1u << (i % 8));
		if (kvmk_snap_parse(copy, b.len, &s) != -ENOEXEC)
			fail_msg("bit %zu flipped: accepted", i);
		assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_FORMAT);
	}
	free(copy);
	kvmk_blob_free(&b);
}

/* Rewrites the CRC of @p after an edit. */
static void fix_crc(uint8_t *p, size_t len)
{
	uint32_t c = (uint32_t)crc32(0, p, (uInt)(len - 4));

	for (int i = 0; i < 4; i++)
		p[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void expect_refused(uint8_t *p, size_t len, const char *needle)
{
	struct kvmk_snap s;

	fix_crc(p, len);
	if (kvmk_snap_parse(p, len, &s) != -ENOEXEC)
		fail_msg("accepted (wanted '%s')", needle);
	if (!strstr(kvmkit_strerror(), needle))
		fail_msg("wanted '%s': %s", needle, kvmkit_strerror());
}

/* Offsets in the built file (docs/SNAPSHOT.md). */
#define OFF_VERSION 8
#define OFF_VCPUS 20
#define OFF_CHIP 24
#define OFF_FLAGS 28
#define OFF_NREG 40
#define OFF_REG0 48
#define OFF_NSEC (OFF_REG0 + 2 * 32)
#define OFF_SEC0 (OFF_NSEC + 8)

static void test_structure(void **state)
{
	struct kvmk_blob b;
	uint8_t *c;
	size_t len;

	build(&b, 2);
	len = b.len;
	c = malloc(len + 64);
	assert_non_null(c);
#define EDIT(stmt, needle)                      \
	do {                                    \
		memcpy(c, b.data, len);         \
		stmt;                           \
		expect_refused(c, len, needle); \
	} while (0)
	EDIT(c[OFF_VERSION] = 7, "format version 7, this kvmkit reads 1");
	EDIT(c[OFF_VCPUS] = 3, "no section for vCPU 2");
	EDIT(c[OFF_VCPUS] = 1, "vCPU section 1 of 1 vCPUs");
	EDIT(c[OFF_VCPUS] = 0, "vCPU count 0");
	EDIT(c[OFF_CHIP] = 0, "irqchip section in a snapshot without one");
	EDIT(c[OFF_CHIP] = 9, "unknown irqchip mode 9");
	EDIT(c[OFF_FLAGS] = 4, "unknown machine flags");
	EDIT(c[OFF_NREG] = 0, "0 memory regions");
	EDIT(c[OFF_NREG] = 65, "65 memory regions");
	EDIT(c[OFF_REG0 + 8] = 1, "region 0"); /* size not a page multiple */
	EDIT(c[OFF_REG0 + 32 + 16 + 2] = 0x10, "region 1"); /* file offset not contiguous */
	EDIT(c[OFF_NSEC] = 3, "38 bytes past the last section"); /* one section short */
	EDIT(c[OFF_SEC0] = 42, "unknown section tag 42");
	EDIT(c[OFF_SEC0 + 8] = 8, "VM clock section"); /* clock length 8 */
	EDIT(c[OFF_SEC0 + 8] = 0xff, "section 1: 255 bytes");
	/* vCPU 1's section retagged as the devices': two of those. */
	EDIT((c[OFF_SEC0 + 71] = 4, c[OFF_SEC0 + 75] = 0), "section 4 (index 0) twice");
	/* Bytes past the last section. */
	memcpy(c, b.data, len - 4);
	memset(c + len - 4, 0, 8);
	expect_refused(c, len + 4, "bytes past the last section");
#undef EDIT
	free(c);
	kvmk_blob_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_crc_is_zlibs),
		cmocka_unit_test(test_truncated_and_flipped),
		cmocka_unit_test(test_structure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
