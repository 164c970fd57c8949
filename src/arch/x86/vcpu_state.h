/* SPDX-License-Identifier: MIT */
/*
 * An x86 vCPU's saved state in memory, and its blob format (vcpu_state_fmt.c:
 * no KVM calls, so that the parser is unit-tested and fuzzed on its own);
 * vcpu_state.c gathers it with the KVM_GET_* ioctls and applies it with the
 * KVM_SET_* ones. Internal.
 *
 * The blob (version 1), every u32 little-endian:
 *
 *   u32 magic "KVCS"  u32 version  u32 arch (1: x86_64)  u32 vCPU id
 *   u32 section count N
 *   N x { u32 tag, u32 length L, L bytes }
 *
 * Sections come in this order, the order they are saved in (the ones in
 * brackets only where the host and VM have them, alternatives with |):
 *
 *   MP_STATE, REGS, SREGS | SREGS2, XSAVE | FPU, [XCRS], [LAPIC], MSRS,
 *   DEBUGREGS, EVENTS, [TSC_KHZ]
 *
 * TSC_KHZ (u32 the vCPU's TSC frequency in kHz from KVM_GET_TSC_KHZ, u32
 * reserved = 0) is written where KVM reports the frequency and is optional
 * on restore: a blob without it runs at the restoring vCPU's frequency.
 *
 * Each section holds KVM's structure of the same name as the x86 kernel ABI
 * lays it out (little-endian, fixed layout; XSAVE is KVM_GET_XSAVE2's area,
 * as long as KVM_CAP_XSAVE2 says); MSRS is a u32 count C followed by C
 * struct kvm_msr_entry (u32 index, u32 reserved = 0, u64 data).
 */
#ifndef KVMKIT_ARCH_X86_VCPU_STATE_H
#define KVMKIT_ARCH_X86_VCPU_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "core/internal.h"

#define KVMK_VS_MAGIC 0x5343564bu /* "KVCS" */
#define KVMK_VS_VERSION 1u
#define KVMK_VS_ARCH_X86_64 1u

enum kvmk_vs_section {
	KVMK_VS_MP_STATE = 1,
	KVMK_VS_REGS,
	KVMK_VS_SREGS,
	KVMK_VS_SREGS2,
	KVMK_VS_XSAVE,
	KVMK_VS_FPU,
	KVMK_VS_XCRS,
	KVMK_VS_LAPIC,
	KVMK_VS_MSRS,
	KVMK_VS_DEBUGREGS,
	KVMK_VS_EVENTS,
	KVMK_VS_TSC_KHZ,
};

/* Most MSRs a blob may carry (KVM lists about 40 to 100). */
#define KVMK_VS_MAX_MSRS 1024
/* Largest XSAVE area taken (KVM_CAP_XSAVE2 with AMX is about 11 KiB). */
#define KVMK_VS_MAX_XSAVE (1u << 20)

#define MSR_IA32_TSC 0x10u
#define MSR_IA32_TSC_DEADLINE 0x6e0u

/* What the vCPU being restored takes; the parser checks a blob against it. */
struct kvmk_vs_host {
	uint32_t vcpu_id;
	bool sregs2; /* KVM_CAP_SREGS2 */
	uint32_t xsave_size; /* KVM_GET_XSAVE(2)'s size; 0: KVM_GET_FPU only */
	bool xcrs; /* KVM_CAP_XCRS */
	bool lapic; /* an in-kernel LAPIC */
	uint32_t event_flags; /* KVM_VCPUEVENT_VALID_* KVM takes for this VM */
	const uint32_t *msrs; /* the MSRs KVM lists and reads, ascending */
	size_t nmsrs;
};

struct kvmk_vs_state {
	uint32_t vcpu_id;
	bool has_sregs2, has_xsave, has_xcrs, has_lapic;
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs; /* unless has_sregs2 */
	struct kvm_sregs2 sregs2; /* if has_sregs2 */
	struct kvm_xsave *xsave; /* xsave_size bytes, if has_xsave */
	uint32_t xsave_size;
	struct kvm_fpu fpu; /* unless has_xsave */
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_msrs *msrs; /* nmsrs entries */
	struct kvm_debugregs debugregs;
	struct kvm_vcpu_events events;
	uint32_t tsc_khz; /* 0: not saved */
};

/* An empty state (its XSAVE area and MSR list allocated by the caller). */
void kvmk_vs_free(struct kvmk_vs_state *s);
/* Appends the blob of @s to @b. */
int kvmk_vs_write(const struct kvmk_vs_state *s, struct kvmk_blob *b);
/* Parses and checks a whole blob against @host into a new state (free it
 * with kvmk_vs_free); -ENOEXEC (KVMKIT_ERR_FORMAT, named after @op) for
 * anything the vCPU would not take, nothing allocated then. */
int kvmk_vs_parse(const void *buf, size_t len, const struct kvmk_vs_host *host, const char *op,
		  struct kvmk_vs_state **out);

#endif
