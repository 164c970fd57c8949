/* SPDX-License-Identifier: MIT */
/* The arm64 per-VM state behind struct kvmk_arch_vm (vm.c, vcpu.c). */
#ifndef KVMKIT_ARCH_ARM64_VM_H
#define KVMKIT_ARCH_ARM64_VM_H

#include <stdbool.h>
#include <linux/kvm.h>

#include <kvmkit/arm64.h>

struct kvmkit_vm;
struct kvmkit_vcpu;

struct kvmk_arch_vm {
	unsigned int ipa_bits; /* the guest physical address size chosen */
	struct kvm_vcpu_init init; /* KVM_ARM_PREFERRED_TARGET + PSCI 0.2 */
	/* Each vCPU's MPIDR_EL1, read once at creation (it never changes):
	 * kvmkit_vcpu_mpidr() then works while the vCPU runs. */
	uint64_t *mpidr;
	unsigned int nr_vcpus;
	/* Optional vCPU features asked for in cpu_flags ("pmu", "sve"), off
	 * otherwise; checked against KVM's capabilities at creation. */
	bool pmu, sve;
	/* MMIO devices the device tree names (the machine's virtio-mmio
	 * devices): kvmkit_arm64_platform_of() hands them to the builder. */
	struct kvmkit_arm64_mmio_dev devs[KVMKIT_ARM64_FDT_MAX_DEVS];
	unsigned int ndevs;
};

/* Adds @d (its compatible string must outlive the VM: a literal) to the
 * devices @vm's device tree names; before the tree is built (boot).
 * -ENOSPC past KVMKIT_ARM64_FDT_MAX_DEVS. The builder checks the rest. */
/* Sets up vCPU @v's PMU (KVM_ARM_VCPU_PMU_V3_CTRL: its PPI with a vGIC,
 * then INIT): after the vGIC's init, before the vCPU first runs. */
int kvmk_arm64_pmu_init(struct kvmkit_vcpu *v, bool with_vgic);

int kvmk_arm64_fdt_add_dev(struct kvmkit_vm *vm, const struct kvmkit_arm64_mmio_dev *d);

#endif
