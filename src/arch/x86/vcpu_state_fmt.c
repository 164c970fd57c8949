// SPDX-License-Identifier: MIT
/*
 * The x86 vCPU state blob (layout in vcpu_state.h): writing it, and parsing
 * it back as untrusted input. A blob comes from a file, so the parser checks
 * every count and length, the order of the sections, what the vCPU being
 * restored takes (its id, the XSAVE size, the MSRs KVM lists, the event
 * flags, whether it has XCRs and an in-kernel LAPIC) and the fields KVM
 * would refuse halfway through a restore (reserved flags, DR6/DR7's high
 * halves, exception vectors, MP states), so that a blob it passes can only
 * fail on values KVM itself checks. No KVM calls here.
 */
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "vcpu"
#include "arch/x86/vcpu_state.h"

/* Canonical position of each section; alternatives share one. */
static int section_pos(uint32_t tag)
{
	switch (tag) {
	case KVMK_VS_MP_STATE:
		return 0;
	case KVMK_VS_REGS:
		return 1;
	case KVMK_VS_SREGS:
	case KVMK_VS_SREGS2:
		return 2;
	case KVMK_VS_XSAVE:
	case KVMK_VS_FPU:
		return 3;
	case KVMK_VS_XCRS:
		return 4;
	case KVMK_VS_LAPIC:
		return 5;
	case KVMK_VS_MSRS:
		return 6;
	case KVMK_VS_DEBUGREGS:
		return 7;
	case KVMK_VS_EVENTS:
		return 8;
	case KVMK_VS_TSC_KHZ:
		return 9;
	default:
		return -1;
	}
}

static const char *section_name(uint32_t tag)
{
	static const char *const names[] = {
		[KVMK_VS_MP_STATE] = "mp_state", [KVMK_VS_REGS] = "regs",
		[KVMK_VS_SREGS] = "sregs",	 [KVMK_VS_SREGS2] = "sregs2",
		[KVMK_VS_XSAVE] = "xsave",	 [KVMK_VS_FPU] = "fpu",
		[KVMK_VS_XCRS] = "xcrs",	 [KVMK_VS_LAPIC] = "lapic",
		[KVMK_VS_MSRS] = "msrs",	 [KVMK_VS_DEBUGREGS] = "debugregs",
		[KVMK_VS_EVENTS] = "events",	 [KVMK_VS_TSC_KHZ] = "tsc_khz",
	};

	return tag < KVMKIT_ARRAY_SIZE(names) && names[tag] ? names[tag] : "unknown";
}

void kvmk_vs_free(struct kvmk_vs_state *s)
{
	if (!s)
		return;
	free(s->xsave);
	free(s->msrs);
	free(s);
}

static int put_section(struct kvmk_blob *b, uint32_t tag, const void *p, size_t len)
{
	int r = kvmk_blob_put_u32(b, tag);

	if (!r)
		r = kvmk_blob_put_u32(b, (uint32_t)len);
	if (!r)
		r = kvmk_blob_put(b, p, len);
	return r;
}

int kvmk_vs_write(const struct kvmk_vs_state *s, struct kvmk_blob *b)
{
	uint32_t n = s->msrs ? s->msrs->nmsrs : 0;
	uint32_t count = 7 + s->has_xcrs + s->has_lapic + (s->tsc_khz != 0);
	int r = kvmk_blob_put_u32(b, KVMK_VS_MAGIC);

	if (!r)
		r = kvmk_blob_put_u32(b, KVMK_VS_VERSION);
	if (!r)
		r = kvmk_blob_put_u32(b, KVMK_VS_ARCH_X86_64);
	if (!r)
		r = kvmk_blob_put_u32(b, s->vcpu_id);
	if (!r)
		r = kvmk_blob_put_u32(b, count);
	if (!r)
		r = put_section(b, KVMK_VS_MP_STATE, &s->mp, sizeof(s->mp));
	if (!r)
		r = put_section(b, KVMK_VS_REGS, &s->regs, sizeof(s->regs));
	if (!r && s->has_sregs2)
		r = put_section(b, KVMK_VS_SREGS2, &s->sregs2, sizeof(s->sregs2));
	else if (!r)
		r = put_section(b, KVMK_VS_SREGS, &s->sregs, sizeof(s->sregs));
	if (!r && s->has_xsave)
		r = put_section(b, KVMK_VS_XSAVE, s->xsave, s->xsave_size);
	else if (!r)
		r = put_section(b, KVMK_VS_FPU, &s->fpu, sizeof(s->fpu));
	if (!r && s->has_xcrs)
		r = put_section(b, KVMK_VS_XCRS, &s->xcrs, sizeof(s->xcrs));
	if (!r && s->has_lapic)
		r = put_section(b, KVMK_VS_LAPIC, &s->lapic, sizeof(s->lapic));
	if (!r)
		r = kvmk_blob_put_u32(b, KVMK_VS_MSRS);
	if (!r)
		r = kvmk_blob_put_u32(b, 4 + n * (uint32_t)sizeof(struct kvm_msr_entry));
	if (!r)
		r = kvmk_blob_put_u32(b, n);
	if (!r && n)
		r = kvmk_blob_put(b, s->msrs->entries, n * sizeof(struct kvm_msr_entry));
	if (!r)
		r = put_section(b, KVMK_VS_DEBUGREGS, &s->debugregs, sizeof(s->debugregs));
	if (!r)
		r = put_section(b, KVMK_VS_EVENTS, &s->events, sizeof(s->events));
	if (!r && s->tsc_khz) {
		uint32_t t[2] = { s->tsc_khz, 0 };

		r = put_section(b, KVMK_VS_TSC_KHZ, t, sizeof(t));
	}
	return r;
}

/* ---- parsing ------------------------------------------------------------ */

struct parser {
	const struct kvmk_vs_host *host;
	const char *op;
	struct kvmk_vs_state *s;
};

static bool all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* A fixed-size section: exactly @size bytes. */
static int take(struct parser *ps, uint32_t tag, const uint8_t *p, uint32_t len, void *out,
		size_t size)
{
	if (len != size)
		return kvmk_err_format(ps->op, "section %s: %u bytes, expected %zu",
				       section_name(tag), len, size);
	memcpy(out, p, size);
	return 0;
}

static int parse_msrs(struct parser *ps, const uint8_t *p, uint32_t len)
{
	const struct kvmk_vs_host *h = ps->host;
	struct kvm_msr_entry *e;
	uint32_t n;

	if (len < 4)
		return kvmk_err_format(ps->op, "section msrs: %u bytes, no count", len);
	memcpy(&n, p, 4);
	if (n > KVMK_VS_MAX_MSRS || len - 4 != n * sizeof(*e))
		return kvmk_err_format(ps->op, "section msrs: %u MSRs in %u bytes", n, len);
	ps->s->msrs = calloc(1, sizeof(*ps->s->msrs) + (n ? n : 1) * sizeof(*e));
	if (!ps->s->msrs)
		return kvmk_err_resource(ps->op, ENOMEM, "%u MSRs", n);
	ps->s->msrs->nmsrs = n;
	e = ps->s->msrs->entries;
	memcpy(e, p + 4, n * sizeof(*e));
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].reserved)
			return kvmk_err_format(ps->op, "MSR 0x%x: reserved bits set", e[i].index);
		if (!bsearch(&e[i].index, h->msrs, h->nmsrs, sizeof(*h->msrs), cmp_u32))
			return kvmk_err_format(ps->op, "MSR 0x%x: not one KVM saves on this host",
					       e[i].index);
		for (uint32_t j = 0; j < i; j++)
			if (e[j].index == e[i].index)
				return kvmk_err_format(ps->op, "MSR 0x%x saved twice", e[i].index);
	}
	return 0;
}

/* KVM's own refusals of KVM_SET_VCPU_EVENTS, made here before anything
 * changes. */
static int check_events(struct parser *ps, const struct kvm_vcpu_events *ev)
{
	uint32_t takes = ps->host->event_flags | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	const uint8_t bools[] = { ev->exception.injected,
				  ev->exception.has_error_code,
				  ev->exception.pending,
				  ev->interrupt.injected,
				  ev->interrupt.soft,
				  ev->nmi.injected,
				  ev->nmi.pending,
				  ev->nmi.masked,
				  ev->smi.smm,
				  ev->smi.pending,
				  ev->smi.smm_inside_nmi,
				  ev->smi.latched_init,
				  ev->triple_fault.pending,
				  ev->exception_has_payload };

	if (ev->flags & ~takes)
		return kvmk_err_format(ps->op, "events: flags 0x%x, this VM takes 0x%x", ev->flags,
				       takes);
	for (size_t i = 0; i < sizeof(bools); i++)
		if (bools[i] > 1)
			return kvmk_err_format(ps->op, "events: a flag field holds %u", bools[i]);
	if ((ev->exception.injected || ev->exception.pending) &&
	    (ev->exception.nr > 31 || ev->exception.nr == 2))
		return kvmk_err_format(ps->op, "events: exception vector %u", ev->exception.nr);
	if (ev->exception_has_payload && !(ev->flags & KVM_VCPUEVENT_VALID_PAYLOAD))
		return kvmk_err_format(ps->op, "events: a payload without its valid flag");
	if (!all_zero(ev->reserved, sizeof(ev->reserved)) || ev->nmi.pad)
		return kvmk_err_format(ps->op, "events: reserved bytes set");
	return 0;
}

/* The contents of one section, against the host. */
static int parse_section(struct parser *ps, uint32_t tag, const uint8_t *p, uint32_t len)
{
	const struct kvmk_vs_host *h = ps->host;
	struct kvmk_vs_state *s = ps->s;
	int r;

	switch (tag) {
	case KVMK_VS_MP_STATE:
		r = take(ps, tag, p, len, &s->mp, sizeof(s->mp));
		if (!r && s->mp.mp_state > KVM_MP_STATE_SIPI_RECEIVED)
			r = kvmk_err_format(ps->op, "mp_state %u is not an x86 one",
					    s->mp.mp_state);
		if (!r && !h->lapic && s->mp.mp_state != KVM_MP_STATE_RUNNABLE)
			r = kvmk_err_format(ps->op, "mp_state %u needs an in-kernel LAPIC",
					    s->mp.mp_state);
		return r;
	case KVMK_VS_REGS:
		return take(ps, tag, p, len, &s->regs, sizeof(s->regs));
	case KVMK_VS_SREGS:
		return take(ps, tag, p, len, &s->sregs, sizeof(s->sregs));
	case KVMK_VS_SREGS2:
		if (!h->sregs2)
			return kvmk_err_format(ps->op,
					       "sregs2 saved, this host lacks KVM_CAP_SREGS2");
		s->has_sregs2 = true;
		r = take(ps, tag, p, len, &s->sregs2, sizeof(s->sregs2));
		if (!r && (s->sregs2.flags & ~(uint64_t)KVM_SREGS2_FLAGS_PDPTRS_VALID))
			r = kvmk_err_format(ps->op, "sregs2: flags 0x%llx",
					    (unsigned long long)s->sregs2.flags);
		return r;
	case KVMK_VS_XSAVE:
		if (len != h->xsave_size || len < sizeof(struct kvm_xsave))
			return kvmk_err_format(ps->op, "XSAVE area of %u bytes, this host takes %u",
					       len, h->xsave_size);
		s->xsave = malloc(len);
		if (!s->xsave)
			return kvmk_err_resource(ps->op, ENOMEM, "XSAVE area of %u bytes", len);
		memcpy(s->xsave, p, len);
		s->xsave_size = len;
		s->has_xsave = true;
		return 0;
	case KVMK_VS_FPU:
		if (h->xsave_size)
			return kvmk_err_format(ps->op,
					       "FPU state without XSAVE, this host saves XSAVE");
		return take(ps, tag, p, len, &s->fpu, sizeof(s->fpu));
	case KVMK_VS_XCRS:
		s->has_xcrs = true;
		r = take(ps, tag, p, len, &s->xcrs, sizeof(s->xcrs));
		if (!r && (s->xcrs.nr_xcrs > KVM_MAX_XCRS || s->xcrs.flags))
			r = kvmk_err_format(ps->op, "xcrs: %u XCRs, flags 0x%x", s->xcrs.nr_xcrs,
					    s->xcrs.flags);
		return r;
	case KVMK_VS_LAPIC:
		s->has_lapic = true;
		return take(ps, tag, p, len, &s->lapic, sizeof(s->lapic));
	case KVMK_VS_MSRS:
		return parse_msrs(ps, p, len);
	case KVMK_VS_DEBUGREGS:
		r = take(ps, tag, p, len, &s->debugregs, sizeof(s->debugregs));
		if (!r && (s->debugregs.flags || s->debugregs.dr6 >> 32 || s->debugregs.dr7 >> 32 ||
			   !all_zero(s->debugregs.reserved, sizeof(s->debugregs.reserved))))
			r = kvmk_err_format(ps->op,
					    "debugregs: flags, reserved or DR6/DR7 high bits set");
		return r;
	case KVMK_VS_EVENTS:
		r = take(ps, tag, p, len, &s->events, sizeof(s->events));
		return r ? r : check_events(ps, &s->events);
	case KVMK_VS_TSC_KHZ: {
		uint32_t t[2];

		r = take(ps, tag, p, len, t, sizeof(t));
		if (!r && (!t[0] || t[1]))
			r = kvmk_err_format(ps->op, "tsc_khz: %u kHz, reserved 0x%x", t[0], t[1]);
		if (!r)
			s->tsc_khz = t[0];
		return r;
	}
	}
	return kvmk_err_format(ps->op, "unknown section tag %u", tag);
}

/* The sections this host needs, by canonical position: a blob holds each
 * of them once, in order, and no other; TSC_KHZ (9) may be left out. */
#define POS_OPTIONAL 9
static bool host_needs(const struct kvmk_vs_host *h, int pos)
{
	return pos == 4 ? h->xcrs : pos == 5 ? h->lapic : pos != POS_OPTIONAL;
}

static int parse_all(struct parser *ps, struct kvmk_reader *rd)
{
	const struct kvmk_vs_host *h = ps->host;
	static const char *const pos_names[] = { "mp_state", "regs",   "sregs", "xsave",
						 "xcrs",     "lapic",  "msrs",	"debugregs",
						 "events",   "tsc_khz" };
	uint32_t magic, version, arch, id, count, tag = 0, len;
	int last = -1, r;

	r = kvmk_reader_u32(rd, &magic, "magic");
	if (!r && magic != KVMK_VS_MAGIC)
		return kvmk_err_format(ps->op, "not a vCPU state (magic 0x%08x)", magic);
	if (!r)
		r = kvmk_reader_u32(rd, &version, "version");
	if (!r && version != KVMK_VS_VERSION)
		return kvmk_err_format(ps->op, "vCPU state version %u, this kvmkit reads %u",
				       version, KVMK_VS_VERSION);
	if (!r)
		r = kvmk_reader_u32(rd, &arch, "architecture");
	if (!r && arch != KVMK_VS_ARCH_X86_64)
		return kvmk_err_format(ps->op, "vCPU state of architecture %u, not x86_64", arch);
	if (!r)
		r = kvmk_reader_u32(rd, &id, "vCPU id");
	if (!r && id != h->vcpu_id)
		return kvmk_err_format(ps->op, "state of vCPU %u, this is vCPU %u", id, h->vcpu_id);
	if (!r)
		r = kvmk_reader_u32(rd, &count, "section count");
	if (!r && count > 10)
		return kvmk_err_format(ps->op, "%u sections, at most 10", count);
	ps->s->vcpu_id = id;
	for (uint32_t i = 0; !r && i < count; i++) {
		int pos;

		r = kvmk_reader_u32(rd, &tag, "section tag");
		if (!r)
			r = kvmk_reader_u32(rd, &len, "section length");
		if (r)
			break;
		pos = section_pos(tag);
		if (pos < 0)
			return kvmk_err_format(ps->op, "unknown section tag %u", tag);
		if (pos <= last)
			return kvmk_err_format(ps->op, "section %s out of order or repeated",
					       section_name(tag));
		for (int missing = last + 1; missing < pos; missing++)
			if (host_needs(h, missing))
				return kvmk_err_format(ps->op, "no %s section before %s",
						       pos_names[missing], section_name(tag));
		if (!host_needs(h, pos) && pos != POS_OPTIONAL)
			return kvmk_err_format(ps->op, "%s saved, this vCPU has none",
					       section_name(tag));
		if (len > rd->left)
			return kvmk_err_format(ps->op, "section %s: truncated (%u bytes, %zu left)",
					       section_name(tag), len, rd->left);
		r = parse_section(ps, tag, rd->p, len);
		rd->p += len;
		rd->left -= len;
		last = pos;
	}
	if (r)
		return r;
	for (int missing = last + 1; missing <= POS_OPTIONAL; missing++)
		if (host_needs(h, missing))
			return kvmk_err_format(ps->op, "%u sections: no %s section", count,
					       pos_names[missing]);
	if (rd->left)
		return kvmk_err_format(ps->op, "%zu bytes past the last section", rd->left);
	return 0;
}

int kvmk_vs_parse(const void *buf, size_t len, const struct kvmk_vs_host *host, const char *op,
		  struct kvmk_vs_state **out)
{
	struct kvmk_reader rd = { buf, len, op };
	struct parser ps = { host, op, calloc(1, sizeof(struct kvmk_vs_state)) };
	int r;

	if (!ps.s)
		return kvmk_err_resource(op, ENOMEM, "vCPU state");
	r = parse_all(&ps, &rd);
	if (r) {
		kvmk_vs_free(ps.s);
		return r;
	}
	*out = ps.s;
	return 0;
}
