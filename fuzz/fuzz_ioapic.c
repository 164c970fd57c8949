// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: sequences of guest MMIO reads and writes, pin levels,
 * EOIs, resets, service calls and snapshot/restore on the userspace IOAPIC.
 * The deliver callback may re-enter the model. Traps if:
 *  - an entry holds bits outside the writable ones and remote IRR, remote
 *    IRR is set on an edge entry, or delivery status reads 1 with nothing
 *    in flight;
 *  - a register read through IOWIN disagrees with the entry, the version
 *    register changes, the arbitration register differs from the ID;
 *  - a guest write changes delivery status or remote IRR (other than the
 *    clear on a switch to edge) or misses a writable bit;
 *  - a message comes from a masked entry, from a reserved delivery mode, is
 *    not the encoding of its entry, comes from a level entry whose input is
 *    not asserted or that has not claimed remote IRR, or from an edge entry
 *    without a rising edge on that pin;
 *  - an undefined access touches bytes past its size or reads other than
 *    all ones, a restore of a saved state does not reproduce it, or a
 *    status is outside the documented set;
 *  - a pin's reported EOI route is wrong between operations: none for a
 *    masked entry not in service, the entry's message for an unmasked one,
 *    and while remote IRR is set a level message (the one that set it: a
 *    level message leaves only once its route is reported).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include <kvmkit/irq.h>
#include "arch/x86/ioapic.h"

struct fz {
	struct kvmk_ioapic *io;
	bool polarity_ignored;
	int ret; /* deliver's return value */
	unsigned int depth; /* callback nesting */
	bool relaxed; /* a nested op ran: entries may have moved */
	int edge_pin; /* pin of the current set_level op, or -1 */
	bool edge_ok; /* and it was a rising edge */
	unsigned int delivered; /* messages during the current top-level op */
	int last_ret;
	const uint8_t *nest; /* bytes for nested ops */
	size_t nest_len;
	unsigned int resamples;
	/* EOI routes as reported through route_changed. */
	struct kvmk_ioapic_msi route[KVMK_IOAPIC_PINS];
	bool route_valid[KVMK_IOAPIC_PINS];
};

static const unsigned int sizes[8] = { 4, 4, 4, 1, 2, 8, 3, 0 };

static uint32_t mmio_rd32(struct kvmk_ioapic *io, uint64_t off)
{
	uint8_t b[4];

	kvmk_ioapic_mmio_read(io, off, b, 4);
	return b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24;
}

static void mmio_wr32(struct kvmk_ioapic *io, uint64_t off, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	kvmk_ioapic_mmio_write(io, off, b, 4);
}

static bool input_asserted(struct fz *f, unsigned int pin, uint64_t e)
{
	struct kvmk_ioapic_state st;
	bool level;

	kvmk_ioapic_save(f->io, &st);
	level = st.irr >> pin & 1;
	if (!f->polarity_ignored && (e & KVMK_IOAPIC_POLARITY))
		level = !level;
	return level;
}

static void run_op(struct fz *f, const uint8_t *r);

static int fz_deliver(void *opaque, const struct kvmk_ioapic_msi *m)
{
	struct fz *f = opaque;
	struct kvmk_ioapic_msi want;
	uint64_t e;
	uint32_t dm;

	CHECK(m->pin < KVMK_IOAPIC_PINS);
	/* Well-formed whatever happened: address bits 19:12 and 2 only; data
	 * vector, a defined mode, and bits 14/15 together. */
	CHECK((m->address & ~0xff004ull) == 0xfee00000ull);
	CHECK((m->data & ~0xc7ffu) == 0);
	dm = m->data >> 8 & 7;
	CHECK(dm != 3 && dm != 6);
	CHECK(((m->data >> 14) & 3) == 0 || ((m->data >> 14) & 3) == 3);
	f->delivered++;

	CHECK(kvmk_ioapic_read_entry(f->io, m->pin, &e) == 0);
	CHECK(e & KVMK_IOAPIC_DELIVS); /* in flight */
	/* A level message's EOI must already reach the model. */
	if ((m->data & 0xc000) && (e & KVMK_IOAPIC_REMOTE_IRR) && !f->relaxed)
		CHECK(f->route_valid[m->pin] && f->route[m->pin].address == m->address &&
		      f->route[m->pin].data == m->data);
	if (!f->relaxed) {
		CHECK(!(e & KVMK_IOAPIC_MASKED));
		kvmk_ioapic_entry_to_msi(e, &want);
		CHECK(want.address == m->address && want.data == m->data);
		if (e & KVMK_IOAPIC_TRIGGER) {
			CHECK(e & KVMK_IOAPIC_REMOTE_IRR);
			CHECK(input_asserted(f, m->pin, e));
		} else {
			CHECK(f->edge_pin == (int)m->pin && f->edge_ok);
		}
	}

	/* Sometimes re-enter the model, as a device or a test LAPIC might. */
	if (f->depth < 3 && f->nest_len >= 8 && (f->nest[0] & 3) == 0) {
		const uint8_t *op = f->nest;

		f->nest += 8;
		f->nest_len -= 8;
		f->depth++;
		f->relaxed = true;
		run_op(f, op);
		f->depth--;
	}
	f->last_ret = f->ret;
	return f->ret;
}

static void fz_resample(void *opaque, unsigned int pin)
{
	struct fz *f = opaque;

	CHECK(pin < KVMK_IOAPIC_PINS);
	f->resamples++;
	/* Half the time the device drives its line low, as with irqfd
	 * resample (which asserts an active-low pin). */
	if (f->resamples & 1) {
		int st;

		f->relaxed = true;
		st = kvmk_ioapic_set_level(f->io, pin, false);
		CHECK(st >= 0 || st == KVMK_IRQ_MASKED || st == -5);
	}
}

static void fz_route(void *opaque, unsigned int pin, const struct kvmk_ioapic_msi *m, bool masked)
{
	struct fz *f = opaque;

	CHECK(pin < KVMK_IOAPIC_PINS && m->pin == pin);
	CHECK((m->address & ~0xff004ull) == 0xfee00000ull);
	/* Only changes are reported. */
	CHECK(masked ? f->route_valid[pin] :
		       !f->route_valid[pin] || f->route[pin].address != m->address ||
			       f->route[pin].data != m->data);
	f->route[pin] = *m;
	f->route_valid[pin] = !masked;
}

static void check_route(struct fz *f, unsigned int p, uint64_t e)
{
	struct kvmk_ioapic_msi want;

	if (e & KVMK_IOAPIC_REMOTE_IRR) {
		CHECK(f->route_valid[p] && (f->route[p].data & 0xc000) == 0xc000);
		return;
	}
	CHECK(f->route_valid[p] == !(e & KVMK_IOAPIC_MASKED));
	if (!f->route_valid[p])
		return;
	kvmk_ioapic_entry_to_msi(e, &want);
	CHECK(f->route[p].address == want.address && f->route[p].data == want.data);
}

static void check_state(struct fz *f)
{
	struct kvmk_ioapic_state st;
	uint32_t id;

	kvmk_ioapic_save(f->io, &st);
	CHECK((st.id & ~0x0f000000u) == 0 && st.ioregsel <= 0xff && st.irr < 1u << 24);
	for (unsigned int p = 0; p < KVMK_IOAPIC_PINS; p++) {
		uint64_t e;

		CHECK(kvmk_ioapic_read_entry(f->io, p, &e) == 0);
		if (f->depth == 0)
			CHECK(!(e & KVMK_IOAPIC_DELIVS));
		e &= ~KVMK_IOAPIC_DELIVS;
		CHECK(e == st.redir[p]);
		CHECK((e & ~(KVMK_IOAPIC_WRITABLE | KVMK_IOAPIC_REMOTE_IRR)) == 0);
		if (e & KVMK_IOAPIC_REMOTE_IRR)
			CHECK(e & KVMK_IOAPIC_TRIGGER);
		if (f->depth == 0)
			check_route(f, p, e);
	}
	if (f->depth)
		return;
	/* Through the register window (changes IOREGSEL: restored after). */
	id = st.id;
	mmio_wr32(f->io, KVMK_IOAPIC_REGSEL, KVMK_IOAPIC_REG_VER);
	CHECK(mmio_rd32(f->io, KVMK_IOAPIC_WIN) == KVMK_IOAPIC_VERSION);
	mmio_wr32(f->io, KVMK_IOAPIC_REGSEL, KVMK_IOAPIC_REG_ARB);
	CHECK(mmio_rd32(f->io, KVMK_IOAPIC_WIN) == id);
	mmio_wr32(f->io, KVMK_IOAPIC_REGSEL, KVMK_IOAPIC_REG_ID);
	CHECK(mmio_rd32(f->io, KVMK_IOAPIC_WIN) == id);
	for (unsigned int p = 0; p < KVMK_IOAPIC_PINS; p++) {
		mmio_wr32(f->io, KVMK_IOAPIC_REGSEL, 0x10 + 2 * p);
		CHECK(mmio_rd32(f->io, KVMK_IOAPIC_WIN) == (uint32_t)st.redir[p]);
		mmio_wr32(f->io, KVMK_IOAPIC_REGSEL, 0x11 + 2 * p);
		CHECK(mmio_rd32(f->io, KVMK_IOAPIC_WIN) == (uint32_t)(st.redir[p] >> 32));
	}
	mmio_wr32(f->io, KVMK_IOAPIC_REGSEL, st.ioregsel);
	CHECK(mmio_rd32(f->io, KVMK_IOAPIC_REGSEL) == st.ioregsel);
}

static bool status_ok(struct fz *f, int st, unsigned int before)
{
	if (f->delivered != before)
		return f->relaxed || st == f->last_ret;
	return st == 0 || st == KVMK_IRQ_MASKED;
}

/* One 8-byte record: op, a, b, c, then a 32-bit value. */
static void run_op(struct fz *f, const uint8_t *r)
{
	uint8_t op = r[1], a = r[2], b = r[3], c = r[4];
	uint32_t v;
	uint64_t off;
	unsigned int sz;

	memcpy(&v, r + 4, 4);
	switch (a & 3) {
	case 0:
		off = KVMK_IOAPIC_REGSEL;
		break;
	case 1:
		off = KVMK_IOAPIC_WIN;
		break;
	case 2:
		off = b;
		break;
	default:
		off = (uint64_t)v << 8 | b;
		break;
	}
	sz = sizes[a >> 2 & 7];

	switch (op % 12) {
	case 0:
	case 1: { /* guest write */
		bool defined = sz == 4 && (off == 0 || off == 0x10);
		struct kvmk_ioapic_state pre, post;
		uint8_t buf[8];

		kvmk_ioapic_save(f->io, &pre);
		if (defined && off == 0x10 && (a & 0x80)) /* aim at the table */
			mmio_wr32(f->io, 0, pre.ioregsel = 0x10 + c % 48);
		memcpy(buf, r + 4, 4);
		memcpy(buf + 4, r, 4);
		kvmk_ioapic_mmio_write(f->io, off, buf, sz);
		kvmk_ioapic_save(f->io, &post);
		if (!defined) {
			if (f->depth == 0 && f->delivered == 0)
				CHECK(memcmp(&pre, &post, sizeof(pre)) == 0);
			break;
		}
		if (f->relaxed || f->depth)
			break;
		if (off == 0) {
			CHECK(post.ioregsel == (v & 0xff));
		} else if (pre.ioregsel >= 0x10 && pre.ioregsel < 0x40) {
			unsigned int p = (pre.ioregsel - 0x10) / 2;
			uint64_t o = pre.redir[p], n = post.redir[p];

			if (pre.ioregsel & 1) {
				CHECK(n >> 32 == (v & 0xff000000u));
				/* Only remote IRR may change: set by a delivery the
				 * write caused (level, asserted, unmasked). */
				CHECK(((uint32_t)n ^ (uint32_t)o) == 0 ||
				      (((uint32_t)n ^ (uint32_t)o) == KVMK_IOAPIC_REMOTE_IRR &&
				       (n & KVMK_IOAPIC_REMOTE_IRR) && f->delivered));
			} else {
				CHECK((n & 0x1afffull) == (v & 0x1afffull));
				CHECK(n >> 32 == o >> 32);
				if (!(n & KVMK_IOAPIC_TRIGGER))
					CHECK(!(n & KVMK_IOAPIC_REMOTE_IRR));
				else if (o & KVMK_IOAPIC_REMOTE_IRR)
					CHECK(n & KVMK_IOAPIC_REMOTE_IRR);
				/* A delivery from a write only for a level entry. */
				if (f->delivered)
					CHECK((n & KVMK_IOAPIC_TRIGGER) &&
					      !(n & KVMK_IOAPIC_MASKED));
			}
		} else if (pre.ioregsel == 0) {
			CHECK(post.id == (v & 0x0f000000u));
		} else {
			CHECK(memcmp(&pre, &post, sizeof(pre)) == 0);
		}
		break;
	}
	case 2: { /* guest read */
		uint8_t buf[16];
		bool defined = sz == 4 && (off == 0 || off == 0x10);

		memset(buf, 0x5a, sizeof(buf));
		kvmk_ioapic_mmio_read(f->io, off, buf + 4, sz);
		for (unsigned int k = 0; k < sizeof(buf); k++)
			if (k < 4 || k >= 4 + sz)
				CHECK(buf[k] == 0x5a);
			else if (!defined)
				CHECK(buf[k] == 0xff);
		break;
	}
	case 3:
	case 4:
	case 5: { /* pin */
		unsigned int pin = c % 26, before = f->delivered;
		int saved_pin = f->edge_pin;
		bool saved_ok = f->edge_ok;
		uint64_t e = 0;
		int st;

		if (pin < KVMK_IOAPIC_PINS) {
			kvmk_ioapic_read_entry(f->io, pin, &e);
			f->edge_pin = (int)pin;
			f->edge_ok = !input_asserted(f, pin, e);
		}
		st = kvmk_ioapic_set_level(f->io, pin, b & 1);
		if (pin >= KVMK_IOAPIC_PINS) {
			CHECK(st == -EINVAL);
		} else {
			CHECK(status_ok(f, st, before));
			if (e & KVMK_IOAPIC_MASKED && !f->relaxed)
				CHECK(f->delivered == before && st != 1);
		}
		f->edge_pin = saved_pin;
		f->edge_ok = saved_ok;
		break;
	}
	case 6: { /* EOI */
		uint32_t vec = (uint32_t)b | (c & 1u) << 8;
		int n = kvmk_ioapic_eoi(f->io, vec);

		CHECK(vec > 0xff ? n == -EINVAL : (n >= 0 && n <= KVMK_IOAPIC_PINS));
		break;
	}
	case 7:
		kvmk_ioapic_reset(f->io);
		if (!f->relaxed && f->depth == 0)
			for (unsigned int p = 0; p < KVMK_IOAPIC_PINS; p++) {
				uint64_t e;

				kvmk_ioapic_read_entry(f->io, p, &e);
				CHECK(e == KVMK_IOAPIC_MASKED);
			}
		break;
	case 8: { /* snapshot round trip, then a corrupted restore */
		struct kvmk_ioapic_state s, t, bad;
		unsigned int w = c % (sizeof(bad) / 4);
		uint32_t word;

		kvmk_ioapic_save(f->io, &s);
		CHECK(kvmk_ioapic_restore(f->io, &s) == 0);
		kvmk_ioapic_save(f->io, &t);
		CHECK(memcmp(&s, &t, sizeof(s)) == 0);
		bad = s;
		memcpy(&word, (uint8_t *)&bad + 4 * w, 4);
		word ^= v;
		memcpy((uint8_t *)&bad + 4 * w, &word, 4);
		if (kvmk_ioapic_restore(f->io, &bad) == 0) {
			kvmk_ioapic_save(f->io, &t);
			CHECK(memcmp(&bad, &t, sizeof(bad)) == 0);
		} else {
			kvmk_ioapic_save(f->io, &t);
			CHECK(memcmp(&s, &t, sizeof(s)) == 0);
		}
		break;
	}
	case 9:
		CHECK(kvmk_ioapic_service(f->io) >= 0);
		break;
	case 10: {
		static const int rets[4] = { 1, 0, -5, 2 };

		f->ret = rets[b & 3];
		break;
	}
	default:
		CHECK(kvmk_ioapic_set_resample(f->io, c % 26, (b & 1) ? fz_resample : NULL, f) ==
		      (c % 26 < KVMK_IOAPIC_PINS ? 0 : -EINVAL));
		break;
	}
	if (f->depth == 0)
		check_state(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmk_ioapic_config cfg = { 0 };
	struct fz f = { 0 };
	size_t i = 1;

	if (size < 1)
		return 0;
	f.polarity_ignored = data[0] & 1;
	f.ret = 1;
	f.edge_pin = -1;
	cfg.deliver = fz_deliver;
	cfg.route_changed = fz_route;
	cfg.opaque = &f;
	cfg.polarity_ignored = f.polarity_ignored;
	if (kvmk_ioapic_create(&cfg, &f.io))
		return 0;
	check_state(&f);
	/* Records are 8 bytes; the nested ops a callback runs come from the
	 * records after the current one, which are then skipped. */
	while (i + 8 <= size) {
		f.relaxed = false;
		f.delivered = 0;
		f.nest = data + i + 8;
		f.nest_len = size - i - 8;
		run_op(&f, data + i);
		i = (size_t)(f.nest - data);
	}
	kvmk_ioapic_destroy(f.io);
	return 0;
}
