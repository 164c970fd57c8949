// SPDX-License-Identifier: MIT
/*
 * Saving and restoring an arm64 vCPU (kvmkit_vcpu_save/restore, vcpu.h):
 * every register KVM lists for it (KVM_GET_REG_LIST: core and FP/SIMD
 * registers, the system registers, the timers' counters and controls, the
 * firmware pseudo-registers such as the PSCI version) through ONE_REG, and
 * its MP state (powered off or running). Not here: the vGIC (its CPU
 * interface state is the irqchip's), guest memory.
 *
 * The blob, little-endian: u32 magic "A64V", u32 version, u32 vCPU id,
 * u32 MP state, u32 register count N, u32 0, then N x { u64 register id,
 * the value in the id's size (KVM_REG_SIZE) }, in KVM's list order, which
 * is also the restore order (KVM lists the timer's counter before its
 * compare and control registers).
 *
 * Restore trusts nothing: the whole blob is parsed first (header, sizes,
 * every id one this vCPU lists, no id twice, nothing left over), then each
 * register is written; if KVM refuses one, the registers written so far get
 * the vCPU's previous values back.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "vcpu"
#include "core/internal.h"
#include "kvm/arch.h"
#include <kvmkit/arm64.h>

#define OP_SAVE "kvmkit_vcpu_save"
#define OP_RESTORE "kvmkit_vcpu_restore"
#define VS_MAGIC 0x56343641u /* "A64V" */
#define VS_VERSION 1u
#define MAX_REGS 4096 /* far more than KVM lists with SVE off */
#define MAX_REG_BYTES 256 /* KVM_REG_SIZE_U2048 */

struct regs {
	uint64_t n;
	uint64_t *id;
	uint8_t *val; /* n x MAX_REG_BYTES */
	uint32_t mp_state;
};

static size_t reg_size(uint64_t id)
{
	return (size_t)1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
}

static void regs_free(struct regs *r)
{
	free(r->id);
	free(r->val);
	memset(r, 0, sizeof(*r));
}

/* KVM_GET_REG_LIST into r->id (allocated). */
static int reg_list(struct kvmkit_vcpu *v, struct regs *r)
{
	struct kvm_reg_list probe = { .n = 0 }, *l;
	int fd = kvmkit_vcpu_fd(v);

	if (ioctl(fd, KVM_GET_REG_LIST, &probe) < 0 && errno != E2BIG)
		return kvmk_err_ioctl("KVM_GET_REG_LIST", errno, "vcpu %u", kvmkit_vcpu_id(v));
	if (probe.n > MAX_REGS)
		return kvmk_err_resource("KVM_GET_REG_LIST", E2BIG, "%llu registers",
					 (unsigned long long)probe.n);
	l = calloc(1, sizeof(*l) + probe.n * sizeof(l->reg[0]));
	r->id = calloc(probe.n ? probe.n : 1, sizeof(*r->id));
	r->val = calloc(probe.n ? probe.n : 1, MAX_REG_BYTES);
	if (!l || !r->id || !r->val) {
		free(l);
		regs_free(r);
		return kvmk_err_resource("KVM_GET_REG_LIST", ENOMEM, NULL);
	}
	l->n = probe.n;
	if (ioctl(fd, KVM_GET_REG_LIST, l) < 0) {
		free(l);
		regs_free(r);
		return kvmk_err_ioctl("KVM_GET_REG_LIST", errno, "vcpu %u", kvmkit_vcpu_id(v));
	}
	r->n = l->n;
	memcpy(r->id, l->reg, l->n * sizeof(r->id[0]));
	free(l);
	for (uint64_t i = 0; i < r->n; i++)
		if (reg_size(r->id[i]) > MAX_REG_BYTES) {
			regs_free(r);
			return kvmk_err_unsupported(
				OP_SAVE, ENOTSUP, "register 0x%llx of %zu bytes",
				(unsigned long long)r->id[i], reg_size(r->id[i]));
		}
	return 0;
}

/* The vCPU's registers and MP state now. */
static int gather(struct kvmkit_vcpu *v, struct regs *r)
{
	struct kvm_mp_state mp;
	int fd = kvmkit_vcpu_fd(v);
	int e = reg_list(v, r);

	for (uint64_t i = 0; !e && i < r->n; i++) {
		struct kvm_one_reg one = { r->id[i],
					   (uint64_t)(uintptr_t)(r->val + i * MAX_REG_BYTES) };

		if (ioctl(fd, KVM_GET_ONE_REG, &one) < 0)
			e = kvmk_err_ioctl("KVM_GET_ONE_REG", errno, "vcpu %u reg 0x%llx",
					   kvmkit_vcpu_id(v), (unsigned long long)r->id[i]);
	}
	if (!e && ioctl(fd, KVM_GET_MP_STATE, &mp) < 0)
		e = kvmk_err_ioctl("KVM_GET_MP_STATE", errno, "vcpu %u", kvmkit_vcpu_id(v));
	if (e) {
		regs_free(r);
		return e;
	}
	r->mp_state = mp.mp_state;
	return 0;
}

int kvmkit_vcpu_save(struct kvmkit_vcpu *v, void **buf, size_t *len)
{
	struct kvmk_blob b = { 0 };
	struct regs r = { 0 };
	int e;

	if (!buf || !len)
		return kvmk_err_param(OP_SAVE, buf ? "len" : "buf", "must not be NULL", "NULL");
	e = kvmk_vcpu_state_check(v, false);
	if (!e)
		e = kvmk_vcpu_complete_exit(v);
	if (!e)
		e = gather(v, &r);
	if (e)
		return e;
	e = kvmk_blob_put_u32(&b, VS_MAGIC);
	e = e ?: kvmk_blob_put_u32(&b, VS_VERSION);
	e = e ?: kvmk_blob_put_u32(&b, kvmkit_vcpu_id(v));
	e = e ?: kvmk_blob_put_u32(&b, r.mp_state);
	e = e ?: kvmk_blob_put_u32(&b, (uint32_t)r.n);
	e = e ?: kvmk_blob_put_u32(&b, 0);
	for (uint64_t i = 0; !e && i < r.n; i++) {
		e = kvmk_blob_put_u32(&b, (uint32_t)r.id[i]);
		e = e ?: kvmk_blob_put_u32(&b, (uint32_t)(r.id[i] >> 32));
		e = e ?: kvmk_blob_put(&b, r.val + i * MAX_REG_BYTES, reg_size(r.id[i]));
	}
	regs_free(&r);
	if (e) {
		kvmk_blob_free(&b);
		return e;
	}
	*buf = b.data;
	*len = b.len;
	return 0;
}

/* Parses @p against @cur (this vCPU's list) into @out (same layout). */
static int parse(const void *p, size_t len, struct kvmkit_vcpu *v, const struct regs *cur,
		 struct regs *out)
{
	struct kvmk_reader rd = { p, len, OP_RESTORE };
	uint32_t w[6], lo, hi;
	uint8_t *seen;
	int e = 0;

	for (int i = 0; !e && i < 6; i++)
		e = kvmk_reader_u32(&rd, &w[i], "arm64 vCPU state header");
	if (e)
		return e;
	if (w[0] != VS_MAGIC)
		return kvmk_err_format(OP_RESTORE, "not an arm64 vCPU state (magic 0x%08x)", w[0]);
	if (w[1] != VS_VERSION)
		return kvmk_err_format(OP_RESTORE,
				       "arm64 vCPU state version %u, this kvmkit reads %u", w[1],
				       VS_VERSION);
	if (w[2] != kvmkit_vcpu_id(v))
		return kvmk_err_format(OP_RESTORE, "the state of vCPU %u, restored into vCPU %u",
				       w[2], kvmkit_vcpu_id(v));
	if (w[3] != KVM_MP_STATE_RUNNABLE && w[3] != KVM_MP_STATE_STOPPED)
		return kvmk_err_format(OP_RESTORE, "MP state %u (runnable or stopped)", w[3]);
	if (w[4] > cur->n || w[5])
		return kvmk_err_format(OP_RESTORE, "%u registers (this vCPU has %llu), reserved %u",
				       w[4], (unsigned long long)cur->n, w[5]);
	out->n = w[4];
	out->mp_state = w[3];
	out->id = calloc(out->n ? out->n : 1, sizeof(*out->id));
	out->val = calloc(out->n ? out->n : 1, MAX_REG_BYTES);
	seen = calloc(cur->n ? cur->n : 1, 1);
	if (!out->id || !out->val || !seen) {
		free(seen);
		return kvmk_err_resource(OP_RESTORE, ENOMEM, NULL);
	}
	for (uint64_t i = 0; !e && i < out->n; i++) {
		uint64_t k;

		e = kvmk_reader_u32(&rd, &lo, "register id");
		e = e ?: kvmk_reader_u32(&rd, &hi, "register id");
		if (e)
			break;
		out->id[i] = (uint64_t)hi << 32 | lo;
		for (k = 0; k < cur->n && cur->id[k] != out->id[i]; k++)
			;
		if (k == cur->n)
			e = kvmk_err_format(OP_RESTORE, "register 0x%llx, which this vCPU lacks",
					    (unsigned long long)out->id[i]);
		else if (seen[k]++)
			e = kvmk_err_format(OP_RESTORE, "register 0x%llx twice",
					    (unsigned long long)out->id[i]);
		else
			e = kvmk_reader_get(&rd, out->val + i * MAX_REG_BYTES, reg_size(out->id[i]),
					    "register value");
	}
	free(seen);
	if (!e && rd.left)
		e = kvmk_err_format(OP_RESTORE, "%zu bytes past the arm64 vCPU state", rd.left);
	return e;
}

/* Writes @r's registers in order; stops at the first KVM refuses. */
static int put(struct kvmkit_vcpu *v, const struct regs *r)
{
	for (uint64_t i = 0; i < r->n; i++) {
		struct kvm_one_reg one = { r->id[i],
					   (uint64_t)(uintptr_t)(r->val + i * MAX_REG_BYTES) };

		if (ioctl(kvmkit_vcpu_fd(v), KVM_SET_ONE_REG, &one) < 0)
			return kvmk_err_ioctl("KVM_SET_ONE_REG", errno, "vcpu %u reg 0x%llx",
					      kvmkit_vcpu_id(v), (unsigned long long)r->id[i]);
	}
	return 0;
}

int kvmkit_vcpu_restore(struct kvmkit_vcpu *v, const void *buf, size_t len)
{
	struct regs old = { 0 }, s = { 0 };
	struct kvm_mp_state mp;
	int e;

	if (!buf)
		return kvmk_err_param(OP_RESTORE, "buf", "must not be NULL", "NULL");
	e = kvmk_vcpu_state_check(v, true);
	/* A pending exit would be completed into the restored registers. */
	e = e ?: kvmk_vcpu_complete_exit(v);
	e = e ?: gather(v, &old);
	if (e)
		return e;
	e = parse(buf, len, v, &old, &s);
	if (!e) {
		e = put(v, &s);
		if (e) {
			struct kvmkit_error saved;

			/* KVM refused a value: the previous state back. */
			kvmk_err_save(&saved);
			put(v, &old);
			kvmk_err_restore(&saved);
		}
	}
	if (!e) {
		mp.mp_state = s.mp_state;
		if (ioctl(kvmkit_vcpu_fd(v), KVM_SET_MP_STATE, &mp) < 0)
			e = kvmk_err_ioctl("KVM_SET_MP_STATE", errno, "vcpu %u state %u",
					   kvmkit_vcpu_id(v), mp.mp_state);
	}
	regs_free(&old);
	regs_free(&s);
	return e;
}
