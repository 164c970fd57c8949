// SPDX-License-Identifier: MIT
/*
 * arm64 VM set-up: RAM at 2 GiB (below it: the GIC, UART and virtio
 * windows of the platform to come). Nothing else is needed before vCPUs.
 */
#include <stdlib.h>

#define KVMK_LOG_MODULE "vm"
#include "core/internal.h"
#include "kvm/arch.h"

#define ARM64_RAM_BASE 0x80000000ull

struct kvmk_arch_vm {
	int unused;
};

enum kvmkit_arch kvmk_arch_host(void)
{
	return KVMKIT_ARCH_ARM64;
}

int kvmk_arch_vm_prepare(const struct kvmkit_vm_config *cfg, struct kvmk_arch_vm **out)
{
	if (cfg->cpu_flags && cfg->cpu_flags[0])
		return kvmk_err_unsupported("kvmkit_vm_create", ENOTSUP,
					    "CPU feature flags on arm64");
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : kvmk_err_resource("kvmkit_vm_create", ENOMEM, NULL);
}

int kvmk_arch_vm_init(struct kvmkit_vm *vm, struct kvmk_arch_vm *a)
{
	int r = kvmk_vm_add_ram(vm, ARM64_RAM_BASE, kvmkit_vm_config(vm)->mem_size, 0);

	return r < 0 ? r : 0;
}

void kvmk_arch_vm_free(struct kvmk_arch_vm *a)
{
	free(a);
}
