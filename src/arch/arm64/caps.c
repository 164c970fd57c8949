// SPDX-License-Identifier: MIT
/* The arm64 capabilities `kvmkit caps` lists after the generic ones. */
#include <linux/kvm.h>

#include "core/internal.h"
#include "kvm/arch.h"

static const struct kvmkit_cap_info caps[] = {
	KVMK_CAP(ARM_PSCI_0_2, "arm64", "PSCI 0.2 in the kernel"),
	KVMK_CAP(ARM_VM_IPA_SIZE, "arm64", "largest guest physical address size (bits)"),
	KVMK_CAP(ARM_SVE, "arm64", "SVE for guests (off unless --cpu sve)"),
	KVMK_CAP(ARM_PTRAUTH_ADDRESS, "arm64", "pointer authentication (kvmkit leaves it off)"),
	KVMK_CAP(ARM_IRQ_LINE_LAYOUT_2, "arm64", "KVM_IRQ_LINE vcpu2_index for >256 vCPUs"),
	KVMK_CAP(ARM_PMU_V3, "arm64", "virtual PMUv3 (off unless --cpu pmu)"),
};

const struct kvmkit_cap_info *kvmk_arch_caps(size_t *count)
{
	*count = KVMKIT_ARRAY_SIZE(caps);
	return caps;
}
