// SPDX-License-Identifier: MIT
/*
 * arm64 VM set-up: the IPA size (KVM_CAP_ARM_VM_IPA_SIZE) chosen for the
 * memory map (include/kvmkit/arm64.h), RAM at 2 GiB, and the vCPU target
 * every vCPU is initialised with (KVM_ARM_PREFERRED_TARGET, PSCI 0.2+).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "vm"
#include "core/internal.h"
#include "kvm/arch.h"
#include "arch/arm64/arm64_vm.h"
#include <kvmkit/arm64.h>
#include <kvmkit/vcpu.h>

/* KVM's IPA size for VM type 0 (api.rst 4.2, KVM_CREATE_VM). */
#define DEFAULT_IPA_BITS 40
#define MIN_IPA_BITS 32

enum kvmkit_arch kvmk_arch_host(void)
{
	return KVMKIT_ARCH_ARM64;
}

/*
 * cpu_flags on arm64: the optional vCPU features, "pmu" and "sve", each as
 * NAME or +NAME (on) or -NAME (off, the default), comma-separated.
 */
static int parse_cpu_flags(const char *flags, bool *pmu, bool *sve)
{
	const char *p = flags;

	while (p && *p) {
		size_t n = strcspn(p, ",");
		bool on = *p != '-';
		const char *name = p + (*p == '+' || *p == '-');
		size_t len = n - (size_t)(name - p);

		if (len == 3 && !strncmp(name, "pmu", 3))
			*pmu = on;
		else if (len == 3 && !strncmp(name, "sve", 3))
			*sve = on;
		else
			return kvmk_err_param("kvmkit_vm_create", "cpu_flags",
					      "pmu or sve (NAME, +NAME, -NAME; arm64)", "%.*s",
					      (int)n, p);
		p += n + (p[n] == ',');
	}
	return 0;
}

int kvmk_arch_vm_prepare(const struct kvmkit_vm_config *cfg, struct kvmk_arch_vm **out)
{
	bool pmu = false, sve = false;
	int r = parse_cpu_flags(cfg->cpu_flags, &pmu, &sve);

	if (r)
		return r;
	*out = calloc(1, sizeof(**out));
	if (*out)
		(*out)->mpidr = calloc(cfg->vcpus ? cfg->vcpus : 1, sizeof(uint64_t));
	if (*out && (*out)->mpidr) {
		(*out)->nr_vcpus = cfg->vcpus;
		(*out)->pmu = pmu;
		(*out)->sve = sve;
		return 0;
	}
	kvmk_arch_vm_free(*out);
	*out = NULL;
	return kvmk_err_resource("kvmkit_vm_create", ENOMEM, NULL);
}

/* Bits needed to address the byte before @end. */
static unsigned int addr_bits(uint64_t end)
{
	unsigned int b = 0;

	for (uint64_t last = end - 1; last; last >>= 1)
		b++;
	return b;
}

int kvmk_arch_vm_type(const struct kvmkit_vm_config *cfg, struct kvmkit_system *sys,
		      struct kvmk_arch_vm *a)
{
	int max = kvmkit_system_check_cap(sys, KVM_CAP_ARM_VM_IPA_SIZE);
	unsigned int need = addr_bits(KVMKIT_ARM64_RAM_BASE + cfg->mem_size);

	if (need < MIN_IPA_BITS)
		need = MIN_IPA_BITS;
	if (max <= 0) {
		/* A kernel without the capability has only type 0's size. */
		if (need > DEFAULT_IPA_BITS)
			return kvmk_err_param("kvmkit_vm_create", "mem_size",
					      "RAM ends beyond the 40-bit IPA space (the host has "
					      "no KVM_CAP_ARM_VM_IPA_SIZE)",
					      "%llu", (unsigned long long)cfg->mem_size);
		a->ipa_bits = DEFAULT_IPA_BITS;
		return 0;
	}
	if (need > (unsigned int)max)
		return kvmk_err_param("kvmkit_vm_create", "mem_size",
				      "RAM ends beyond the host's IPA size",
				      "%llu (needs %u bits, KVM_CAP_ARM_VM_IPA_SIZE %d)",
				      (unsigned long long)cfg->mem_size, need, max);
	/* KVM's usual 40 bits where the host has them: room above RAM for
	 * devices to come; never less than RAM needs. */
	a->ipa_bits = need;
	if (a->ipa_bits < DEFAULT_IPA_BITS)
		a->ipa_bits =
			(unsigned int)max < DEFAULT_IPA_BITS ? (unsigned int)max : DEFAULT_IPA_BITS;
	kvmk_debug("IPA size %u bits (host max %d)", a->ipa_bits, max);
	return (int)KVM_VM_TYPE_ARM_IPA_SIZE(a->ipa_bits);
}

/*
 * An MMIO access KVM cannot decode for userspace (no ISV in the syndrome:
 * a load/store pair, writeback, ...). Without KVM_CAP_ARM_NISV_TO_USER,
 * KVM_RUN fails with ENOSYS and says nothing of where; with it the exit
 * carries the address, so the stop says what the guest did.
 */
static int nisv_exit(struct kvmkit_vcpu *v, struct kvm_run *run, void *opaque)
{
	char detail[256];

	/* The registers: kvmkit run prints every vCPU's for this stop. */
	snprintf(detail, sizeof(detail),
		 "vCPU %u: MMIO access at 0x%llx that KVM cannot decode (no syndrome: e.g. a "
		 "load/store pair to a device)",
		 kvmkit_vcpu_id(v), (unsigned long long)run->arm_nisv.fault_ipa);
	kvmkit_vm_request_stop(kvmkit_vcpu_vm(v), KVMKIT_STOP_UNHANDLED_EXIT, 0, detail);
	return -1;
}

int kvmk_arch_vm_init(struct kvmkit_vm *vm, struct kvmk_arch_vm *a)
{
	int r;

	if (kvmkit_vm_check_cap(vm, KVM_CAP_ARM_NISV_TO_USER) > 0) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_ARM_NISV_TO_USER };

		if (ioctl(kvmkit_vm_fd(vm), KVM_ENABLE_CAP, &cap) < 0)
			return kvmk_err_ioctl("KVM_ENABLE_CAP", errno, "KVM_CAP_ARM_NISV_TO_USER");
		r = kvmkit_vm_add_exit_handler(vm, KVM_EXIT_ARM_NISV, nisv_exit, NULL);
		if (r)
			return r;
	}

	if (ioctl(kvmkit_vm_fd(vm), KVM_ARM_PREFERRED_TARGET, &a->init) < 0)
		return kvmk_err_ioctl("KVM_ARM_PREFERRED_TARGET", errno, NULL);
	/* PSCI 0.2 or later (the kernel's newest): CPU_ON, SYSTEM_OFF, ... */
	if (kvmkit_vm_check_cap(vm, KVM_CAP_ARM_PSCI_0_2) <= 0)
		return kvmk_err_unsupported("kvmkit_vm_create", ENOTSUP,
					    "KVM_CAP_ARM_PSCI_0_2 (PSCI 0.2 in the kernel)");
	a->init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	/* Optional features: only when asked for, and refused, saying which
	 * capability is missing, where KVM cannot give them. */
	if (a->pmu && kvmkit_vm_check_cap(vm, KVM_CAP_ARM_PMU_V3) <= 0)
		return kvmk_err_unsupported("kvmkit_vm_create", ENOTSUP,
					    "pmu: this host's KVM has no guest PMU "
					    "(KVM_CAP_ARM_PMU_V3)");
	if (a->sve && kvmkit_vm_check_cap(vm, KVM_CAP_ARM_SVE) <= 0)
		return kvmk_err_unsupported(
			"kvmkit_vm_create", ENOTSUP,
			"sve: this host's KVM has no guest SVE (KVM_CAP_ARM_SVE)");
	if (a->pmu)
		a->init.features[0] |= 1u << KVM_ARM_VCPU_PMU_V3;
	if (a->sve)
		a->init.features[0] |= 1u << KVM_ARM_VCPU_SVE;
	r = kvmk_vm_add_ram(vm, KVMKIT_ARM64_RAM_BASE, kvmkit_vm_config(vm)->mem_size, 0);
	return r < 0 ? r : 0;
}

void kvmk_arch_vm_free(struct kvmk_arch_vm *a)
{
	if (!a)
		return;
	free(a->mpidr);
	free(a);
}
