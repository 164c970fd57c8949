/* SPDX-License-Identifier: MIT */
/* The x86 per-VM state behind struct kvmk_arch_vm (vm.c, vcpu.c). */
#ifndef KVMKIT_ARCH_X86_VM_H
#define KVMKIT_ARCH_X86_VM_H

#include <stdbool.h>
#include <linux/kvm.h>

#include "arch/x86/cpuid.h"

struct kvmk_arch_vm {
	struct kvm_cpuid2 *supported_cpuid; /* fetched at the first vCPU */
	struct kvmk_cpu_flags cpu_flags; /* the config's +/- features */
	bool tsc_deadline; /* KVM_CAP_TSC_DEADLINE_TIMER */
};

#endif
