// SPDX-License-Identifier: MIT
/* arm64 vCPUs: KVM_ARM_VCPU_INIT and register dumps come with issue 11. */
#include <stdio.h>

#define KVMK_LOG_MODULE "vcpu"
#include "core/internal.h"
#include "kvm/arch.h"

int kvmk_arch_vcpu_init(struct kvmkit_vcpu *v, struct kvmk_arch_vm *a)
{
	return 0;
}

int kvmkit_vcpu_dump(struct kvmkit_vcpu *v, char *buf, size_t len)
{
	return snprintf(buf, len, "vCPU %u (register dump not implemented on arm64 yet)",
			kvmkit_vcpu_id(v));
}
