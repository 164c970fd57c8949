// SPDX-License-Identifier: MIT
/* The x86 capabilities `kvmkit caps` lists after the generic ones. */
#include <linux/kvm.h>

#include "core/internal.h"
#include "kvm/arch.h"

static const struct kvmkit_cap_info caps[] = {
	KVMK_CAP(SET_TSS_ADDR, "x86", "KVM_SET_TSS_ADDR"),
	KVMK_CAP(SET_IDENTITY_MAP_ADDR, "x86", "KVM_SET_IDENTITY_MAP_ADDR"),
	KVMK_CAP(EXT_CPUID, "x86", "KVM_GET_SUPPORTED_CPUID"),
	KVMK_CAP(PIT2, "x86", "in-kernel i8254 PIT (KVM_CREATE_PIT2)"),
	KVMK_CAP(PIT_STATE2, "x86", "PIT state save/restore"),
	KVMK_CAP(REINJECT_CONTROL, "x86", "PIT tick reinjection control"),
	KVMK_CAP(SPLIT_IRQCHIP, "x86", "LAPIC in kernel, IOAPIC/PIC in userspace"),
	KVMK_CAP(X2APIC_API, "x86", "32-bit APIC ids in MSI routes"),
	KVMK_CAP(VCPU_EVENTS, "x86", "pending exception/interrupt/NMI state"),
	KVMK_CAP(XSAVE, "x86", "XSAVE state save/restore"),
	KVMK_CAP(TSC_DEADLINE_TIMER, "x86", "LAPIC TSC-deadline timer"),
	KVMK_CAP(HLT, "x86", "HLT exits"),
	KVMK_CAP(X86_DISABLE_EXITS, "x86", "disable HLT/MWAIT/PAUSE exits"),
	KVMK_CAP(EXCEPTION_PAYLOAD, "x86", "exception payloads in vCPU events"),
};

const struct kvmkit_cap_info *kvmk_arch_caps(size_t *count)
{
	*count = KVMKIT_ARRAY_SIZE(caps);
	return caps;
}
