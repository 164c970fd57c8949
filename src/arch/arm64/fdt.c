// SPDX-License-Identifier: MIT
/* The description of a live arm64 VM for its device tree (src/boot/arm64_fdt.c). */
#include <string.h>

#define KVMK_LOG_MODULE "fdt"
#include "core/internal.h"
#include "kvm/arch.h"
#include "arch/arm64/arm64_vm.h"
#include <kvmkit/arm64.h>
#include <kvmkit/irq.h>

int kvmkit_arm64_platform_of(struct kvmkit_vm *vm, struct kvmkit_arm64_platform *out)
{
	struct kvmk_arch_vm *a = kvmk_vm_arch(vm);
	struct kvmkit_irqchip *chip = kvmkit_vm_irqchip(vm);
	unsigned int n = kvmkit_vm_config(vm)->vcpus;

	if (!kvmkit_irqchip_gic_version(chip))
		return kvmk_err_state("vm", "without a vGIC", "a vGIC", "arm64_platform_of");
	if (kvmkit_vm_vcpu_count(vm) != n)
		return kvmk_err_state("vm", "missing vCPUs", "all vCPUs created",
				      "arm64_platform_of");
	memset(out, 0, sizeof(*out));
	out->vcpus = n;
	out->mpidr = a->mpidr;
	out->mem_base = KVMKIT_ARM64_RAM_BASE;
	out->mem_size = kvmkit_vm_ram_size(vm);
	out->gic_version = (unsigned int)kvmkit_irqchip_gic_version(chip);
	out->its = kvmkit_irqchip_has_its(chip);
	out->spis = kvmkit_irqchip_pins(chip);
	out->uart_base = KVMKIT_ARM64_UART;
	out->uart_gsi = KVMKIT_ARM64_UART_GSI;
	out->pmu = a->pmu;
	out->devs = a->devs;
	out->ndevs = a->ndevs;
	return 0;
}

int kvmk_arm64_fdt_add_dev(struct kvmkit_vm *vm, const struct kvmkit_arm64_mmio_dev *d)
{
	struct kvmk_arch_vm *a = kvmk_vm_arch(vm);

	if (a->ndevs >= KVMKIT_ARM64_FDT_MAX_DEVS)
		return kvmk_err_resource("arm64_fdt_add_dev", ENOSPC,
					 "more than %u devices in the device tree",
					 KVMKIT_ARM64_FDT_MAX_DEVS);
	a->devs[a->ndevs++] = *d;
	return 0;
}
