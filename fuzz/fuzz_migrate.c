// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the live-migration stream parser (src/migration/
 * mig_wire.c), what a target runs on bytes from its peer. Three ways in:
 *  - the input as the whole stream (hello and records; mostly stopped by
 *    the magic, version or CRC);
 *  - a valid hello, then the input as the records;
 *  - a valid hello, then records framed from the input with right CRCs
 *    (a type byte, a 16-bit length, the payload), so the length, address
 *    and order checks see fuzzed values.
 * The sink hands out a 1 MiB RAM. Traps if:
 *  - a page or zero run reaches the sink outside that RAM or unaligned;
 *  - the sink sees records out of the protocol's order (pages after the
 *    state, a second pause, the state before the pause), or the parser
 *    returns success without having seen the pause and the state;
 *  - a hello is accepted with fields out of their bounds.
 */
#include <string.h>

#include "fuzz.h"
#include "migration/mig_wire.h"
#include "migration/snap_format.h"

#define RAM (1u << 20)

static uint8_t ram[RAM];

struct src {
	const uint8_t *p;
	size_t left;
};

struct seen {
	unsigned int paused, state;
};

static int src_read(void *ctx, void *buf, size_t len)
{
	struct src *s = ctx;

	if (len > s->left)
		return -EPIPE;
	memcpy(buf, s->p, len);
	s->p += len;
	s->left -= len;
	return 0;
}

static void *sink_pages(void *ctx, uint64_t gpa, uint32_t n)
{
	struct seen *s = ctx;

	CHECK(!s->state && n && n <= KVMK_MIG_BATCH && !(gpa % KVMK_MIG_PAGE));
	CHECK(gpa < RAM && (uint64_t)n * KVMK_MIG_PAGE <= RAM - gpa);
	return ram + gpa;
}

static int sink_zero(void *ctx, uint64_t gpa, uint64_t n)
{
	struct seen *s = ctx;

	CHECK(!s->state && n && !(gpa % KVMK_MIG_PAGE));
	CHECK(gpa < RAM && n <= (RAM - gpa) / KVMK_MIG_PAGE);
	memset(ram + gpa, 0, n * KVMK_MIG_PAGE);
	return 0;
}

static int sink_paused(void *ctx)
{
	struct seen *s = ctx;

	CHECK(!s->paused && !s->state);
	s->paused++;
	return 0;
}

static int sink_state(void *ctx, const uint8_t *b, size_t len)
{
	struct seen *s = ctx;
	struct kvmk_snap snap;

	CHECK(s->paused == 1 && !s->state && len && len <= KVMK_MIG_MAX_STATE);
	s->state++;
	if (!kvmk_snap_parse(b, len, &snap))
		kvmk_snap_release(&snap);
	return 0;
}

static void records(const uint8_t *p, size_t len)
{
	struct src in_src = { p, len };
	struct kvmk_mig_in in = { src_read, &in_src, 0 };
	struct seen seen = { 0 };
	struct kvmk_mig_sink sink = { sink_pages, sink_zero, sink_paused, sink_state, &seen };
	struct kvmk_mig_rx rx = { 0 };

	if (!kvmk_mig_recv(&in, &sink, RAM, &rx))
		CHECK(seen.paused == 1 && seen.state == 1);
	CHECK(rx.pages <= in.bytes / KVMK_MIG_PAGE);
}

static void whole(const uint8_t *p, size_t len)
{
	struct src s = { p, len };
	struct kvmk_mig_in in = { src_read, &s, 0 };
	struct kvmk_mig_hello h;

	if (kvmk_mig_hello_read(&in, &h))
		return;
	CHECK(h.version == KVMK_MIG_VERSION && h.page_size == KVMK_MIG_PAGE);
	CHECK(h.vcpus >= 1 && h.vcpus <= 4096 && h.irqchip <= 2);
	CHECK(h.nr_regions <= KVMK_MIG_MAX_REGIONS);
	for (uint32_t i = 0; i < h.nr_regions; i++)
		CHECK(h.regions[i].size && !(h.regions[i].gpa % KVMK_MIG_PAGE) &&
		      h.regions[i].gpa + h.regions[i].size > h.regions[i].gpa);
	records(s.p, s.left);
}

/* Records framed from the input: type byte, 16-bit length, payload. */
static size_t frame(const uint8_t *p, size_t len, uint8_t *out, size_t cap)
{
	static const uint32_t types[] = { KVMK_MIG_PAGES,  KVMK_MIG_ZERO,  KVMK_MIG_PASS_END,
					  KVMK_MIG_PAUSED, KVMK_MIG_STATE, KVMK_MIG_END,
					  KVMK_MIG_ACCEPT, 0xffffffffu };
	size_t o = 0;

	while (len >= 3) {
		uint32_t type = types[p[0] % 8], take = (uint32_t)p[1] | (uint32_t)p[2] << 8;
		uint32_t n;
		bool pad;

		p += 3;
		len -= 3;
		if (take > len)
			take = (uint32_t)len;
		/* PAGES payloads are mostly page data: a 16-byte header is
		 * padded with one page, so that a page fits a short input. */
		pad = type == KVMK_MIG_PAGES && take == 16;
		n = take + (pad ? KVMK_MIG_PAGE : 0);
		if (o + 12 + (size_t)n > cap)
			break;
		kvmk_mig_put32(out + o, type);
		kvmk_mig_put32(out + o + 4, n);
		memcpy(out + o + 8, p, take);
		if (pad)
			memset(out + o + 8 + take, 0xab, KVMK_MIG_PAGE);
		kvmk_mig_put32(out + o + 8 + n, kvmk_mig_crc(0, out + o, 8 + (size_t)n));
		o += 12 + (size_t)n;
		p += take;
		len -= take;
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[KVMK_MIG_HELLO_MAX + (1u << 20)];
	struct kvmk_mig_hello h = { .version = KVMK_MIG_VERSION,
				    .arch = 1,
				    .vcpus = 1,
				    .mem_size = RAM,
				    .page_size = KVMK_MIG_PAGE,
				    .nr_regions = 1,
				    .regions = { { 0, RAM } } };
	size_t n;

	whole(data, size);
	n = kvmk_mig_hello_build(&h, buf);
	if (size <= sizeof(buf) - n) {
		memcpy(buf + n, data, size);
		whole(buf, n + size);
	}
	n += frame(data, size, buf + n, sizeof(buf) - n);
	whole(buf, n);
	return 0;
}
