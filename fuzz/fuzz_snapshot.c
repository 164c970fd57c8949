// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the snapshot state-file parser (src/migration/
 * format.c), which a restore runs before any KVM call. Two ways in: the
 * input as the whole file (mostly stopped by the magic, version or CRC),
 * and the input as the body of a file given the right magic, version and
 * CRC, so that the header, region and section checks see fuzzed bytes.
 * Traps if:
 *  - a file is accepted whose regions do not follow each other in the
 *    memory file, or whose sections point outside the input;
 *  - an accepted file does not build back into the same bytes (the writer
 *    and the parser disagree on the format).
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "migration/snap_format.h"

static bool inside(const struct kvmk_snap_ref *r, const uint8_t *p, size_t len)
{
	return r->p >= p && r->len <= len && (size_t)(r->p - p) <= len - r->len;
}

static void check(const uint8_t *p, size_t len)
{
	struct kvmk_snap s;
	struct kvmk_blob b = { 0 };
	uint64_t off = 0;

	if (kvmk_snap_parse(p, len, &s))
		return;
	CHECK(s.vcpus >= 1 && s.vcpus <= KVMK_SNAP_MAX_VCPUS);
	CHECK(s.nr_regions >= 1 && s.nr_regions <= KVMK_SNAP_MAX_REGIONS);
	for (uint32_t i = 0; i < s.nr_regions; i++) {
		CHECK(s.regions[i].file_off == off && s.regions[i].size % KVMK_SNAP_PAGE == 0);
		off += s.regions[i].size;
	}
	CHECK(kvmk_snap_memory_len(&s) == off);
	CHECK(inside(&s.devices_blob, p, len));
	CHECK(!s.irqchip || inside(&s.irqchip_blob, p, len));
	for (uint32_t i = 0; i < s.vcpus; i++)
		CHECK(inside(&s.vcpu[i], p, len));
	/* Sections may come in any order in a file; the writer's is fixed, so
	 * compare lengths and the parse of what it builds. */
	CHECK(kvmk_snap_build(&s, &b) == 0);
	CHECK(b.len == len);
	{
		struct kvmk_snap t;

		CHECK(kvmk_snap_parse(b.data, b.len, &t) == 0);
		CHECK(t.vcpus == s.vcpus && t.clock == s.clock && t.irqchip == s.irqchip);
		kvmk_snap_release(&t);
	}
	kvmk_blob_free(&b);
	kvmk_snap_release(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *f;
	uint32_t c;

	check(data, size);
	/* The body of a well-framed file. */
	f = malloc(size + 20);
	if (!f)
		return 0;
	memcpy(f, KVMK_SNAP_MAGIC, 8);
	memset(f + 8, 0, 8);
	f[8] = KVMK_SNAP_VERSION;
	memcpy(f + 16, data, size);
	c = (uint32_t)crc32(0, f, (uInt)(size + 16));
	for (int i = 0; i < 4; i++)
		f[size + 16 + i] = (uint8_t)(c >> (8 * i));
	check(f, size + 20);
	free(f);
	return 0;
}
