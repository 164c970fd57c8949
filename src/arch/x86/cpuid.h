/* SPDX-License-Identifier: MIT */
/* The guest CPU model (internal; see cpuid.c for the model itself). */
#ifndef KVMKIT_KVM_CPUID_H
#define KVMKIT_KVM_CPUID_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

struct kvmk_cpu_flags {
	uint64_t set;	/* bit i: feature i forced on */
	uint64_t clear; /* bit i: feature i forced off */
};

struct kvmk_cpu_model {
	bool lapic;	   /* an in-kernel LAPIC exists: advertise x2APIC */
	bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER */
	struct kvmk_cpu_flags flags;
};

/* Parses "+x2apic,-avx"; an empty or NULL spec is no change. */
int kvmk_cpu_flags_parse(const char *spec, struct kvmk_cpu_flags *out);
/* Applies the model and flags to a copy of KVM's supported CPUID. */
void kvmk_cpuid_apply(struct kvm_cpuid2 *c, const struct kvmk_cpu_model *model, unsigned int apic_id);

#endif
