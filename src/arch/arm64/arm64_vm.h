/* SPDX-License-Identifier: MIT */
/* The arm64 per-VM state behind struct kvmk_arch_vm (vm.c, vcpu.c). */
#ifndef KVMKIT_ARCH_ARM64_VM_H
#define KVMKIT_ARCH_ARM64_VM_H

#include <stdbool.h>
#include <linux/kvm.h>

struct kvmk_arch_vm {
	unsigned int ipa_bits; /* the guest physical address size chosen */
	struct kvm_vcpu_init init; /* KVM_ARM_PREFERRED_TARGET + PSCI 0.2 */
	/* Each vCPU's MPIDR_EL1, read once at creation (it never changes):
	 * kvmkit_vcpu_mpidr() then works while the vCPU runs. */
	uint64_t *mpidr;
	unsigned int nr_vcpus;
};

#endif
