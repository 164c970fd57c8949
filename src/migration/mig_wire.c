// SPDX-License-Identifier: MIT
/*
 * The live-migration stream without sockets or KVM (mig_wire.h,
 * docs/MIGRATION.md). The target reads bytes from a peer it does not
 * trust: every length is checked against its record type before anything
 * is read or allocated, every page address against the RAM, every record's
 * CRC before its contents are acted on (a page record's bytes land in guest
 * memory first, but a bad one fails the stream and the machine with it),
 * and the records must come in the order the protocol has.
 */
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "migrate"
#include "migration/mig_wire.h"

#define OP "kvmkit_machine_incoming"

size_t kvmk_mig_hello_build(const struct kvmk_mig_hello *h, uint8_t *out)
{
	uint32_t n = h->nr_regions < KVMK_MIG_MAX_REGIONS ? h->nr_regions : KVMK_MIG_MAX_REGIONS;
	size_t len = KVMK_MIG_HELLO_FIXED + (size_t)n * 16 + 4;

	memcpy(out, KVMK_MIG_MAGIC, 8);
	kvmk_mig_put32(out + 8, h->version);
	kvmk_mig_put32(out + 12, (uint32_t)len);
	kvmk_mig_put32(out + 16, h->arch);
	kvmk_mig_put32(out + 20, h->vcpus);
	kvmk_mig_put32(out + 24, h->irqchip);
	kvmk_mig_put32(out + 28, h->machine_flags);
	kvmk_mig_put64(out + 32, h->mem_size);
	kvmk_mig_put32(out + 40, h->page_size);
	kvmk_mig_put32(out + 44, n);
	for (uint32_t i = 0; i < n; i++) {
		kvmk_mig_put64(out + KVMK_MIG_HELLO_FIXED + i * 16, h->regions[i].gpa);
		kvmk_mig_put64(out + KVMK_MIG_HELLO_FIXED + i * 16 + 8, h->regions[i].size);
	}
	kvmk_mig_put32(out + len - 4, kvmk_mig_crc(0, out, len - 4));
	return len;
}

static int in_read(struct kvmk_mig_in *in, void *buf, size_t len)
{
	int r = len ? in->read(in->ctx, buf, len) : 0;

	if (!r)
		in->bytes += len;
	return r;
}

/* Page-aligned, non-empty, not wrapping. */
static bool range_ok(uint64_t gpa, uint64_t size)
{
	return !(gpa % KVMK_MIG_PAGE) && size && !(size % KVMK_MIG_PAGE) && gpa + size > gpa;
}

static int hello_fields(const uint8_t *b, uint32_t len, struct kvmk_mig_hello *h)
{
	h->version = kvmk_mig_get32(b + 8);
	h->arch = kvmk_mig_get32(b + 16);
	h->vcpus = kvmk_mig_get32(b + 20);
	h->irqchip = kvmk_mig_get32(b + 24);
	h->machine_flags = kvmk_mig_get32(b + 28);
	h->mem_size = kvmk_mig_get64(b + 32);
	h->page_size = kvmk_mig_get32(b + 40);
	h->nr_regions = kvmk_mig_get32(b + 44);
	if (h->nr_regions > KVMK_MIG_MAX_REGIONS ||
	    len != KVMK_MIG_HELLO_FIXED + h->nr_regions * 16 + 4)
		return kvmk_err_format(OP, "stream header: %u memory regions in %u bytes",
				       h->nr_regions, len);
	if (h->page_size != KVMK_MIG_PAGE)
		return kvmk_err_format(OP, "stream header: page size %u, this kvmkit uses %u",
				       h->page_size, KVMK_MIG_PAGE);
	if (!h->vcpus || h->vcpus > 4096 || h->irqchip > 2 || !range_ok(0, h->mem_size))
		return kvmk_err_format(OP, "stream header: %u vCPUs, irqchip %u, %llu bytes of RAM",
				       h->vcpus, h->irqchip, (unsigned long long)h->mem_size);
	for (uint32_t i = 0; i < h->nr_regions; i++) {
		struct kvmk_mig_region *e = &h->regions[i];

		e->gpa = kvmk_mig_get64(b + KVMK_MIG_HELLO_FIXED + i * 16);
		e->size = kvmk_mig_get64(b + KVMK_MIG_HELLO_FIXED + i * 16 + 8);
		if (!range_ok(e->gpa, e->size) ||
		    (i && e->gpa < h->regions[i - 1].gpa + h->regions[i - 1].size))
			return kvmk_err_format(OP,
					       "stream header: memory region %u (gpa 0x%llx, "
					       "0x%llx bytes) unaligned, empty or out of order",
					       i, (unsigned long long)e->gpa,
					       (unsigned long long)e->size);
	}
	return 0;
}

int kvmk_mig_hello_read(struct kvmk_mig_in *in, struct kvmk_mig_hello *h)
{
	uint8_t b[KVMK_MIG_HELLO_MAX];
	uint32_t version, len;
	int r;

	memset(h, 0, sizeof(*h));
	r = in_read(in, b, 16);
	if (r)
		return r;
	if (memcmp(b, KVMK_MIG_MAGIC, 8))
		return kvmk_err_format(OP, "not a kvmkit migration stream (bad magic)");
	version = kvmk_mig_get32(b + 8);
	if (version != KVMK_MIG_VERSION)
		return kvmk_err_format(OP, "migration stream version %u, this kvmkit reads %u",
				       version, KVMK_MIG_VERSION);
	len = kvmk_mig_get32(b + 12);
	if (len < KVMK_MIG_HELLO_FIXED + 4 || len > KVMK_MIG_HELLO_MAX)
		return kvmk_err_format(OP, "stream header of %u bytes (%u..%u)", len,
				       KVMK_MIG_HELLO_FIXED + 4, KVMK_MIG_HELLO_MAX);
	r = in_read(in, b + 16, len - 16);
	if (r)
		return r;
	if (kvmk_mig_crc(0, b, len - 4) != kvmk_mig_get32(b + len - 4))
		return kvmk_err_format(OP, "stream header: CRC-32C mismatch (corrupted)");
	return hello_fields(b, len, h);
}

/* ---- records ------------------------------------------------------------ */

enum phase { LIVE, PAUSED, STATE };

struct rec {
	uint32_t type, len, crc;
};

static int rec_head(struct kvmk_mig_in *in, struct rec *rc)
{
	uint8_t h[KVMK_MIG_REC_HDR];
	int r = in_read(in, h, sizeof(h));

	if (r)
		return r;
	rc->type = kvmk_mig_get32(h);
	rc->len = kvmk_mig_get32(h + 4);
	rc->crc = kvmk_mig_crc(0, h, sizeof(h));
	return 0;
}

/* Reads the CRC that ends a record and compares it with @rc->crc. */
static int rec_tail(struct kvmk_mig_in *in, const struct rec *rc)
{
	uint8_t c[4];
	int r = in_read(in, c, 4);

	if (r)
		return r;
	if (kvmk_mig_get32(c) != rc->crc)
		return kvmk_err_format(OP,
				       "record type %u (%u bytes) at stream byte %llu: "
				       "CRC-32C mismatch (corrupted)",
				       rc->type, rc->len, (unsigned long long)in->bytes);
	return 0;
}

/* A payload of exactly @want bytes (small, fixed) into @buf, CRC checked. */
static int rec_small(struct kvmk_mig_in *in, struct rec *rc, uint8_t *buf, uint32_t want)
{
	int r;

	if (rc->len != want)
		return kvmk_err_format(OP, "record type %u of %u bytes (must be %u)", rc->type,
				       rc->len, want);
	r = in_read(in, buf, want);
	if (r)
		return r;
	rc->crc = kvmk_mig_crc(rc->crc, buf, want);
	return rec_tail(in, rc);
}

static int rx_pages(struct kvmk_mig_in *in, struct rec *rc, const struct kvmk_mig_sink *sink,
		    uint64_t max_gpa, struct kvmk_mig_rx *rx)
{
	uint8_t h[KVMK_MIG_PAGES_HDR];
	uint64_t gpa, len;
	uint32_t n;
	void *dst;
	int r;

	if (rc->len < KVMK_MIG_PAGES_HDR + KVMK_MIG_PAGE)
		return kvmk_err_format(OP, "page record of %u bytes", rc->len);
	r = in_read(in, h, sizeof(h));
	if (r)
		return r;
	gpa = kvmk_mig_get64(h);
	n = kvmk_mig_get32(h + 8);
	len = (uint64_t)n * KVMK_MIG_PAGE;
	if (!n || n > KVMK_MIG_BATCH || rc->len != KVMK_MIG_PAGES_HDR + len)
		return kvmk_err_format(OP, "page record: %u pages in %u bytes (1..%u pages)", n,
				       rc->len, KVMK_MIG_BATCH);
	if (!range_ok(gpa, len) || gpa + len > max_gpa)
		return kvmk_err_format(OP, "page record: gpa 0x%llx, %u pages: outside RAM",
				       (unsigned long long)gpa, n);
	dst = sink->pages(sink->ctx, gpa, n);
	if (!dst)
		return kvmkit_last_error()->err ? -kvmkit_last_error()->err : -EFAULT;
	r = in_read(in, dst, len);
	if (r)
		return r;
	rc->crc = kvmk_mig_crc(kvmk_mig_crc(rc->crc, h, sizeof(h)), dst, len);
	r = rec_tail(in, rc);
	if (!r)
		rx->pages += n;
	return r;
}

static int rx_zero(struct kvmk_mig_in *in, struct rec *rc, const struct kvmk_mig_sink *sink,
		   uint64_t max_gpa, struct kvmk_mig_rx *rx)
{
	uint8_t b[16];
	uint64_t gpa, n;
	int r = rec_small(in, rc, b, sizeof(b));

	if (r)
		return r;
	gpa = kvmk_mig_get64(b);
	n = kvmk_mig_get64(b + 8);
	if (!n || n > max_gpa / KVMK_MIG_PAGE || !range_ok(gpa, n * KVMK_MIG_PAGE) ||
	    gpa + n * KVMK_MIG_PAGE > max_gpa)
		return kvmk_err_format(OP, "zero record: gpa 0x%llx, %llu pages: outside RAM",
				       (unsigned long long)gpa, (unsigned long long)n);
	r = sink->zero(sink->ctx, gpa, n);
	if (!r)
		rx->zero_pages += n;
	return r;
}

static int rx_state(struct kvmk_mig_in *in, struct rec *rc, const struct kvmk_mig_sink *sink)
{
	uint8_t *buf;
	int r;

	if (!rc->len || rc->len > KVMK_MIG_MAX_STATE)
		return kvmk_err_format(OP, "state record of %u bytes (1..%u)", rc->len,
				       KVMK_MIG_MAX_STATE);
	buf = malloc(rc->len);
	if (!buf)
		return kvmk_err_resource(OP, ENOMEM, "state record of %u bytes", rc->len);
	r = in_read(in, buf, rc->len);
	if (!r) {
		rc->crc = kvmk_mig_crc(rc->crc, buf, rc->len);
		r = rec_tail(in, rc);
	}
	if (!r)
		r = sink->state(sink->ctx, buf, rc->len);
	free(buf);
	return r;
}

static const char *const phase_names[] = { "before the pause", "after the pause",
					   "after the state" };

static int out_of_order(const struct rec *rc, enum phase ph)
{
	return kvmk_err_format(OP, "record type %u %s: out of order", rc->type, phase_names[ph]);
}

int kvmk_mig_recv(struct kvmk_mig_in *in, const struct kvmk_mig_sink *sink, uint64_t max_gpa,
		  struct kvmk_mig_rx *rx)
{
	enum phase ph = LIVE;
	uint8_t b[16];
	struct rec rc;
	int r;

	for (;;) {
		r = rec_head(in, &rc);
		if (r)
			return r;
		switch (rc.type) {
		case KVMK_MIG_PAGES:
			r = ph == STATE ? out_of_order(&rc, ph) :
					  rx_pages(in, &rc, sink, max_gpa, rx);
			break;
		case KVMK_MIG_ZERO:
			r = ph == STATE ? out_of_order(&rc, ph) :
					  rx_zero(in, &rc, sink, max_gpa, rx);
			break;
		case KVMK_MIG_PASS_END:
			r = ph == STATE ? out_of_order(&rc, ph) : rec_small(in, &rc, b, 16);
			if (!r)
				rx->passes++;
			break;
		case KVMK_MIG_PAUSED:
			r = ph != LIVE ? out_of_order(&rc, ph) : rec_small(in, &rc, b, 0);
			if (!r)
				r = sink->paused(sink->ctx);
			ph = PAUSED;
			break;
		case KVMK_MIG_STATE:
			r = ph != PAUSED ? out_of_order(&rc, ph) : rx_state(in, &rc, sink);
			ph = STATE;
			break;
		case KVMK_MIG_END:
			r = ph != STATE ? out_of_order(&rc, ph) : rec_small(in, &rc, b, 0);
			return r;
		default:
			r = kvmk_err_format(OP, "unknown record type %u (%u bytes)", rc.type,
					    rc.len);
		}
		if (r)
			return r;
	}
}

int kvmk_mig_reply_read(struct kvmk_mig_in *in, struct kvmk_mig_reply *rep)
{
	uint8_t b[8 + KVMK_MIG_MAX_MSG];
	struct rec rc;
	uint32_t n;
	int r;

	memset(rep, 0, sizeof(*rep));
	r = rec_head(in, &rc);
	if (r)
		return r;
	rep->type = rc.type;
	switch (rc.type) {
	case KVMK_MIG_ACCEPT:
		return rec_small(in, &rc, b, 0);
	case KVMK_MIG_DONE:
		r = rec_small(in, &rc, b, 8);
		if (!r)
			rep->downtime_us = kvmk_mig_get64(b);
		return r;
	case KVMK_MIG_REFUSE:
		if (rc.len < 8 || rc.len > sizeof(b))
			break;
		r = rec_small(in, &rc, b, rc.len);
		if (r)
			return r;
		rep->kind = kvmk_mig_get32(b);
		rep->err = kvmk_mig_get32(b + 4);
		n = rc.len - 8;
		/* One printable line, whatever the peer sent. */
		for (uint32_t i = 0; i < n; i++)
			rep->msg[i] = b[8 + i] >= 0x20 && b[8 + i] < 0x7f ? (char)b[8 + i] : '?';
		rep->msg[n] = '\0';
		return 0;
	}
	return kvmk_err_format("kvmkit_machine_migrate", "reply record type %u (%u bytes)", rc.type,
			       rc.len);
}
