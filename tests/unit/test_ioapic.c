// SPDX-License-Identifier: MIT
/* The userspace IOAPIC model against the 82093AA datasheet's registers and
 * the pin/EOI semantics documented in src/irq/ioapic.h. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <kvmkit/irq.h>
#include "arch/x86/ioapic.h"

#define MAXMSG 64
#define KVMKIT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct rec {
	struct kvmk_ioapic *io;
	unsigned int n;
	struct kvmk_ioapic_msi msg[MAXMSG];
	int ret; /* what deliver returns */
	/* Re-entrancy probes run from inside deliver. */
	bool probe;
	uint64_t seen_entry;
	int nested_status;
	unsigned int routes;
	struct kvmk_ioapic_msi last_route;
	bool last_route_masked;
	unsigned int resamples[KVMK_IOAPIC_PINS];
	bool deassert_on_resample;
	/* Rewrite the pin's entry (low dword) before de-asserting, as another
	 * vCPU's write landing while the EOI's notifier runs. */
	bool rewrite_on_resample;
	uint32_t rewrite_low;
};

static int rec_deliver(void *opaque, const struct kvmk_ioapic_msi *m)
{
	struct rec *r = opaque;

	if (r->n < MAXMSG)
		r->msg[r->n] = *m;
	r->n++;
	if (r->probe) {
		r->probe = false;
		kvmk_ioapic_read_entry(r->io, m->pin, &r->seen_entry);
		/* Another pin, from inside the callback: no deadlock. */
		r->nested_status = kvmk_ioapic_set_level(r->io, 23, true);
	}
	return r->ret;
}

static void rec_route(void *opaque, unsigned int pin, const struct kvmk_ioapic_msi *m, bool masked)
{
	struct rec *r = opaque;

	r->routes++;
	r->last_route = *m;
	r->last_route_masked = masked;
}

static void reg_wr(struct kvmk_ioapic *io, uint32_t idx, uint32_t v);

static void rec_resample(void *opaque, unsigned int pin)
{
	struct rec *r = opaque;

	r->resamples[pin]++;
	if (r->rewrite_on_resample)
		reg_wr(r->io, 0x10 + 2 * pin, r->rewrite_low);
	if (r->deassert_on_resample)
		assert_int_equal(kvmk_ioapic_set_level(r->io, pin, false), 0);
}

static struct kvmk_ioapic *mk(struct rec *r, bool polarity_ignored)
{
	struct kvmk_ioapic_config cfg = {
		.deliver = rec_deliver,
		.route_changed = rec_route,
		.opaque = r,
		.polarity_ignored = polarity_ignored,
	};

	memset(r, 0, sizeof(*r));
	r->ret = 1;
	assert_int_equal(kvmk_ioapic_create(&cfg, &r->io), 0);
	return r->io;
}

static void wr(struct kvmk_ioapic *io, uint64_t off, uint32_t v)
{
	uint8_t b[4] = { v, v >> 8, v >> 16, v >> 24 };

	kvmk_ioapic_mmio_write(io, off, b, 4);
}

static uint32_t rd(struct kvmk_ioapic *io, uint64_t off)
{
	uint8_t b[4];

	kvmk_ioapic_mmio_read(io, off, b, 4);
	return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static void reg_wr(struct kvmk_ioapic *io, uint32_t idx, uint32_t v)
{
	wr(io, KVMK_IOAPIC_REGSEL, idx);
	wr(io, KVMK_IOAPIC_WIN, v);
}

static uint32_t reg_rd(struct kvmk_ioapic *io, uint32_t idx)
{
	wr(io, KVMK_IOAPIC_REGSEL, idx);
	return rd(io, KVMK_IOAPIC_WIN);
}

/* High dword first, as OSes program entries while masked. */
static void set_entry(struct kvmk_ioapic *io, unsigned int pin, uint64_t e)
{
	reg_wr(io, 0x11 + 2 * pin, (uint32_t)(e >> 32));
	reg_wr(io, 0x10 + 2 * pin, (uint32_t)e);
}

static uint64_t entry(struct kvmk_ioapic *io, unsigned int pin)
{
	uint64_t e;

	assert_int_equal(kvmk_ioapic_read_entry(io, pin, &e), 0);
	return e;
}

#define LEVEL KVMK_IOAPIC_TRIGGER
#define MASK KVMK_IOAPIC_MASKED
#define RIRR KVMK_IOAPIC_REMOTE_IRR

static void test_reset_state(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	assert_int_equal(kvmk_ioapic_pins(io), 24);
	assert_int_equal(rd(io, KVMK_IOAPIC_REGSEL), 0);
	assert_int_equal(reg_rd(io, 0), 0);
	assert_int_equal(reg_rd(io, 1), 0x00170011);
	assert_int_equal(reg_rd(io, 2), 0);
	for (unsigned int p = 0; p < 24; p++) {
		assert_int_equal(reg_rd(io, 0x10 + 2 * p), 0x00010000);
		assert_int_equal(reg_rd(io, 0x11 + 2 * p), 0);
		assert_int_equal(entry(io, p), MASK);
	}
	/* Dirty everything, then reset. */
	reg_wr(io, 0, 0x0a000000);
	for (unsigned int p = 0; p < 24; p++)
		set_entry(io, p, 0xff000000000000ffull | LEVEL | KVMK_IOAPIC_POLARITY);
	assert_int_equal(kvmk_ioapic_set_level(io, 3, false), 0);
	assert_int_equal(r.n, 24); /* active-low level pins with input 0 fire */
	r.routes = 0;
	kvmk_ioapic_reset(io);
	assert_int_equal(r.routes, 24);
	assert_true(r.last_route_masked);
	assert_int_equal(rd(io, KVMK_IOAPIC_REGSEL), 0);
	assert_int_equal(reg_rd(io, 0), 0);
	assert_int_equal(reg_rd(io, 2), 0);
	for (unsigned int p = 0; p < 24; p++)
		assert_int_equal(entry(io, p), MASK);
	kvmk_ioapic_destroy(io);
}

static void test_id_and_arbitration(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	reg_wr(io, 0, 0xffffffff);
	assert_int_equal(reg_rd(io, 0), 0x0f000000);
	assert_int_equal(reg_rd(io, 2), 0x0f000000);
	reg_wr(io, 0, 0x05000000);
	assert_int_equal(reg_rd(io, 0), 0x05000000);
	assert_int_equal(reg_rd(io, 2), 0x05000000);
	reg_wr(io, 0, 0x00ffffff);
	assert_int_equal(reg_rd(io, 0), 0);
	/* Arbitration and version are read-only. */
	reg_wr(io, 0, 0x03000000);
	reg_wr(io, 2, 0x0c000000);
	assert_int_equal(reg_rd(io, 2), 0x03000000);
	reg_wr(io, 1, 0xffffffff);
	assert_int_equal(reg_rd(io, 1), 0x00170011);
	reg_wr(io, 1, 0);
	assert_int_equal(reg_rd(io, 1), 0x00170011);
	assert_int_equal(r.n, 0);
	kvmk_ioapic_destroy(io);
}

static void test_ioregsel_indirection(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	wr(io, KVMK_IOAPIC_REGSEL, 0x12345601);
	assert_int_equal(rd(io, KVMK_IOAPIC_REGSEL), 0x01);
	assert_int_equal(rd(io, KVMK_IOAPIC_WIN), 0x00170011);
	/* Low and high dwords of entries 0 and 23 land where they should. */
	reg_wr(io, 0x10, 0x00010031);
	reg_wr(io, 0x11, 0x11000000);
	reg_wr(io, 0x3e, 0x00010032);
	reg_wr(io, 0x3f, 0x22000000);
	assert_int_equal(entry(io, 0), 0x1100000000010031ull);
	assert_int_equal(entry(io, 23), 0x2200000000010032ull);
	for (unsigned int p = 1; p < 23; p++)
		assert_int_equal(entry(io, p), MASK);
	assert_int_equal(reg_rd(io, 0x3e), 0x00010032);
	assert_int_equal(reg_rd(io, 0x3f), 0x22000000);
	/* IOREGSEL keeps its value across IOWIN accesses. */
	wr(io, KVMK_IOAPIC_REGSEL, 0x11);
	assert_int_equal(rd(io, KVMK_IOAPIC_WIN), 0x11000000);
	assert_int_equal(rd(io, KVMK_IOAPIC_WIN), 0x11000000);
	assert_int_equal(rd(io, KVMK_IOAPIC_REGSEL), 0x11);
	kvmk_ioapic_destroy(io);
}

static void test_redir_rw_masks(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	/* Low: everything but delivery status (12), remote IRR (14) and the
	 * reserved 31:17 is writable. */
	reg_wr(io, 0x10 + 2 * 4, 0xffffffff);
	assert_int_equal(reg_rd(io, 0x10 + 2 * 4), 0x0001afff);
	/* High: only the destination, 63:56. */
	reg_wr(io, 0x11 + 2 * 4, 0xffffffff);
	assert_int_equal(reg_rd(io, 0x11 + 2 * 4), 0xff000000);
	assert_int_equal(entry(io, 4), 0xff0000000001afffull);
	reg_wr(io, 0x10 + 2 * 4, 0);
	reg_wr(io, 0x11 + 2 * 4, 0);
	assert_int_equal(entry(io, 4), 0);
	kvmk_ioapic_destroy(io);
}

static void test_readonly_bits_preserved(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 2, 0x40 | LEVEL);
	assert_int_equal(kvmk_ioapic_set_level(io, 2, true), 1);
	assert_int_equal(entry(io, 2), 0x40 | LEVEL | RIRR);
	/* Writing 0 to remote IRR and 1 to delivery status changes neither. */
	reg_wr(io, 0x10 + 2 * 2, 0x40 | LEVEL | KVMK_IOAPIC_DELIVS);
	assert_int_equal(entry(io, 2), 0x40 | LEVEL | RIRR);
	reg_wr(io, 0x10 + 2 * 2, 0x41 | LEVEL);
	assert_int_equal(entry(io, 2), 0x41 | LEVEL | RIRR);
	/* Writing the high dword keeps the low one, remote IRR included. */
	reg_wr(io, 0x11 + 2 * 2, 0x07000000);
	assert_int_equal(entry(io, 2), 0x0700000000000041ull | LEVEL | RIRR);
	assert_int_equal(r.n, 1);
	/* Masking keeps remote IRR too. */
	reg_wr(io, 0x10 + 2 * 2, 0x41 | LEVEL | MASK);
	assert_int_equal(entry(io, 2), 0x0700000000000041ull | LEVEL | RIRR | MASK);
	kvmk_ioapic_destroy(io);
}

static void test_unimplemented_index(void **state)
{
	static const uint32_t idx[] = { 0x03, 0x0f, 0x40, 0x41, 0x10 + 48, 0x80, 0xff };
	struct kvmk_ioapic_state a, b;
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	kvmk_ioapic_save(io, &a);
	for (unsigned int i = 0; i < KVMKIT_ARRAY_SIZE(idx); i++) {
		assert_int_equal(reg_rd(io, idx[i]), 0);
		reg_wr(io, idx[i], 0xffffffff);
		assert_int_equal(reg_rd(io, idx[i]), 0);
	}
	kvmk_ioapic_save(io, &b);
	b.ioregsel = a.ioregsel;
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(r.n, 0);
	kvmk_ioapic_destroy(io);
}

static void test_bad_accesses(void **state)
{
	static const struct {
		uint64_t off;
		unsigned int size;
	} acc[] = {
		{ 0x00, 1 },  { 0x00, 2 },	{ 0x00, 8 }, { 0x10, 1 }, { 0x10, 2 }, { 0x10, 8 },
		{ 0x01, 4 },  { 0x02, 4 },	{ 0x12, 4 }, { 0x11, 1 }, { 0x04, 4 }, { 0x0c, 4 },
		{ 0x14, 4 },  { 0x20, 4 },	{ 0x30, 4 }, { 0x40, 4 }, { 0x40, 1 }, { 0xffc, 4 },
		{ 0xfff, 1 }, { ~0ull - 3, 4 }, { 0x10, 3 }, { 0x00, 0 },
	};
	struct kvmk_ioapic_state before, after;
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	/* Something to corrupt: entry 0 level, ID set, IOREGSEL at entry 0. */
	reg_wr(io, 0, 0x02000000);
	set_entry(io, 0, 0x3300000000000051ull);
	wr(io, KVMK_IOAPIC_REGSEL, 0x10);
	kvmk_ioapic_save(io, &before);
	for (unsigned int i = 0; i < KVMKIT_ARRAY_SIZE(acc); i++) {
		uint8_t buf[16];

		memset(buf, 0xa5, sizeof(buf));
		kvmk_ioapic_mmio_read(io, acc[i].off, buf + 4, acc[i].size);
		for (unsigned int k = 0; k < sizeof(buf); k++) {
			if (k >= 4 && k < 4 + acc[i].size)
				assert_int_equal(buf[k], 0xff);
			else
				assert_int_equal(buf[k], 0xa5); /* untouched */
		}
		memset(buf, 0, sizeof(buf));
		kvmk_ioapic_mmio_write(io, acc[i].off, buf + 4, acc[i].size);
		memset(buf, 0xff, sizeof(buf));
		kvmk_ioapic_mmio_write(io, acc[i].off, buf + 4, acc[i].size);
	}
	kvmk_ioapic_save(io, &after);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_int_equal(r.n, 0);
	kvmk_ioapic_destroy(io);
}

static void test_edge_rising_only(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 1, 0x30);
	assert_int_equal(r.n, 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 1, true), 1);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.msg[0].data, 0x30);
	assert_int_equal(r.msg[0].pin, 1);
	/* Staying high is not an edge; falling is not either. */
	assert_int_equal(kvmk_ioapic_set_level(io, 1, true), 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 1, false), 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 1, false), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(kvmk_ioapic_set_level(io, 1, true), 1);
	assert_int_equal(r.n, 2);
	/* EOI does nothing to edge entries. */
	assert_int_equal(kvmk_ioapic_eoi(io, 0x30), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(entry(io, 1), 0x30);
	kvmk_ioapic_destroy(io);
}

static void test_edge_masked_dropped(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 6, 0x36 | MASK);
	assert_int_equal(kvmk_ioapic_set_level(io, 6, true), KVMK_IRQ_MASKED);
	assert_int_equal(kvmk_ioapic_set_level(io, 6, false), 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 6, true), KVMK_IRQ_MASKED);
	/* 82093AA: an edge on a masked pin is not held pending. */
	set_entry(io, 6, 0x36);
	assert_int_equal(r.n, 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 6, true), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 6, false), 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 6, true), 1);
	assert_int_equal(r.n, 1);
	kvmk_ioapic_destroy(io);
}

static void test_level_remote_irr_and_eoi(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 9, 0x49 | LEVEL);
	assert_int_equal(kvmk_ioapic_set_level(io, 9, true), 1);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.msg[0].data, 0x49 | 1 << 15 | 1 << 14);
	assert_true(entry(io, 9) & RIRR);
	/* In service: coalesced, nothing sent. */
	assert_int_equal(kvmk_ioapic_set_level(io, 9, true), 0);
	assert_int_equal(r.n, 1);
	/* EOI of another vector does nothing. */
	assert_int_equal(kvmk_ioapic_eoi(io, 0x48), 0);
	assert_true(entry(io, 9) & RIRR);
	/* EOI while still asserted: delivered again, remote IRR set again. */
	assert_int_equal(kvmk_ioapic_eoi(io, 0x49), 1);
	assert_int_equal(r.n, 2);
	assert_true(entry(io, 9) & RIRR);
	/* De-assert, EOI: no re-fire, remote IRR clear. */
	assert_int_equal(kvmk_ioapic_set_level(io, 9, false), 0);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x49), 1);
	assert_int_equal(r.n, 2);
	assert_false(entry(io, 9) & RIRR);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x49), 1);
	assert_int_equal(r.n, 2);
	/* Asserting again fires. */
	assert_int_equal(kvmk_ioapic_set_level(io, 9, true), 1);
	assert_int_equal(r.n, 3);
	assert_int_equal(kvmk_ioapic_eoi(io, 256), -EINVAL);
	kvmk_ioapic_destroy(io);
}

static void test_level_masked_then_unmask(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 10, 0x50 | LEVEL | MASK);
	assert_int_equal(kvmk_ioapic_set_level(io, 10, true), KVMK_IRQ_MASKED);
	assert_int_equal(r.n, 0);
	assert_false(entry(io, 10) & RIRR);
	reg_wr(io, 0x10 + 2 * 10, 0x50 | LEVEL);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.msg[0].pin, 10);
	assert_true(entry(io, 10) & RIRR);
	/* Masked while in service: EOI clears remote IRR, nothing sent. */
	reg_wr(io, 0x10 + 2 * 10, 0x50 | LEVEL | MASK);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x50), 1);
	assert_int_equal(r.n, 1);
	assert_false(entry(io, 10) & RIRR);
	/* A level that came and went while masked leaves nothing behind. */
	assert_int_equal(kvmk_ioapic_set_level(io, 10, false), 0);
	reg_wr(io, 0x10 + 2 * 10, 0x50 | LEVEL);
	assert_int_equal(r.n, 1);
	kvmk_ioapic_destroy(io);
}

static void test_edge_switch_clears_remote_irr(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 11, 0x51 | LEVEL);
	assert_int_equal(kvmk_ioapic_set_level(io, 11, true), 1);
	assert_true(entry(io, 11) & RIRR);
	/* Linux's remote-IRR clearing for version 0x11: mask + edge, then back. */
	reg_wr(io, 0x10 + 2 * 11, 0x51 | MASK);
	assert_int_equal(entry(io, 11), 0x51 | MASK);
	assert_int_equal(r.n, 1);
	reg_wr(io, 0x10 + 2 * 11, 0x51 | LEVEL | MASK);
	assert_int_equal(r.n, 1);
	reg_wr(io, 0x10 + 2 * 11, 0x51 | LEVEL);
	assert_int_equal(r.n, 2); /* still asserted: delivered again */
	kvmk_ioapic_destroy(io);
}

static void test_polarity(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);
	const uint64_t lo = KVMK_IOAPIC_POLARITY;

	/* Active-low edge: a falling input is the active edge. */
	assert_int_equal(kvmk_ioapic_set_level(io, 12, true), KVMK_IRQ_MASKED);
	set_entry(io, 12, 0x60 | lo);
	assert_int_equal(r.n, 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 12, false), 1);
	assert_int_equal(r.n, 1);
	assert_int_equal(kvmk_ioapic_set_level(io, 12, true), 0);
	assert_int_equal(r.n, 1);
	/* Active-low level with the input low fires as soon as unmasked. */
	set_entry(io, 13, 0x61 | lo | LEVEL | MASK);
	assert_int_equal(r.n, 1);
	reg_wr(io, 0x10 + 2 * 13, 0x61 | lo | LEVEL);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.msg[1].data & 0xff, 0x61);
	/* Driving it high de-asserts: EOI does not re-fire. */
	assert_int_equal(kvmk_ioapic_set_level(io, 13, true), 0);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x61), 1);
	assert_int_equal(r.n, 2);
	assert_int_equal(kvmk_ioapic_set_level(io, 13, false), 1);
	assert_int_equal(r.n, 3);
	kvmk_ioapic_destroy(io);

	/* polarity_ignored: 1 is asserted whatever bit 13 says (KVM's way). */
	io = mk(&r, true);
	set_entry(io, 13, 0x61 | lo | LEVEL);
	assert_int_equal(r.n, 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 13, true), 1);
	assert_int_equal(r.n, 1);
	kvmk_ioapic_destroy(io);
}

static void test_msi_encoding(void **state)
{
	static const unsigned int modes[] = { 0, 1, 2, 4, 5, 7 };
	static const uint8_t dests[] = { 0x00, 0x01, 0x5a, 0xff };
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	for (unsigned int m = 0; m < KVMKIT_ARRAY_SIZE(modes); m++)
		for (unsigned int d = 0; d < KVMKIT_ARRAY_SIZE(dests); d++)
			for (unsigned int logical = 0; logical < 2; logical++)
				for (unsigned int level = 0; level < 2; level++) {
					uint64_t e = (uint64_t)dests[d] << 56 | (0x20 + m) |
						     (uint64_t)modes[m] << 8 |
						     (logical ? KVMK_IOAPIC_DESTMODE : 0) |
						     (level ? LEVEL : 0);
					uint64_t addr = 0xfee00000ull | (uint64_t)dests[d] << 12 |
							(logical ? 4 : 0);
					uint32_t data =
						(0x20 + m) | modes[m] << 8 | (level ? 0xc000 : 0);
					unsigned int n = r.n;

					set_entry(io, 7, MASK); /* edge: clears remote IRR */
					kvmk_ioapic_set_level(io, 7, false);
					set_entry(io, 7, e);
					assert_int_equal(kvmk_ioapic_set_level(io, 7, true), 1);
					assert_int_equal(r.n, n + 1);
					assert_int_equal(r.msg[n % MAXMSG].address, addr);
					assert_int_equal(r.msg[n % MAXMSG].data, data);
					assert_int_equal(r.msg[n % MAXMSG].pin, 7);
					/* The route notification carries the same MSI. */
					assert_int_equal(r.last_route.address, addr);
					assert_int_equal(r.last_route.data, data);
					assert_int_equal(r.last_route.pin, 7);
					r.n = 0;
				}
	/* Reserved delivery modes 011 and 110 are never sent. */
	for (unsigned int dm = 3; dm <= 6; dm += 3) {
		kvmk_ioapic_set_level(io, 8, false);
		set_entry(io, 8, 0x70 | (uint64_t)dm << 8);
		assert_int_equal(kvmk_ioapic_set_level(io, 8, true), KVMK_IRQ_MASKED);
		set_entry(io, 8, 0x70 | (uint64_t)dm << 8 | LEVEL);
		assert_int_equal(kvmk_ioapic_set_level(io, 8, true), KVMK_IRQ_MASKED);
		assert_false(entry(io, 8) & RIRR);
	}
	assert_int_equal(r.n, 0);
	kvmk_ioapic_destroy(io);
}

static void test_callback_status(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 3, 0x33);
	set_entry(io, 4, 0x34 | LEVEL);
	r.ret = 3;
	assert_int_equal(kvmk_ioapic_set_level(io, 3, true), 3);
	/* Blocked/coalesced in the LAPIC: remote IRR stays clear, and the next
	 * assertion (or an EOI of the vector) tries again. */
	r.ret = 0;
	assert_int_equal(kvmk_ioapic_set_level(io, 4, true), 0);
	assert_false(entry(io, 4) & RIRR);
	assert_int_equal(kvmk_ioapic_set_level(io, 4, true), 0);
	assert_int_equal(r.n, 3);
	r.ret = -5;
	assert_int_equal(kvmk_ioapic_set_level(io, 4, true), -5);
	assert_false(entry(io, 4) & RIRR);
	r.ret = 1;
	assert_int_equal(kvmk_ioapic_eoi(io, 0x34), 1);
	assert_int_equal(r.n, 5);
	assert_true(entry(io, 4) & RIRR);
	kvmk_ioapic_destroy(io);
}

static void test_resample(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 5, 0x55 | LEVEL);
	set_entry(io, 14, 0x55); /* edge with the same vector: not EOI'd */
	assert_int_equal(kvmk_ioapic_set_resample(io, 5, rec_resample, &r), 0);
	assert_int_equal(kvmk_ioapic_set_resample(io, 14, rec_resample, &r), 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 5, true), 1);
	/* The device still needs service: notified, then delivered again. */
	assert_int_equal(kvmk_ioapic_eoi(io, 0x55), 1);
	assert_int_equal(r.resamples[5], 1);
	assert_int_equal(r.resamples[14], 0);
	assert_int_equal(r.n, 2);
	/* The device de-asserts from the notifier (irqfd resample style): no
	 * second delivery. */
	r.deassert_on_resample = true;
	assert_int_equal(kvmk_ioapic_eoi(io, 0x55), 1);
	assert_int_equal(r.resamples[5], 2);
	assert_int_equal(r.n, 2);
	assert_false(entry(io, 5) & RIRR);
	/* Other vectors do not notify; a removed notifier is not called. */
	assert_int_equal(kvmk_ioapic_eoi(io, 0x56), 0);
	assert_int_equal(kvmk_ioapic_set_resample(io, 5, NULL, NULL), 0);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x55), 1);
	assert_int_equal(r.resamples[5], 2);
	kvmk_ioapic_destroy(io);
}

/*
 * Regression (split mode, seen as 1201 interrupts for 1200 requests in
 * the chaos test): an entry write that lands while an EOI's resample
 * notifier runs must not find the pin free and send the same assertion
 * again. Remote IRR clears only after the notifier has de-asserted.
 */
static void test_write_during_resample(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 16, 0x50 | LEVEL);
	assert_int_equal(kvmk_ioapic_set_resample(io, 16, rec_resample, &r), 0);
	assert_int_equal(kvmk_ioapic_set_level(io, 16, true), 1);
	assert_int_equal(r.n, 1);
	r.deassert_on_resample = true;
	r.rewrite_on_resample = true;
	r.rewrite_low = 0x50 | LEVEL; /* unmasked, same vector */
	assert_int_equal(kvmk_ioapic_eoi(io, 0x50), 1);
	assert_int_equal(r.resamples[16], 1);
	assert_int_equal(r.n, 1); /* once per assertion */
	assert_false(entry(io, 16) & RIRR);
	/* The next assertion is delivered, once. */
	r.rewrite_on_resample = false;
	assert_int_equal(kvmk_ioapic_set_level(io, 16, true), 1);
	assert_int_equal(r.n, 2);
	/* A vector change in the window: the next EOI still matches the sent
	 * vector, and the new one takes effect afterwards. */
	r.rewrite_on_resample = true;
	r.rewrite_low = 0x60 | LEVEL;
	assert_int_equal(kvmk_ioapic_eoi(io, 0x50), 1);
	assert_int_equal(r.n, 2);
	r.rewrite_on_resample = false;
	assert_int_equal(kvmk_ioapic_set_level(io, 16, true), 1);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.msg[2].data & 0xff, 0x60);
	kvmk_ioapic_destroy(io);
}

static void test_shared_vector_eoi(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 16, 0x90 | LEVEL);
	set_entry(io, 17, 0x90 | LEVEL);
	assert_int_equal(kvmk_ioapic_set_level(io, 16, true), 1);
	assert_int_equal(kvmk_ioapic_set_level(io, 17, true), 1);
	assert_int_equal(kvmk_ioapic_set_level(io, 17, false), 0);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x90), 2);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.msg[2].pin, 16);
	assert_true(entry(io, 16) & RIRR);
	assert_false(entry(io, 17) & RIRR);
	kvmk_ioapic_destroy(io);
}

static void test_reentrant_deliver(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 23, 0x23);
	set_entry(io, 20, 0xa0 | LEVEL);
	r.probe = true;
	assert_int_equal(kvmk_ioapic_set_level(io, 20, true), 1);
	/* Inside deliver: the entry showed "send pending" and remote IRR, and
	 * set_level on another pin worked without deadlock. */
	assert_true(r.seen_entry & KVMK_IOAPIC_DELIVS);
	assert_true(r.seen_entry & RIRR);
	assert_int_equal(r.nested_status, 1);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.msg[0].pin, 20);
	assert_int_equal(r.msg[1].pin, 23);
	assert_false(entry(io, 20) & KVMK_IOAPIC_DELIVS);
	kvmk_ioapic_destroy(io);
}

static void test_route_changed(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	reg_wr(io, 0x10, 0x00010000); /* same value */
	assert_int_equal(r.routes, 0);
	/* A masked entry has no EOI route, whatever it says. */
	reg_wr(io, 0x11, 0x03000000);
	assert_int_equal(r.routes, 0);
	reg_wr(io, 0x10, 0x41 | LEVEL);
	assert_int_equal(r.routes, 1);
	assert_false(r.last_route_masked);
	assert_int_equal(r.last_route.address, 0xfee03000);
	assert_int_equal(r.last_route.data, 0xc041);
	assert_int_equal(r.last_route.pin, 0);
	/* Remote IRR set and cleared by its own message: the same route. */
	assert_int_equal(kvmk_ioapic_set_level(io, 0, true), 1);
	assert_int_equal(kvmk_ioapic_set_level(io, 0, false), 0);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x41), 1);
	assert_int_equal(r.routes, 1);
	reg_wr(io, 0x10, 0x41 | LEVEL | MASK);
	assert_int_equal(r.routes, 2);
	assert_true(r.last_route_masked);
	kvmk_ioapic_destroy(io);
}

/* Issue 13 case 1 at the model: masked while in service, the entry keeps
 * its EOI route until the EOI; then the route goes, and unmasking with the
 * line still asserted delivers once more. */
static void test_route_held_mask_in_service(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 5, 0x64 | LEVEL);
	assert_int_equal(kvmk_ioapic_set_level(io, 5, true), 1);
	r.routes = 0;
	set_entry(io, 5, 0x64 | LEVEL | MASK);
	assert_int_equal(r.routes, 0); /* held: the EOI must still exit */
	assert_int_equal(entry(io, 5), 0x64 | LEVEL | MASK | RIRR);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x64), 1);
	assert_int_equal(entry(io, 5), 0x64 | LEVEL | MASK);
	assert_int_equal(r.routes, 1);
	assert_true(r.last_route_masked);
	assert_int_equal(r.n, 1);
	set_entry(io, 5, 0x64 | LEVEL);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.msg[1].data, 0xc064);
	assert_int_equal(entry(io, 5), 0x64 | LEVEL | RIRR);
	kvmk_ioapic_destroy(io);
}

/* Issue 13 cases 2 and 3 at the model: retargeted in service, the EOI
 * route keeps the old destination until the EOI, then follows the entry;
 * the still-asserted line goes to the new destination. */
static void test_route_held_retarget_in_service(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 6, 0x84 | LEVEL);
	assert_int_equal(kvmk_ioapic_set_level(io, 6, true), 1);
	assert_int_equal(r.last_route.address, 0xfee00000);
	r.routes = 0;
	reg_wr(io, 0x11 + 2 * 6, 0x01000000);
	assert_int_equal(r.routes, 0);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x84), 1);
	assert_int_equal(r.routes, 1);
	assert_false(r.last_route_masked);
	assert_int_equal(r.last_route.address, 0xfee01000);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.msg[1].address, 0xfee01000);
	/* The route was reported before the message that needs it. */
	assert_int_equal(entry(io, 6), 0x0100000000000084ull | LEVEL | RIRR);
	kvmk_ioapic_destroy(io);
}

/* Re-vectored in service: only the EOI of the vector that was sent ends the
 * service (KVM's in-kernel IOAPIC, matching the entry's current vector,
 * would wait forever); the next delivery uses the new vector. */
static void test_route_held_vector_in_service(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 7, 0x41 | LEVEL);
	assert_int_equal(kvmk_ioapic_set_level(io, 7, true), 1);
	r.routes = 0;
	set_entry(io, 7, 0x42 | LEVEL);
	assert_int_equal(r.routes, 0);
	assert_int_equal(r.last_route.data, 0xc041);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x42), 0);
	assert_true(entry(io, 7) & RIRR);
	assert_int_equal(r.n, 1);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x41), 1);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.msg[1].data, 0xc042);
	assert_int_equal(r.last_route.data, 0xc042);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x41), 0); /* not the vector any more */
	assert_int_equal(kvmk_ioapic_eoi(io, 0x42), 1);
	assert_int_equal(r.n, 3);
	/* Switched to edge in service: no EOI to wait for, route follows. */
	r.routes = 0;
	set_entry(io, 7, 0x43);
	assert_false(entry(io, 7) & RIRR);
	assert_int_equal(r.routes, 1);
	assert_int_equal(r.last_route.data, 0x43);
	kvmk_ioapic_destroy(io);
}

/* A level delivery the LAPIC did not accept leaves no route held. */
static void test_route_not_accepted(void **state)
{
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 8, 0x51 | LEVEL);
	r.ret = 0;
	r.routes = 0;
	assert_int_equal(kvmk_ioapic_set_level(io, 8, true), 0);
	assert_false(entry(io, 8) & RIRR);
	assert_int_equal(r.routes, 0);
	assert_int_equal(r.last_route.data, 0xc051);
	kvmk_ioapic_destroy(io);
}

static void test_snapshot_restore(void **state)
{
	struct kvmk_ioapic_state s, t, bad;
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	reg_wr(io, 0, 0x09000000);
	set_entry(io, 0, 0x0100000000000031ull);
	set_entry(io, 1, 0x0200000000000032ull | LEVEL);
	set_entry(io, 2, 0x0300000000000033ull | LEVEL | MASK);
	assert_int_equal(kvmk_ioapic_set_level(io, 1, true), 1);
	assert_int_equal(kvmk_ioapic_set_level(io, 2, true), KVMK_IRQ_MASKED);
	wr(io, KVMK_IOAPIC_REGSEL, 0x13);
	kvmk_ioapic_save(io, &s);
	assert_int_equal(s.id, 0x09000000);
	assert_int_equal(s.ioregsel, 0x13);
	assert_int_equal(s.irr, 0x6);
	assert_int_equal(s.redir[1], 0x0200000000000032ull | LEVEL | RIRR);

	kvmk_ioapic_reset(io);
	r.routes = 0;
	assert_int_equal(kvmk_ioapic_restore(io, &s), 0);
	assert_int_equal(r.routes, 2); /* pins 0 and 1; masked pin 2 has none */
	kvmk_ioapic_save(io, &t);
	assert_memory_equal(&s, &t, sizeof(s));
	assert_int_equal(reg_rd(io, 2), 0x09000000);
	s.ioregsel = 2;

	/* Hostile snapshots are refused whole. */
	bad = s;
	bad.redir[5] |= KVMK_IOAPIC_DELIVS;
	assert_int_equal(kvmk_ioapic_restore(io, &bad), -EINVAL);
	bad = s;
	bad.redir[5] |= 1ull << 40;
	assert_int_equal(kvmk_ioapic_restore(io, &bad), -EINVAL);
	bad = s;
	bad.redir[0] |= RIRR; /* edge entry */
	assert_int_equal(kvmk_ioapic_restore(io, &bad), -EINVAL);
	bad = s;
	bad.id = 0x10000000;
	assert_int_equal(kvmk_ioapic_restore(io, &bad), -EINVAL);
	bad = s;
	bad.ioregsel = 0x100;
	assert_int_equal(kvmk_ioapic_restore(io, &bad), -EINVAL);
	bad = s;
	bad.irr = 1u << 24;
	assert_int_equal(kvmk_ioapic_restore(io, &bad), -EINVAL);
	kvmk_ioapic_save(io, &t);
	assert_memory_equal(&s, &t, sizeof(s));

	/* service(): pin 1 is in service, pin 2 masked; after an EOI-less
	 * restore with remote IRR clear it is delivered. */
	r.n = 0;
	assert_int_equal(kvmk_ioapic_service(io), 0);
	s.redir[1] &= ~RIRR;
	assert_int_equal(kvmk_ioapic_restore(io, &s), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(kvmk_ioapic_service(io), 1);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.msg[0].pin, 1);
	kvmk_ioapic_destroy(io);
}

/*
 * The in-service messages travel with the state: an entry re-vectored (and
 * retargeted) while in service keeps the EOI route of the message that set
 * remote IRR across a save and restore, and that vector's EOI ends the
 * service. Messages that the model cannot have sent are refused.
 */
static void test_snapshot_inservice(void **state)
{
	struct kvmk_ioapic_inservice sent, bad;
	struct kvmk_ioapic_state s, t;
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);

	set_entry(io, 4, 0x0100000000000061ull | LEVEL);
	assert_int_equal(kvmk_ioapic_set_level(io, 4, true), 1);
	set_entry(io, 4, 0x0200000000000062ull | LEVEL);
	kvmk_ioapic_save_all(io, &s, &sent);
	assert_int_equal(sent.address[4], 0xfee01000ull);
	assert_int_equal(sent.data[4], 0xc061);
	for (unsigned int i = 0; i < KVMK_IOAPIC_PINS; i++)
		if (i != 4)
			assert_true(!sent.address[i] && !sent.data[i]);

	kvmk_ioapic_reset(io);
	r.routes = 0;
	assert_int_equal(kvmk_ioapic_restore_all(io, &s, &sent), 0);
	assert_int_equal(r.routes, 1);
	assert_int_equal(r.last_route.address, 0xfee01000ull);
	assert_int_equal(r.last_route.data, 0xc061);
	kvmk_ioapic_save_all(io, &t, &bad);
	assert_memory_equal(&s, &t, sizeof(s));
	assert_memory_equal(&sent, &bad, sizeof(sent));
	/* The new vector's EOI does not end it; the sent one's does, and the
	 * line, still up, goes out as the entry says now. */
	r.n = 0;
	assert_int_equal(kvmk_ioapic_eoi(io, 0x62), 0);
	assert_true(entry(io, 4) & RIRR);
	assert_int_equal(kvmk_ioapic_eoi(io, 0x61), 1);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.msg[0].data, 0xc062);
	assert_int_equal(r.msg[0].address, 0xfee02000ull);

	/* Without the messages (an older blob): the entry's own. */
	assert_int_equal(kvmk_ioapic_restore(io, &s), 0);
	assert_int_equal(r.last_route.data, 0xc062);

	/* Refused whole: a message for a pin not in service, a non-MSI
	 * address, stray data bits, none for a pin in service. */
	bad = sent;
	bad.data[3] = 0xc061;
	assert_int_equal(kvmk_ioapic_restore_all(io, &s, &bad), -EINVAL);
	bad = sent;
	bad.address[4] = 0xfed01000ull;
	assert_int_equal(kvmk_ioapic_restore_all(io, &s, &bad), -EINVAL);
	bad = sent;
	bad.data[4] |= 1u << 12;
	assert_int_equal(kvmk_ioapic_restore_all(io, &s, &bad), -EINVAL);
	bad = sent;
	bad.data[4] = 0;
	bad.address[4] = 0;
	assert_int_equal(kvmk_ioapic_restore_all(io, &s, &bad), -EINVAL);
	kvmk_ioapic_destroy(io);
}

static void test_bad_parameters(void **state)
{
	struct kvmk_ioapic_config cfg = { 0 };
	struct kvmk_ioapic *io2 = NULL;
	struct rec r;
	struct kvmk_ioapic *io = mk(&r, false);
	uint64_t e;

	assert_int_equal(kvmk_ioapic_create(&cfg, &io2), -EINVAL);
	assert_null(io2);
	assert_int_equal(kvmk_ioapic_create(NULL, &io2), -EINVAL);
	assert_int_equal(kvmk_ioapic_set_level(io, 24, true), -EINVAL);
	assert_int_equal(kvmk_ioapic_set_level(io, ~0u, true), -EINVAL);
	assert_int_equal(kvmk_ioapic_read_entry(io, 24, &e), -EINVAL);
	assert_int_equal(kvmk_ioapic_set_resample(io, 24, rec_resample, &r), -EINVAL);
	kvmk_ioapic_destroy(io);
	kvmk_ioapic_destroy(NULL);
}

/* ---- concurrency smoke test: no deadlock, nothing left in flight ---- */
struct mt {
	struct kvmk_ioapic *io;
	pthread_mutex_t lock;
	unsigned int delivered, resampled;
};

static int mt_deliver(void *opaque, const struct kvmk_ioapic_msi *m)
{
	struct mt *t = opaque;
	unsigned int n;

	pthread_mutex_lock(&t->lock);
	n = ++t->delivered;
	pthread_mutex_unlock(&t->lock);
	/* Re-enter from the callback now and then, as a device might. */
	if (n % 7 == 0)
		kvmk_ioapic_set_level(t->io, (m->pin + 1) % 4, false);
	return (m->data & 0xff) == 0x83 ? 0 : 1; /* pin 3 always coalesces */
}

static void mt_resample(void *opaque, unsigned int pin)
{
	struct mt *t = opaque;

	pthread_mutex_lock(&t->lock);
	t->resampled++;
	pthread_mutex_unlock(&t->lock);
}

static void *mt_thread(void *arg)
{
	struct mt *t = arg;
	unsigned int seed = (unsigned int)(uintptr_t)pthread_self();

	for (int i = 0; i < 20000; i++) {
		unsigned int pin = rand_r(&seed) % 4;

		switch (rand_r(&seed) % 3) {
		case 0:
			kvmk_ioapic_set_level(t->io, pin, rand_r(&seed) & 1);
			break;
		case 1:
			kvmk_ioapic_eoi(t->io, 0x80 + pin);
			break;
		default: {
			uint8_t b[4] = { 0x10 + 2 * pin };

			kvmk_ioapic_mmio_write(t->io, 0, b, 4); /* races with others */
			kvmk_ioapic_mmio_read(t->io, 0x10, b, 4);
			break;
		}
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct kvmk_ioapic_config cfg = { .deliver = mt_deliver };
	struct mt t = { 0 };
	pthread_t th[4];

	pthread_mutex_init(&t.lock, NULL);
	cfg.opaque = &t;
	assert_int_equal(kvmk_ioapic_create(&cfg, &t.io), 0);
	for (unsigned int p = 0; p < 4; p++) {
		set_entry(t.io, p, (0x80 + p) | LEVEL);
		kvmk_ioapic_set_resample(t.io, p, mt_resample, &t);
	}
	for (unsigned int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, mt_thread, &t);
	for (unsigned int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_true(t.delivered > 0);
	assert_true(t.resampled > 0);
	for (unsigned int p = 0; p < 4; p++) {
		uint64_t e = entry(t.io, p);

		assert_false(e & KVMK_IOAPIC_DELIVS);
		if (p == 3)
			assert_false(e & RIRR); /* never accepted */
	}
	kvmk_ioapic_destroy(t.io);
	pthread_mutex_destroy(&t.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reset_state),
		cmocka_unit_test(test_id_and_arbitration),
		cmocka_unit_test(test_ioregsel_indirection),
		cmocka_unit_test(test_redir_rw_masks),
		cmocka_unit_test(test_readonly_bits_preserved),
		cmocka_unit_test(test_unimplemented_index),
		cmocka_unit_test(test_bad_accesses),
		cmocka_unit_test(test_edge_rising_only),
		cmocka_unit_test(test_edge_masked_dropped),
		cmocka_unit_test(test_level_remote_irr_and_eoi),
		cmocka_unit_test(test_level_masked_then_unmask),
		cmocka_unit_test(test_edge_switch_clears_remote_irr),
		cmocka_unit_test(test_polarity),
		cmocka_unit_test(test_msi_encoding),
		cmocka_unit_test(test_callback_status),
		cmocka_unit_test(test_resample),
		cmocka_unit_test(test_shared_vector_eoi),
		cmocka_unit_test(test_reentrant_deliver),
		cmocka_unit_test(test_route_changed),
		cmocka_unit_test(test_route_held_mask_in_service),
		cmocka_unit_test(test_route_held_retarget_in_service),
		cmocka_unit_test(test_route_held_vector_in_service),
		cmocka_unit_test(test_route_not_accepted),
		cmocka_unit_test(test_snapshot_restore),
		cmocka_unit_test(test_snapshot_inservice),
		cmocka_unit_test(test_bad_parameters),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_write_during_resample),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
