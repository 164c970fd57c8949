// SPDX-License-Identifier: MIT
/*
 * The snapshot state file, parsed and written without KVM (snap_format.h,
 * docs/SNAPSHOT.md). A snapshot is a file a user points kvmkit at: the
 * parser checks the CRC before it reads any field past the version, then
 * every field and every section, so that a restore acts only on a file
 * known whole and consistent.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "snapshot"
#include "migration/snap_format.h"

#define OP "kvmkit_machine_restore"
#define PREAMBLE_LEN 16 /* magic, version, reserved */
#define SECTION_HDR_LEN 16

static int get_u64(struct kvmk_reader *rd, uint64_t *v, const char *what)
{
	uint32_t lo, hi;
	int r = kvmk_reader_u32(rd, &lo, what);

	if (!r)
		r = kvmk_reader_u32(rd, &hi, what);
	if (!r)
		*v = (uint64_t)hi << 32 | lo;
	return r;
}

static int put_u64(struct kvmk_blob *b, uint64_t v)
{
	int r = kvmk_blob_put_u32(b, (uint32_t)v);

	return r ? r : kvmk_blob_put_u32(b, (uint32_t)(v >> 32));
}

/* CRC-32 as zlib's crc32() and the file format define it (IEEE 802.3,
 * reflected polynomial 0xedb88320), a table lookup a byte. State files are
 * a few KiB per vCPU: loading zlib into every kvmkit process for them cost
 * more memory than the table's 1 KiB. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	pthread_once(&crc_once, crc_table_init);
	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t kvmk_snap_memory_len(const struct kvmk_snap *s)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < s->nr_regions; i++)
		n += s->regions[i].size;
	return n;
}

/* Magic, version and CRC: whether the bytes are a snapshot of this format,
 * unchanged since they were written. */
static int check_whole(const uint8_t *b, size_t len)
{
	uint32_t version, want;

	if (len < PREAMBLE_LEN || memcmp(b, KVMK_SNAP_MAGIC, 8))
		return kvmk_err_format(OP, "not a kvmkit snapshot state file (bad magic)");
	version = le32(b + 8);
	if (version != KVMK_SNAP_VERSION)
		return kvmk_err_format(OP, "snapshot format version %u, this kvmkit reads %u",
				       version, KVMK_SNAP_VERSION);
	if (len < PREAMBLE_LEN + 4)
		return kvmk_err_format(OP, "state file truncated (%zu bytes)", len);
	want = le32(b + len - 4);
	if (crc(b, len - 4) != want)
		return kvmk_err_format(OP,
				       "state file corrupted or truncated: CRC-32 0x%08x, "
				       "recorded 0x%08x",
				       crc(b, len - 4), want);
	return 0;
}

static int parse_header(struct kvmk_reader *rd, struct kvmk_snap *s)
{
	uint32_t reserved;
	uint64_t off = 0;
	int r = kvmk_reader_u32(rd, &s->arch, "arch");

	if (!r)
		r = kvmk_reader_u32(rd, &s->vcpus, "vCPU count");
	if (!r)
		r = kvmk_reader_u32(rd, &s->irqchip, "irqchip mode");
	if (!r)
		r = kvmk_reader_u32(rd, &s->machine_flags, "machine flags");
	if (!r)
		r = get_u64(rd, &s->mem_size, "memory size");
	if (!r)
		r = kvmk_reader_u32(rd, &s->nr_regions, "region count");
	if (!r)
		r = kvmk_reader_u32(rd, &reserved, "reserved");
	if (r)
		return r;
	if (s->arch != KVMKIT_ARCH_X86_64 && s->arch != KVMKIT_ARCH_ARM64)
		return kvmk_err_format(OP, "unknown architecture %u", s->arch);
	if (!s->vcpus || s->vcpus > KVMK_SNAP_MAX_VCPUS)
		return kvmk_err_format(OP, "vCPU count %u (1..%u)", s->vcpus, KVMK_SNAP_MAX_VCPUS);
	if (s->irqchip > 2)
		return kvmk_err_format(OP, "unknown irqchip mode %u", s->irqchip);
	if (s->machine_flags & ~KVMK_SNAP_F_TESTDEV || reserved)
		return kvmk_err_format(OP, "unknown machine flags 0x%x / reserved 0x%x",
				       s->machine_flags, reserved);
	if (!s->mem_size || s->mem_size % KVMK_SNAP_PAGE)
		return kvmk_err_format(OP, "memory size 0x%llx", (unsigned long long)s->mem_size);
	if (!s->nr_regions || s->nr_regions > KVMK_SNAP_MAX_REGIONS)
		return kvmk_err_format(OP, "%u memory regions (1..%u)", s->nr_regions,
				       KVMK_SNAP_MAX_REGIONS);
	for (uint32_t i = 0; i < s->nr_regions; i++) {
		struct kvmk_snap_region *e = &s->regions[i];

		r = get_u64(rd, &e->gpa, "region gpa");
		if (!r)
			r = get_u64(rd, &e->size, "region size");
		if (!r)
			r = get_u64(rd, &e->file_off, "region file offset");
		if (!r)
			r = kvmk_reader_u32(rd, &e->flags, "region flags");
		if (!r)
			r = kvmk_reader_u32(rd, &e->slot, "region slot");
		if (r)
			return r;
		/* Regions follow each other in the memory file, page aligned. */
		if (!e->size || e->size % KVMK_SNAP_PAGE || e->gpa % KVMK_SNAP_PAGE ||
		    e->gpa + e->size < e->gpa || e->file_off != off || off + e->size < off)
			return kvmk_err_format(
				OP,
				"region %u: gpa 0x%llx size 0x%llx at file offset "
				"0x%llx (expected 0x%llx)",
				i, (unsigned long long)e->gpa, (unsigned long long)e->size,
				(unsigned long long)e->file_off, (unsigned long long)off);
		off += e->size;
	}
	return 0;
}

static int parse_section(struct kvmk_reader *rd, struct kvmk_snap *s, bool *seen_clock)
{
	uint32_t tag, index;
	uint64_t len;
	struct kvmk_snap_ref ref, *slot = NULL;
	int r = kvmk_reader_u32(rd, &tag, "section tag");

	if (!r)
		r = kvmk_reader_u32(rd, &index, "section index");
	if (!r)
		r = get_u64(rd, &len, "section length");
	if (r)
		return r;
	if (len > rd->left)
		return kvmk_err_format(OP, "section %u: %llu bytes, %zu left", tag,
				       (unsigned long long)len, rd->left);
	ref = (struct kvmk_snap_ref){ rd->p, (size_t)len };
	switch (tag) {
	case KVMK_SNAP_SEC_CLOCK:
		if (*seen_clock || index || len != 16)
			return kvmk_err_format(OP, "VM clock section: duplicate or %llu bytes",
					       (unsigned long long)len);
		*seen_clock = true;
		s->clock = (uint64_t)le32(ref.p + 4) << 32 | le32(ref.p);
		s->clock_flags = le32(ref.p + 8);
		break;
	case KVMK_SNAP_SEC_IRQCHIP:
		if (!s->irqchip || index)
			return kvmk_err_format(OP, "an irqchip section in a snapshot without one");
		slot = &s->irqchip_blob;
		break;
	case KVMK_SNAP_SEC_VCPU:
		if (index >= s->vcpus)
			return kvmk_err_format(OP, "vCPU section %u of %u vCPUs", index, s->vcpus);
		slot = &s->vcpu[index];
		break;
	case KVMK_SNAP_SEC_DEVICES:
		if (index)
			return kvmk_err_format(OP, "devices section index %u", index);
		slot = &s->devices_blob;
		break;
	default:
		return kvmk_err_format(OP, "unknown section tag %u", tag);
	}
	if (slot && slot->p)
		return kvmk_err_format(OP, "section %u (index %u) twice", tag, index);
	if (slot && !len)
		return kvmk_err_format(OP, "section %u (index %u) is empty", tag, index);
	if (slot)
		*slot = ref;
	rd->p += len;
	rd->left -= (size_t)len;
	return 0;
}

int kvmk_snap_parse(const void *buf, size_t len, struct kvmk_snap *s)
{
	const uint8_t *b = buf;
	struct kvmk_reader rd = { b + PREAMBLE_LEN, 0, OP };
	uint32_t nsec, reserved;
	bool clock = false;
	int r;

	memset(s, 0, sizeof(*s));
	r = check_whole(b, len);
	if (r)
		return r;
	s->version = le32(b + 8);
	if (le32(b + 12))
		return kvmk_err_format(OP, "reserved preamble word 0x%x", le32(b + 12));
	rd.left = len - PREAMBLE_LEN - 4;
	r = parse_header(&rd, s);
	if (r)
		return r;
	/* Each vCPU needs a section header at least: bounds the allocation. */
	if ((uint64_t)s->vcpus * SECTION_HDR_LEN > rd.left)
		return kvmk_err_format(OP, "state file too short for %u vCPUs", s->vcpus);
	s->vcpu = calloc(s->vcpus, sizeof(*s->vcpu));
	if (!s->vcpu)
		return kvmk_err_resource(OP, ENOMEM, "%u vCPU entries", s->vcpus);
	r = kvmk_reader_u32(&rd, &nsec, "section count");
	if (!r)
		r = kvmk_reader_u32(&rd, &reserved, "reserved");
	for (uint32_t i = 0; !r && i < nsec; i++)
		r = parse_section(&rd, s, &clock);
	if (!r && rd.left)
		r = kvmk_err_format(OP, "%zu bytes past the last section", rd.left);
	if (!r && !clock)
		r = kvmk_err_format(OP, "no VM clock section");
	if (!r && s->irqchip && !s->irqchip_blob.p)
		r = kvmk_err_format(OP, "no irqchip section");
	if (!r && !s->devices_blob.p)
		r = kvmk_err_format(OP, "no devices section");
	for (uint32_t i = 0; !r && i < s->vcpus; i++)
		if (!s->vcpu[i].p)
			r = kvmk_err_format(OP, "no section for vCPU %u", i);
	if (r)
		kvmk_snap_release(s);
	return r;
}

void kvmk_snap_release(struct kvmk_snap *s)
{
	free(s->vcpu);
	s->vcpu = NULL;
}

static int put_section(struct kvmk_blob *b, uint32_t tag, uint32_t index, const void *p, size_t len)
{
	int r = kvmk_blob_put_u32(b, tag);

	if (!r)
		r = kvmk_blob_put_u32(b, index);
	if (!r)
		r = put_u64(b, len);
	if (!r && len)
		r = kvmk_blob_put(b, p, len);
	return r;
}

int kvmk_snap_build(const struct kvmk_snap *s, struct kvmk_blob *b)
{
	uint8_t clock[16] = { 0 };
	int r = kvmk_blob_put(b, KVMK_SNAP_MAGIC, 8);

	if (!r)
		r = kvmk_blob_put_u32(b, s->version);
	if (!r)
		r = kvmk_blob_put_u32(b, 0);
	if (!r)
		r = kvmk_blob_put_u32(b, s->arch);
	if (!r)
		r = kvmk_blob_put_u32(b, s->vcpus);
	if (!r)
		r = kvmk_blob_put_u32(b, s->irqchip);
	if (!r)
		r = kvmk_blob_put_u32(b, s->machine_flags);
	if (!r)
		r = put_u64(b, s->mem_size);
	if (!r)
		r = kvmk_blob_put_u32(b, s->nr_regions);
	if (!r)
		r = kvmk_blob_put_u32(b, 0);
	for (uint32_t i = 0; !r && i < s->nr_regions; i++) {
		const struct kvmk_snap_region *e = &s->regions[i];

		r = put_u64(b, e->gpa);
		if (!r)
			r = put_u64(b, e->size);
		if (!r)
			r = put_u64(b, e->file_off);
		if (!r)
			r = kvmk_blob_put_u32(b, e->flags);
		if (!r)
			r = kvmk_blob_put_u32(b, e->slot);
	}
	if (!r)
		r = kvmk_blob_put_u32(b, 2 + s->vcpus + (s->irqchip_blob.p ? 1 : 0));
	if (!r)
		r = kvmk_blob_put_u32(b, 0);
	for (int i = 0; i < 8; i++)
		clock[i] = (uint8_t)(s->clock >> (8 * i));
	for (int i = 0; i < 4; i++)
		clock[8 + i] = (uint8_t)(s->clock_flags >> (8 * i));
	if (!r)
		r = put_section(b, KVMK_SNAP_SEC_CLOCK, 0, clock, sizeof(clock));
	if (!r && s->irqchip_blob.p)
		r = put_section(b, KVMK_SNAP_SEC_IRQCHIP, 0, s->irqchip_blob.p,
				s->irqchip_blob.len);
	for (uint32_t i = 0; !r && i < s->vcpus; i++)
		r = put_section(b, KVMK_SNAP_SEC_VCPU, i, s->vcpu[i].p, s->vcpu[i].len);
	if (!r)
		r = put_section(b, KVMK_SNAP_SEC_DEVICES, 0, s->devices_blob.p,
				s->devices_blob.len);
	if (!r)
		r = kvmk_blob_put_u32(b, crc(b->data, b->len));
	return r;
}
