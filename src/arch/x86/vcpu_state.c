// SPDX-License-Identifier: MIT
/*
 * Saving and restoring an x86 vCPU (kvmkit_vcpu_save/restore, vcpu.h): the
 * KVM_GET_* and KVM_SET_* ioctls, in the orders KVM needs; the blob itself
 * is vcpu_state_fmt.c's.
 *
 * Save order: MP_STATE first, because KVM_GET_MP_STATE first delivers the
 * INIT/SIPI the LAPIC has accepted, which may change CS:RIP and the other
 * registers; VCPU_EVENTS last, because reading them is what moves a queued
 * NMI to pending and, unless the VM enabled KVM_CAP_EXCEPTION_PAYLOAD,
 * writes a pending exception's payload into CR2 or DR6 (KVM's x86.c; the
 * payload itself: api.rst 4.31 KVM_GET_VCPU_EVENTS): when an exception is
 * in flight, SREGS and DEBUGREGS are read again after it.
 *
 * Restore order: REGS before VCPU_EVENTS (KVM_SET_REGS drops a queued
 * exception); SREGS before LAPIC (the APIC base, i.e. xAPIC or x2APIC mode,
 * decides the format of the LAPIC ID register: api.rst 4.57 KVM_GET_LAPIC,
 * 4.58 KVM_SET_LAPIC); LAPIC before MSRS (KVM drops a TSC deadline written
 * while the LAPIC timer is not in TSC-deadline mode); in MSRS, the TSC
 * first and IA32_TSC_DEADLINE last (KVM arms the deadline timer against
 * the TSC it has when the deadline is written: before the TSC it would
 * fire as far off as the old TSC is from the new VM's; and the TSC is
 * made to hold first: write_tsc); MP_STATE before
 * VCPU_EVENTS (KVM refuses SMM events with an INIT-received MP state).
 * docs/ARCHITECTURE.md, "Saving state", has the whole picture.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define KVMK_LOG_MODULE "vcpu"
#include "core/internal.h"
#include "kvm/arch.h"
#include "arch/x86/vcpu_state.h"
#include <kvmkit/irq.h>

/* Linux 5.16's vCPU TSC attribute (devices/vcpu.rst), for older headers;
 * probed at run time with KVM_HAS_DEVICE_ATTR. */
#ifndef KVM_VCPU_TSC_CTRL
#define KVM_VCPU_TSC_CTRL 0
#define KVM_VCPU_TSC_OFFSET 0
#endif

#define OP_SAVE "kvmkit_vcpu_save"
#define OP_RESTORE "kvmkit_vcpu_restore"

/* MSRs saved whenever the vCPU reads them, on top of KVM's list (which has
 * them on every kernel kvmkit knows): TSC, TSC deadline, SYSENTER, the
 * SYSCALL targets, KERNEL_GS_BASE, PAT, MISC_ENABLE and both kvmclock sets.
 * APIC base and EFER travel in SREGS. */
static const uint32_t wanted_msrs[] = {
	0x10,	    0x6e0,	0x174, 0x175, 0x176, 0xc0000081, 0xc0000082, 0xc0000083,
	0xc0000084, 0xc0000102, 0x277, 0x1a0, 0x11,  0x12,	 0x4b564d00, 0x4b564d01,
};

static int vioctl(struct kvmkit_vcpu *v, unsigned long req, void *arg, const char *name)
{
	if (ioctl(kvmkit_vcpu_fd(v), req, arg) < 0)
		return kvmk_err_ioctl(name, errno, "vcpu %u", kvmkit_vcpu_id(v));
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* KVM_GET_MSR_INDEX_LIST ("the guest msrs that are supported", api.rst 4.3)
 * plus wanted_msrs, ascending and without repeats. */
static int msr_index_list(struct kvmkit_vcpu *v, uint32_t **out, size_t *count)
{
	int sfd = kvmkit_system_fd(kvmkit_vm_system(kvmkit_vcpu_vm(v)));
	struct kvm_msr_list probe = { .nmsrs = 0 }, *l;
	size_t n, k = 0;
	uint32_t *idx;

	if (ioctl(sfd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return kvmk_err_ioctl("KVM_GET_MSR_INDEX_LIST", errno, NULL);
	if (probe.nmsrs > KVMK_VS_MAX_MSRS - KVMKIT_ARRAY_SIZE(wanted_msrs))
		return kvmk_err_resource("KVM_GET_MSR_INDEX_LIST", E2BIG, "%u MSRs", probe.nmsrs);
	l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(l->indices[0]));
	idx = calloc(probe.nmsrs + KVMKIT_ARRAY_SIZE(wanted_msrs), sizeof(*idx));
	if (!l || !idx) {
		free(l);
		free(idx);
		return kvmk_err_resource("KVM_GET_MSR_INDEX_LIST", ENOMEM, NULL);
	}
	l->nmsrs = probe.nmsrs;
	if (ioctl(sfd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
		int r = kvmk_err_ioctl("KVM_GET_MSR_INDEX_LIST", errno, NULL);

		free(l);
		free(idx);
		return r;
	}
	n = l->nmsrs < probe.nmsrs ? l->nmsrs : probe.nmsrs;
	memcpy(idx, l->indices, n * sizeof(*idx));
	memcpy(idx + n, wanted_msrs, sizeof(wanted_msrs));
	n += KVMKIT_ARRAY_SIZE(wanted_msrs);
	free(l);
	qsort(idx, n, sizeof(*idx), cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (!k || idx[i] != idx[k - 1])
			idx[k++] = idx[i];
	*out = idx;
	*count = k;
	return 0;
}

/*
 * The listed MSRs this vCPU reads, with their values, ascending. KVM lists
 * some that depend on the vCPU's CPUID (PMU, MPX, ...) and KVM_GET_MSRS
 * stops at the first it refuses, returning how many it read: such an MSR is
 * skipped and the read goes on after it.
 */
static int read_msrs(struct kvmkit_vcpu *v, struct kvm_msrs **out)
{
	struct kvm_msrs *m = NULL, *scratch = NULL;
	size_t n = 0, done = 0;
	uint32_t *idx = NULL;
	int r = msr_index_list(v, &idx, &n);

	if (r)
		return r;
	m = calloc(1, sizeof(*m) + n * sizeof(m->entries[0]));
	scratch = calloc(1, sizeof(*scratch) + n * sizeof(scratch->entries[0]));
	if (!m || !scratch) {
		r = kvmk_err_resource("KVM_GET_MSRS", ENOMEM, "%zu MSRs", n);
		goto out;
	}
	while (done < n) {
		int got;

		scratch->nmsrs = (uint32_t)(n - done);
		for (size_t i = done; i < n; i++)
			scratch->entries[i - done] = (struct kvm_msr_entry){ .index = idx[i] };
		got = ioctl(kvmkit_vcpu_fd(v), KVM_GET_MSRS, scratch);
		if (got < 0) {
			r = kvmk_err_ioctl("KVM_GET_MSRS", errno, "vcpu %u", kvmkit_vcpu_id(v));
			goto out;
		}
		memcpy(&m->entries[m->nmsrs], scratch->entries,
		       (size_t)got * sizeof(m->entries[0]));
		m->nmsrs += (uint32_t)got;
		done += (size_t)got + 1; /* the one refused, if any */
	}
out:
	free(idx);
	free(scratch);
	if (r) {
		free(m);
		return r;
	}
	*out = m;
	return 0;
}

/* KVM_GET_XSAVE2's size where KVM has it (KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2)
 * on the VM, at least 4096: api.rst, KVM_SET_XSAVE), else KVM_GET_XSAVE's
 * 4096; 0 where only KVM_GET_FPU works. */
static uint32_t xsave_size(struct kvmkit_vm *vm, bool *xsave2)
{
	int n = kvmkit_vm_check_cap(vm, KVM_CAP_XSAVE2);

	*xsave2 = n > 0;
	if (n > 0)
		return (uint32_t)n > sizeof(struct kvm_xsave) ? (uint32_t)n :
								sizeof(struct kvm_xsave);
	return kvmkit_vm_check_cap(vm, KVM_CAP_XSAVE) > 0 ? sizeof(struct kvm_xsave) : 0;
}

static int get_sregs(struct kvmkit_vcpu *v, struct kvmk_vs_state *s)
{
	if (s->has_sregs2)
		return vioctl(v, KVM_GET_SREGS2, &s->sregs2, "KVM_GET_SREGS2");
	return vioctl(v, KVM_GET_SREGS, &s->sregs, "KVM_GET_SREGS");
}

/* Reads the vCPU's state, in the save order above. */
static int gather(struct kvmkit_vcpu *v, struct kvmk_vs_state **out)
{
	struct kvmkit_vm *vm = kvmkit_vcpu_vm(v);
	struct kvmk_vs_state *s = calloc(1, sizeof(*s));
	bool xsave2;
	int r;

	if (!s)
		return kvmk_err_resource(OP_SAVE, ENOMEM, "vCPU state");
	s->vcpu_id = kvmkit_vcpu_id(v);
	s->has_sregs2 = kvmkit_vm_check_cap(vm, KVM_CAP_SREGS2) > 0;
	s->xsave_size = xsave_size(vm, &xsave2);
	s->has_xsave = s->xsave_size > 0;
	s->has_xcrs = kvmkit_vm_check_cap(vm, KVM_CAP_XCRS) > 0;
	s->has_lapic = kvmkit_vm_irqchip(vm) != NULL;

	r = vioctl(v, KVM_GET_MP_STATE, &s->mp, "KVM_GET_MP_STATE");
	if (!r)
		r = vioctl(v, KVM_GET_REGS, &s->regs, "KVM_GET_REGS");
	if (!r)
		r = get_sregs(v, s);
	if (!r && s->has_xsave) {
		s->xsave = calloc(1, s->xsave_size);
		if (!s->xsave)
			r = kvmk_err_resource(OP_SAVE, ENOMEM, "XSAVE area");
		else if (xsave2)
			r = vioctl(v, KVM_GET_XSAVE2, s->xsave, "KVM_GET_XSAVE2");
		else
			r = vioctl(v, KVM_GET_XSAVE, s->xsave, "KVM_GET_XSAVE");
	} else if (!r) {
		r = vioctl(v, KVM_GET_FPU, &s->fpu, "KVM_GET_FPU");
	}
	if (!r && s->has_xcrs)
		r = vioctl(v, KVM_GET_XCRS, &s->xcrs, "KVM_GET_XCRS");
	if (!r && s->has_lapic)
		r = vioctl(v, KVM_GET_LAPIC, &s->lapic, "KVM_GET_LAPIC");
	if (!r)
		r = read_msrs(v, &s->msrs);
	if (!r)
		r = vioctl(v, KVM_GET_DEBUGREGS, &s->debugregs, "KVM_GET_DEBUGREGS");
	if (!r)
		r = vioctl(v, KVM_GET_VCPU_EVENTS, &s->events, "KVM_GET_VCPU_EVENTS");
	if (!r && (s->events.exception.injected || s->events.exception.pending)) {
		r = get_sregs(v, s);
		if (!r)
			r = vioctl(v, KVM_GET_DEBUGREGS, &s->debugregs, "KVM_GET_DEBUGREGS");
	}
	if (!r) {
		/* The TSC's rate, where KVM says (KVM_CAP_GET_TSC_KHZ). */
		int khz = ioctl(kvmkit_vcpu_fd(v), KVM_GET_TSC_KHZ, 0);

		s->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	}
	if (r) {
		kvmk_vs_free(s);
		return r;
	}
	*out = s;
	return 0;
}

/* Whether @base holds MSR @e->index with @e's value. */
static bool msr_held(const struct kvm_msrs *base, const struct kvm_msr_entry *e)
{
	for (uint32_t i = 0; base && i < base->nmsrs; i++)
		if (base->entries[i].index == e->index)
			return base->entries[i].data == e->data;
	return false;
}

/* KVM_SET_MSRS of @o (@n entries), all or an error naming the refused one. */
static int write_msrs(struct kvmkit_vcpu *v, struct kvm_msrs *o, uint32_t n)
{
	int set;

	if (!n)
		return 0;
	o->nmsrs = n;
	set = ioctl(kvmkit_vcpu_fd(v), KVM_SET_MSRS, o);
	if (set < 0)
		return kvmk_err_ioctl("KVM_SET_MSRS", errno, "vcpu %u", kvmkit_vcpu_id(v));
	if ((uint32_t)set < n)
		return kvmk_err_ioctl("KVM_SET_MSRS", EINVAL,
				      "vcpu %u: KVM refused MSR 0x%x = 0x%llx", kvmkit_vcpu_id(v),
				      o->entries[set].index,
				      (unsigned long long)o->entries[set].data);
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The vCPU's TSC offset (KVM_VCPU_TSC_OFFSET), or false where KVM has no
 * such attribute (Linux before 5.16) or refuses it. */
static bool tsc_offset(int fd, uint64_t *out)
{
	struct kvm_device_attr attr = { .group = KVM_VCPU_TSC_CTRL,
					.attr = KVM_VCPU_TSC_OFFSET,
					.addr = (uint64_t)(uintptr_t)out };

	return !ioctl(fd, KVM_HAS_DEVICE_ATTR, &attr) && !ioctl(fd, KVM_GET_DEVICE_ATTR, &attr);
}

/*
 * Writes the TSC (@e) and makes it hold. KVM takes a host write within
 * about a second of the TSC it expects for a synchronization and gives the
 * vCPU the offset it last set instead (kvm_synchronize_tsc). Between the
 * vCPUs of a restored VM that is what keeps them in step: the second
 * vCPU's value, saved a little after the first's, lands on the first's
 * offset. But kernels without "don't sync user-written TSC against startup
 * values" (6.1 among them) also compare the first write with the 0 every
 * new vCPU starts at: a snapshot taken less than a second after its VM
 * started came back near 0, its TSC going backwards. So where the vCPU has
 * the KVM_VCPU_TSC_OFFSET attribute (Linux 5.16+, devices/vcpu.rst), its
 * offset is read before the write and after: if KVM kept it (the write was
 * taken for a synchronization with where the new vCPU already stood) and
 * the TSC reads further from @e's value than the time since the write
 * (plus a millisecond), the offset moves by the difference, so that the
 * TSC reads the saved value plus the time since the read. KVM-PVM ignores
 * TSC writes and offsets alike.
 */
static int write_tsc(struct kvmkit_vcpu *v, struct kvm_msrs *o, const struct kvm_msr_entry *e)
{
	struct kvm_device_attr attr = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET };
	/* One MSR entry after the header (a struct holding both would put a
	 * flexible array in the middle). */
	uint64_t buf[(sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)) / 8] = { 0 };
	struct kvm_msrs *m = (struct kvm_msrs *)buf;
	int fd = kvmkit_vcpu_fd(v), khz = ioctl(fd, KVM_GET_TSC_KHZ, 0), r;
	uint64_t before, after, now, slack, written = mono_ns();
	bool have = khz > 0 && tsc_offset(fd, &before);

	o->entries[0] = *e;
	r = write_msrs(v, o, 1);
	if (r || !have || !tsc_offset(fd, &after) || after != before)
		return r;
	m->nmsrs = 1;
	m->entries[0].index = MSR_IA32_TSC;
	if (ioctl(fd, KVM_GET_MSRS, m) != 1)
		return kvmk_err_ioctl("KVM_GET_MSRS", errno, "vcpu %u: the TSC", kvmkit_vcpu_id(v));
	now = m->entries[0].data;
	slack = ((mono_ns() - written) / 1000000 + 1) * (uint64_t)khz;
	if (now + slack >= e->data && now <= e->data + slack)
		return 0;
	after += e->data - now; /* modulo 2^64, as KVM adds it */
	attr.addr = (uint64_t)(uintptr_t)&after;
	if (ioctl(fd, KVM_SET_DEVICE_ATTR, &attr))
		return kvmk_err_ioctl("KVM_SET_DEVICE_ATTR", errno, "vcpu %u: KVM_VCPU_TSC_OFFSET",
				      kvmkit_vcpu_id(v));
	kvmk_debug("vcpu %u: KVM took the TSC write for a synchronization with the new vCPU's; "
		   "offset moved by %lld",
		   kvmkit_vcpu_id(v), (long long)(e->data - now));
	return 0;
}

/*
 * KVM_SET_MSRS with the TSC first (alone, made to hold: write_tsc) and the
 * TSC deadline last. An MSR whose value @base says the vCPU already holds
 * is left alone (the TSC and the deadline, which depend on time and on the
 * LAPIC just set, never are): writing it would change nothing, and KVM
 * refuses some such writes, e.g. MSR_KVM_PV_EOI_EN (0 and unchangeable)
 * without an in-kernel LAPIC.
 */
static int set_msrs(struct kvmkit_vcpu *v, const struct kvm_msrs *m, const struct kvm_msrs *base)
{
	struct kvm_msrs *o = calloc(1, sizeof(*o) + (m->nmsrs + 1) * sizeof(o->entries[0]));
	uint32_t n = 0;
	int r = 0;

	if (!o)
		return kvmk_err_resource(OP_RESTORE, ENOMEM, "%u MSRs", m->nmsrs);
	for (uint32_t i = 0; !r && i < m->nmsrs; i++)
		if (m->entries[i].index == MSR_IA32_TSC)
			r = write_tsc(v, o, &m->entries[i]);
	for (uint32_t i = 0; i < m->nmsrs; i++)
		if (m->entries[i].index != MSR_IA32_TSC &&
		    m->entries[i].index != MSR_IA32_TSC_DEADLINE && !msr_held(base, &m->entries[i]))
			o->entries[n++] = m->entries[i];
	for (uint32_t i = 0; i < m->nmsrs; i++)
		if (m->entries[i].index == MSR_IA32_TSC_DEADLINE)
			o->entries[n++] = m->entries[i];
	if (!r)
		r = write_msrs(v, o, n);
	free(o);
	return r;
}

/*
 * The TSC runs at the saved rate: KVM_SET_TSC_KHZ when the vCPU's differs
 * (before the TSC is written, whose offset depends on the rate). KVM takes
 * a rate within its tolerance (250 ppm: the same CPU model calibrated on
 * another boot) as it is, and scales others where the CPU can
 * (KVM_CAP_TSC_CONTROL); where it can do neither the restore is refused: a
 * guest that calibrated its TSC would keep time wrongly.
 */
static int set_tsc_khz(struct kvmkit_vcpu *v, uint32_t khz)
{
	int fd = kvmkit_vcpu_fd(v), now;

	if (!khz)
		return 0;
	now = ioctl(fd, KVM_GET_TSC_KHZ, 0);
	if (now > 0 && (uint32_t)now == khz)
		return 0;
	if (ioctl(fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0)
		return kvmk_err_ioctl("KVM_SET_TSC_KHZ", errno,
				      "vcpu %u: the snapshot's TSC runs at %u kHz, this host's at "
				      "%d kHz%s",
				      kvmkit_vcpu_id(v), khz, now,
				      kvmkit_vm_check_cap(kvmkit_vcpu_vm(v), KVM_CAP_TSC_CONTROL) >
						      0 ?
					      "" :
					      " (no KVM_CAP_TSC_CONTROL: KVM takes only rates "
					      "within 250 ppm)");
	return 0;
}

/* Writes @s, in the restore order above; @base: what the vCPU holds (for
 * set_msrs). */
static int apply(struct kvmkit_vcpu *v, const struct kvmk_vs_state *s,
		 const struct kvmk_vs_state *base)
{
	int r = vioctl(v, KVM_SET_REGS, (void *)&s->regs, "KVM_SET_REGS");

	if (!r && s->has_sregs2)
		r = vioctl(v, KVM_SET_SREGS2, (void *)&s->sregs2, "KVM_SET_SREGS2");
	else if (!r)
		r = vioctl(v, KVM_SET_SREGS, (void *)&s->sregs, "KVM_SET_SREGS");
	if (!r && s->has_xsave)
		r = vioctl(v, KVM_SET_XSAVE, s->xsave, "KVM_SET_XSAVE");
	else if (!r)
		r = vioctl(v, KVM_SET_FPU, (void *)&s->fpu, "KVM_SET_FPU");
	if (!r && s->has_xcrs)
		r = vioctl(v, KVM_SET_XCRS, (void *)&s->xcrs, "KVM_SET_XCRS");
	if (!r && s->has_lapic)
		r = vioctl(v, KVM_SET_LAPIC, (void *)&s->lapic, "KVM_SET_LAPIC");
	if (!r)
		r = set_tsc_khz(v, s->tsc_khz);
	if (!r)
		r = set_msrs(v, s->msrs, base->msrs);
	if (!r)
		r = vioctl(v, KVM_SET_DEBUGREGS, (void *)&s->debugregs, "KVM_SET_DEBUGREGS");
	if (!r)
		r = vioctl(v, KVM_SET_MP_STATE, (void *)&s->mp, "KVM_SET_MP_STATE");
	if (!r)
		r = vioctl(v, KVM_SET_VCPU_EVENTS, (void *)&s->events, "KVM_SET_VCPU_EVENTS");
	return r;
}

int kvmkit_vcpu_save(struct kvmkit_vcpu *v, void **buf, size_t *len)
{
	struct kvmk_blob b = { 0 };
	struct kvmk_vs_state *s;
	int r;

	if (!buf || !len)
		return kvmk_err_param(OP_SAVE, buf ? "len" : "buf", "must not be NULL", "NULL");
	r = kvmk_vcpu_state_check(v, false);
	if (!r)
		r = kvmk_vcpu_complete_exit(v);
	if (!r)
		r = gather(v, &s);
	if (r)
		return r;
	r = kvmk_vs_write(s, &b);
	kvmk_vs_free(s);
	if (r) {
		kvmk_blob_free(&b);
		return r;
	}
	*buf = b.data;
	*len = b.len;
	return 0;
}

int kvmkit_vcpu_restore(struct kvmkit_vcpu *v, const void *buf, size_t len)
{
	struct kvmk_vs_state *old = NULL, *s = NULL;
	struct kvmk_vs_host host;
	uint32_t *idx = NULL;
	int r;

	if (!buf)
		return kvmk_err_param(OP_RESTORE, "buf", "must not be NULL", "NULL");
	r = kvmk_vcpu_state_check(v, true);
	/* A pending exit (kvmkit_vcpu_run_once) would otherwise be completed
	 * into the restored registers at the next KVM_RUN. */
	if (!r)
		r = kvmk_vcpu_complete_exit(v);
	/* The current state: what to put back if KVM refuses a value, and
	 * what this vCPU takes (its MSRs, its event flags). */
	if (!r)
		r = gather(v, &old);
	if (r)
		return r;
	idx = calloc(old->msrs->nmsrs + 1, sizeof(*idx));
	if (!idx) {
		kvmk_vs_free(old);
		return kvmk_err_resource(OP_RESTORE, ENOMEM, NULL);
	}
	for (uint32_t i = 0; i < old->msrs->nmsrs; i++)
		idx[i] = old->msrs->entries[i].index;
	host = (struct kvmk_vs_host){
		.vcpu_id = kvmkit_vcpu_id(v),
		.sregs2 = old->has_sregs2,
		.xsave_size = old->has_xsave ? old->xsave_size : 0,
		.xcrs = old->has_xcrs,
		.lapic = old->has_lapic,
		.event_flags = old->events.flags,
		.msrs = idx,
		.nmsrs = old->msrs->nmsrs,
	};
	r = kvmk_vs_parse(buf, len, &host, OP_RESTORE, &s);
	if (!r)
		r = apply(v, s, old);
	if (r && s) {
		/* KVM refused a value the blob's checks cannot see (an EFER or
		 * CR4 bit this vCPU lacks, an MSR value): put back what was
		 * there, keeping KVM's error. */
		struct kvmkit_error err;

		kvmk_err_save(&err);
		if (apply(v, old, s))
			kvmk_warn("vCPU %u: restoring its previous state failed too: %s",
				  kvmkit_vcpu_id(v), kvmkit_strerror());
		kvmk_err_restore(&err);
	}
	kvmk_vs_free(s);
	kvmk_vs_free(old);
	free(idx);
	return r;
}
