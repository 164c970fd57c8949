// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the x86 vCPU state parser kvmk_vs_parse(), the part of
 * kvmkit_vcpu_restore() that reads a blob (a file), against a host profile
 * the input chooses (vCPU id, SREGS2, XSAVE size, XCRs, LAPIC, event flags,
 * the MSRs KVM lists). No KVM. Input byte 0 picks the host; byte 1 bit 0
 * the mode: raw (the rest is the blob) or built (the rest fills a valid
 * state whose blob is then edited at offsets the input gives, so that the
 * fuzzer works near valid blobs, too big to find from nothing). Traps if:
 *  - a valid blob is refused;
 *  - an accepted blob does not write back byte for byte (the parser keeps
 *    exactly what it reads), or holds what this host does not take (another
 *    vCPU id, XSAVE size or section set, an MSR not listed or twice,
 *    reserved bits, flags or values KVM would refuse halfway);
 *  - a refusal is not KVMKIT_ERR_FORMAT (or an allocation failure).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "arch/x86/vcpu_state.h"

/* Ascending, as the host profile requires. */
static const uint32_t all_msrs[] = {
	0x10,	    0x11,	0x12,	    0x3b,	0x174,	    0x175,	0x176,
	0x1a0,	    0x277,	0x6e0,	    0x4b564d00, 0x4b564d01, 0x4b564d02, 0x4b564d03,
	0x4b564d04, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102, 0xc0000103,
};

#define BASE_EVENTS \
	(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM)

static void host_from(uint8_t b, struct kvmk_vs_host *h)
{
	static const uint32_t xsave[] = { 0, 4096, 4096, 8192 };

	*h = (struct kvmk_vs_host){
		.vcpu_id = b & 1,
		.sregs2 = b & 2,
		.xsave_size = xsave[(b >> 2) & 3],
		.xcrs = b & 0x10,
		.lapic = b & 0x20,
		.event_flags = BASE_EVENTS | ((b & 0x40) ? KVM_VCPUEVENT_VALID_PAYLOAD : 0) |
			       ((b & 0x80) ? KVM_VCPUEVENT_VALID_TRIPLE_FAULT : 0),
		.msrs = all_msrs,
		/* Some hosts list fewer: the last ones go. */
		.nmsrs = KVMKIT_ARRAY_SIZE(all_msrs) - ((b & 0x40) ? 3 : 0),
	};
}

/* Copies input bytes into @p, over and over; zeros without input. */
static void fill(void *p, size_t n, const uint8_t *src, size_t len, size_t *pos)
{
	uint8_t *d = p;

	for (size_t i = 0; i < n; i++)
		d[i] = len ? src[(*pos)++ % len] : 0;
}

/* A state the parser must take: input bytes with what it checks made
 * valid for @h. */
static struct kvmk_vs_state *build(const struct kvmk_vs_host *h, const uint8_t *src, size_t len)
{
	struct kvmk_vs_state *s = calloc(1, sizeof(*s));
	struct kvm_vcpu_events *ev;
	uint8_t *bools[13];
	size_t pos = 0, n = 0;
	uint64_t pick = 0;

	CHECK(s);
	s->vcpu_id = h->vcpu_id;
	s->has_sregs2 = h->sregs2 && len && (src[0] & 1);
	s->has_xsave = h->xsave_size > 0;
	s->xsave_size = h->xsave_size;
	s->has_xcrs = h->xcrs;
	s->has_lapic = h->lapic;
	fill(&s->mp, sizeof(s->mp), src, len, &pos);
	s->mp.mp_state = h->lapic ? s->mp.mp_state % 5 : KVM_MP_STATE_RUNNABLE;
	fill(&s->regs, sizeof(s->regs), src, len, &pos);
	fill(&s->sregs, sizeof(s->sregs), src, len, &pos);
	fill(&s->sregs2, sizeof(s->sregs2), src, len, &pos);
	s->sregs2.flags &= KVM_SREGS2_FLAGS_PDPTRS_VALID;
	if (s->has_xsave) {
		s->xsave = calloc(1, s->xsave_size);
		CHECK(s->xsave);
		fill(s->xsave, s->xsave_size, src, len, &pos);
	}
	fill(&s->fpu, sizeof(s->fpu), src, len, &pos);
	fill(&s->xcrs, sizeof(s->xcrs), src, len, &pos);
	s->xcrs.nr_xcrs %= KVM_MAX_XCRS + 1;
	s->xcrs.flags = 0;
	fill(&s->lapic, sizeof(s->lapic), src, len, &pos);
	fill(&s->debugregs, sizeof(s->debugregs), src, len, &pos);
	s->debugregs.flags = 0;
	s->debugregs.dr6 &= 0xffffffffu;
	s->debugregs.dr7 &= 0xffffffffu;
	memset(s->debugregs.reserved, 0, sizeof(s->debugregs.reserved));
	ev = &s->events;
	fill(ev, sizeof(*ev), src, len, &pos);
	ev->flags &= h->event_flags | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	bools[0] = &ev->exception.injected;
	bools[1] = &ev->exception.has_error_code;
	bools[2] = &ev->exception.pending;
	bools[3] = &ev->interrupt.injected;
	bools[4] = &ev->interrupt.soft;
	bools[5] = &ev->nmi.injected;
	bools[6] = &ev->nmi.pending;
	bools[7] = &ev->nmi.masked;
	bools[8] = &ev->smi.smm;
	bools[9] = &ev->smi.pending;
	bools[10] = &ev->smi.smm_inside_nmi;
	bools[11] = &ev->smi.latched_init;
	bools[12] = &ev->triple_fault.pending;
	for (size_t i = 0; i < KVMKIT_ARRAY_SIZE(bools); i++)
		*bools[i] &= 1;
	ev->exception.nr %= 32;
	if (ev->exception.nr == 2)
		ev->exception.nr = 0;
	ev->exception_has_payload &= !!(ev->flags & KVM_VCPUEVENT_VALID_PAYLOAD);
	ev->nmi.pad = 0;
	memset(ev->reserved, 0, sizeof(ev->reserved));
	/* Some of the listed MSRs, each once. */
	fill(&pick, sizeof(pick), src, len, &pos);
	s->msrs = calloc(1, sizeof(*s->msrs) + h->nmsrs * sizeof(s->msrs->entries[0]));
	CHECK(s->msrs);
	for (size_t i = 0; i < h->nmsrs; i++)
		if (pick >> i & 1) {
			s->msrs->entries[n].index = h->msrs[i];
			fill(&s->msrs->entries[n].data, 8, src, len, &pos);
			n++;
		}
	s->msrs->nmsrs = (uint32_t)n;
	return s;
}

/* What kvmk_vs_parse() promises of a state it accepted. */
static void check_state(const struct kvmk_vs_host *h, const struct kvmk_vs_state *s)
{
	uint32_t takes = h->event_flags | KVM_VCPUEVENT_VALID_SIPI_VECTOR;

	CHECK(s->vcpu_id == h->vcpu_id);
	CHECK(s->has_xsave == (h->xsave_size > 0));
	CHECK(!s->has_xsave || (s->xsave && s->xsave_size == h->xsave_size));
	CHECK(s->has_xcrs == h->xcrs && s->has_lapic == h->lapic);
	CHECK(!s->has_sregs2 || h->sregs2);
	CHECK(s->mp.mp_state <= KVM_MP_STATE_SIPI_RECEIVED);
	CHECK(h->lapic || s->mp.mp_state == KVM_MP_STATE_RUNNABLE);
	CHECK(!s->has_xcrs || (s->xcrs.nr_xcrs <= KVM_MAX_XCRS && !s->xcrs.flags));
	CHECK(!s->debugregs.flags && !(s->debugregs.dr6 >> 32) && !(s->debugregs.dr7 >> 32));
	CHECK(!(s->events.flags & ~takes));
	CHECK(!(s->events.exception.injected || s->events.exception.pending) ||
	      (s->events.exception.nr < 32 && s->events.exception.nr != 2));
	CHECK(s->msrs && s->msrs->nmsrs <= KVMK_VS_MAX_MSRS);
	for (uint32_t i = 0; i < s->msrs->nmsrs; i++) {
		bool listed = false;

		CHECK(!s->msrs->entries[i].reserved);
		for (size_t j = 0; j < h->nmsrs; j++)
			listed |= h->msrs[j] == s->msrs->entries[i].index;
		CHECK(listed);
		for (uint32_t j = 0; j < i; j++)
			CHECK(s->msrs->entries[j].index != s->msrs->entries[i].index);
	}
}

/* Parses @blob; if taken, it must be a state this host takes that writes
 * back to exactly @blob. */
static void parse_one(const struct kvmk_vs_host *h, const uint8_t *blob, size_t len, bool valid)
{
	struct kvmk_vs_state *s = NULL;
	struct kvmk_blob out = { 0 };
	int r = kvmk_vs_parse(blob, len, h, "fuzz", &s);

	if (r) {
		if (valid && getenv("FUZZ_DEBUG"))
			fprintf(stderr, "refused: %s\n", kvmkit_strerror());
		CHECK(!valid);
		CHECK(!s);
		CHECK(kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT ||
		      kvmkit_last_error()->kind == KVMKIT_ERR_RESOURCE);
		return;
	}
	check_state(h, s);
	CHECK(kvmk_vs_write(s, &out) == 0);
	CHECK(out.len == len && !memcmp(out.data, blob, len));
	kvmk_blob_free(&out);
	kvmk_vs_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmk_vs_host h;
	struct kvmk_vs_state *s;
	struct kvmk_blob b = { 0 };
	size_t edits, body;

	if (size < 2)
		return 0;
	host_from(data[0], &h);
	if (!(data[1] & 1)) {
		parse_one(&h, data + 2, size - 2, false);
		return 0;
	}
	/* Built: the last (data[1] >> 1) % 8 triples are edits (u16 offset,
	 * xor byte; offset 0xffff truncates by the xor byte); the bytes
	 * before them fill the state. */
	edits = (size_t)(data[1] >> 1) % 8;
	if (size - 2 < edits * 3)
		edits = (size - 2) / 3;
	body = size - 2 - edits * 3;
	s = build(&h, data + 2, body);
	CHECK(kvmk_vs_write(s, &b) == 0);
	kvmk_vs_free(s);
	parse_one(&h, b.data, b.len, true);
	if (edits) {
		const uint8_t *e = data + 2 + body;
		size_t len = b.len;

		for (size_t i = 0; i < edits; i++, e += 3) {
			size_t off = (size_t)e[0] | (size_t)e[1] << 8;

			if (off == 0xffff)
				len = len > e[2] ? len - e[2] : 0;
			else if (off < len)
				b.data[off] ^= e[2] ? e[2] : 1;
		}
		parse_one(&h, b.data, len, false);
	}
	kvmk_blob_free(&b);
	return 0;
}
