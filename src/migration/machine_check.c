// SPDX-License-Identifier: MIT
/*
 * The checks a restore and a migration target make before they rebuild a
 * machine someone else described (a snapshot's state file, a source's
 * hello): the same architecture, vCPU count, RAM size and irqchip as the
 * configuration asks for, and then the same RAM regions in the VM built.
 */
#include <stdio.h>

#include "core/internal.h"
#include "kvm/arch.h"
#include "migration/machine_state.h"
#include <kvmkit/kvmkit.h>

static const char *chip_name(uint32_t v)
{
	return v ? kvmkit_irqchip_mode_name((enum kvmkit_irqchip_mode)(v - 1)) : "none";
}

int kvmk_saved_check_config(const struct kvmk_saved_machine *d,
			    const struct kvmkit_machine_config *cfg)
{
	uint32_t chip = cfg->irqchip ? 1 + (uint32_t)cfg->irqchip_mode : 0;
	char differs[48];

	snprintf(differs, sizeof(differs), "differs from the %s's", d->whose);
	if (d->arch != (uint32_t)kvmk_arch_host())
		return kvmk_err_format(d->op, "%s of architecture %u, this host is %u", d->kind,
				       d->arch, (unsigned int)kvmk_arch_host());
	if (d->vcpus != cfg->vm.vcpus)
		return kvmk_err_param(d->op, "vcpus", differs, "%u here, %u %s", cfg->vm.vcpus,
				      d->vcpus, d->place);
	if (d->mem_size != cfg->vm.mem_size)
		return kvmk_err_param(d->op, "mem_size", differs, "%llu here, %llu %s",
				      (unsigned long long)cfg->vm.mem_size,
				      (unsigned long long)d->mem_size, d->place);
	if (chip != d->irqchip)
		return kvmk_err_param(d->op, "irqchip", differs, "%s here, %s %s", chip_name(chip),
				      chip_name(d->irqchip), d->place);
	return 0;
}

int kvmk_saved_check_layout(const struct kvmk_saved_machine *d, struct kvmkit_vm *vm)
{
	struct kvmkit_mem_region reg[KVMK_SNAP_MAX_REGIONS];
	unsigned int n = kvmkit_vm_memory_regions(vm, reg, KVMK_SNAP_MAX_REGIONS);

	if (n != d->nr_regions)
		return kvmk_err_format(d->op, "%u memory regions %s, %u here", d->nr_regions,
				       d->place, n);
	for (unsigned int i = 0; i < n; i++)
		if (reg[i].gpa != d->gpa[i] || reg[i].size != d->size[i])
			return kvmk_err_format(d->op,
					       "memory region %u: gpa 0x%llx size 0x%llx %s, "
					       "gpa 0x%llx size 0x%llx here",
					       i, (unsigned long long)d->gpa[i],
					       (unsigned long long)d->size[i], d->place,
					       (unsigned long long)reg[i].gpa,
					       (unsigned long long)reg[i].size);
	return 0;
}
