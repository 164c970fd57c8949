// SPDX-License-Identifier: MIT
/*
 * x86 VM set-up: the TSS and identity-map pages VMX needs for real mode,
 * RAM split around the MMIO hole below 4 GiB, and the CPU model's inputs
 * (KVM's supported CPUID, fetched once; the user's +/- feature flags).
 */
#include <stdlib.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "vm"
#include "core/internal.h"
#include "kvm/arch.h"
#include "arch/x86/x86_vm.h"

enum kvmkit_arch kvmk_arch_host(void)
{
	return KVMKIT_ARCH_X86_64;
}

int kvmk_arch_vm_prepare(const struct kvmkit_vm_config *cfg, struct kvmk_arch_vm **out)
{
	struct kvmk_arch_vm *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return kvmk_err_resource("kvmkit_vm_create", ENOMEM, NULL);
	r = kvmk_cpu_flags_parse(cfg->cpu_flags, &a->cpu_flags);
	if (r) {
		free(a);
		return r;
	}
	*out = a;
	return 0;
}

int kvmk_arch_vm_type(const struct kvmkit_vm_config *cfg, struct kvmkit_system *sys,
		      struct kvmk_arch_vm *a)
{
	return 0;
}

int kvmk_arch_vm_init(struct kvmkit_vm *vm, struct kvmk_arch_vm *a)
{
	const struct kvmkit_vm_config *cfg = kvmkit_vm_config(vm);
	int fd = kvmkit_vm_fd(vm);
	uint64_t low;
	int r;

	/* Intel VMX needs these for real-mode emulation; before any vCPU. */
	if (ioctl(fd, KVM_SET_TSS_ADDR, (unsigned long)cfg->tss_addr) < 0)
		return kvmk_err_ioctl("KVM_SET_TSS_ADDR", errno, "0x%llx",
				      (unsigned long long)cfg->tss_addr);
	if (kvmkit_vm_check_cap(vm, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		uint64_t addr = cfg->identity_map_addr;

		if (ioctl(fd, KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
			return kvmk_err_ioctl("KVM_SET_IDENTITY_MAP_ADDR", errno, "0x%llx",
					      (unsigned long long)addr);
	}
	a->tsc_deadline = kvmkit_vm_check_cap(vm, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	/* RAM from 0 up to the MMIO hole, the rest from 4 GiB. */
	low = cfg->mem_size < KVMKIT_X86_MMIO_HOLE ? cfg->mem_size : KVMKIT_X86_MMIO_HOLE;
	r = kvmk_vm_add_ram(vm, 0, low, 0);
	if (r < 0)
		return r;
	if (cfg->mem_size > low) {
		r = kvmk_vm_add_ram(vm, 1ull << 32, cfg->mem_size - low, low);
		if (r < 0)
			return r;
	}
	return 0;
}

void kvmk_arch_vm_free(struct kvmk_arch_vm *a)
{
	if (!a)
		return;
	free(a->supported_cpuid);
	free(a);
}
