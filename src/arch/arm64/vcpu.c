// SPDX-License-Identifier: MIT
/*
 * arm64 vCPUs: KVM_ARM_VCPU_INIT with the VM's target and PSCI 0.2+ at
 * creation (every vCPU but 0 powered off: the guest starts them with PSCI
 * CPU_ON), ONE_REG register access, MPIDR, dumps.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "vcpu"
#include "core/internal.h"
#include "kvm/arch.h"
#include "arch/arm64/arm64_vm.h"
#include <kvmkit/arm64.h>
#include <kvmkit/irq.h>

#define CORE_REG(field) \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(field))
#define REG_PC CORE_REG(regs.pc)
#define REG_PSTATE CORE_REG(regs.pstate)
#define REG_SP_EL1 CORE_REG(sp_el1)
#define REG_ELR_EL1 CORE_REG(elr_el1)
#define REG_X(n) CORE_REG(regs.regs[n])
#define REG_MPIDR ARM64_SYS_REG(3, 0, 0, 0, 5)
#define REG_ESR_EL1 ARM64_SYS_REG(3, 0, 5, 2, 0)
#define REG_FAR_EL1 ARM64_SYS_REG(3, 0, 6, 0, 0)
#define REG_VBAR_EL1 ARM64_SYS_REG(3, 0, 12, 0, 0)

int kvmk_arch_vcpu_init(struct kvmkit_vcpu *v, struct kvmk_arch_vm *a)
{
	struct kvm_vcpu_init init = a->init;

	/* The boot vCPU runs; the others wait for PSCI CPU_ON. */
	if (kvmkit_vcpu_id(v) != 0)
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	if (ioctl(kvmkit_vcpu_fd(v), KVM_ARM_VCPU_INIT, &init) < 0)
		return kvmk_err_ioctl("KVM_ARM_VCPU_INIT", errno, "vcpu %u target %u",
				      kvmkit_vcpu_id(v), init.target);
	/* SVE's vector lengths are KVM's default (all the host has); the
	 * vCPU cannot run, nor list its registers, before this. */
	if (a->sve) {
		int feature = KVM_ARM_VCPU_SVE;

		if (ioctl(kvmkit_vcpu_fd(v), KVM_ARM_VCPU_FINALIZE, &feature) < 0)
			return kvmk_err_ioctl("KVM_ARM_VCPU_FINALIZE", errno, "vcpu %u SVE",
					      kvmkit_vcpu_id(v));
	}
	/* Without a vGIC the PMU has no interrupt and is set up now; with
	 * one, after the vGIC's init (irqchip_vgic.c). */
	if (a->pmu && !kvmkit_vm_irqchip(kvmkit_vcpu_vm(v))) {
		int r = kvmk_arm64_pmu_init(v, false);

		if (r)
			return r;
	}
	/* KVM derives it from the vCPU id; kept for PSCI targets and GIC
	 * routing, readable while the vCPU runs. */
	return kvmkit_vcpu_get_one_reg(v, REG_MPIDR, &a->mpidr[kvmkit_vcpu_id(v)]);
}

int kvmkit_vcpu_get_one_reg(struct kvmkit_vcpu *v, uint64_t id, uint64_t *val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uint64_t)(uintptr_t)val };

	if ((id & KVM_REG_SIZE_MASK) != KVM_REG_SIZE_U64)
		return kvmk_err_param("kvmkit_vcpu_get_one_reg", "id", "not a 64-bit register",
				      "0x%llx", (unsigned long long)id);
	if (ioctl(kvmkit_vcpu_fd(v), KVM_GET_ONE_REG, &reg) < 0)
		return kvmk_err_ioctl("KVM_GET_ONE_REG", errno, "vcpu %u reg 0x%llx",
				      kvmkit_vcpu_id(v), (unsigned long long)id);
	return 0;
}

int kvmkit_vcpu_set_one_reg(struct kvmkit_vcpu *v, uint64_t id, uint64_t val)
{
	struct kvm_one_reg reg = { .id = id, .addr = (uint64_t)(uintptr_t)&val };

	if ((id & KVM_REG_SIZE_MASK) != KVM_REG_SIZE_U64)
		return kvmk_err_param("kvmkit_vcpu_set_one_reg", "id", "not a 64-bit register",
				      "0x%llx", (unsigned long long)id);
	if (ioctl(kvmkit_vcpu_fd(v), KVM_SET_ONE_REG, &reg) < 0)
		return kvmk_err_ioctl("KVM_SET_ONE_REG", errno, "vcpu %u reg 0x%llx",
				      kvmkit_vcpu_id(v), (unsigned long long)id);
	return 0;
}

static int pmu_attr(struct kvmkit_vcpu *v, uint64_t attr, const void *val, const char *what)
{
	struct kvm_device_attr a = { .group = KVM_ARM_VCPU_PMU_V3_CTRL,
				     .attr = attr,
				     .addr = (uint64_t)(uintptr_t)val };

	if (ioctl(kvmkit_vcpu_fd(v), KVM_SET_DEVICE_ATTR, &a) < 0)
		return kvmk_err_ioctl("KVM_SET_DEVICE_ATTR", errno, "vcpu %u PMU %s",
				      kvmkit_vcpu_id(v), what);
	return 0;
}

int kvmk_arm64_pmu_init(struct kvmkit_vcpu *v, bool with_vgic)
{
	int irq = KVMKIT_ARM64_PMU_PPI;
	int r = with_vgic ? pmu_attr(v, KVM_ARM_VCPU_PMU_V3_IRQ, &irq, "IRQ") : 0;

	return r ? r : pmu_attr(v, KVM_ARM_VCPU_PMU_V3_INIT, NULL, "INIT");
}

uint64_t kvmkit_vcpu_mpidr(struct kvmkit_vcpu *v)
{
	struct kvmk_arch_vm *a = kvmk_vm_arch(kvmkit_vcpu_vm(v));

	return kvmkit_vcpu_id(v) < a->nr_vcpus ? a->mpidr[kvmkit_vcpu_id(v)] : 0;
}

int kvmkit_arm64_vcpu_set_entry(struct kvmkit_vcpu *v, uint64_t pc, const uint64_t *x,
				unsigned int n)
{
	int r;

	if (n > 8)
		return kvmk_err_param("kvmkit_arm64_vcpu_set_entry", "n", "at most 8 registers",
				      "%u", n);
	r = kvmkit_vcpu_set_one_reg(v, REG_PC, pc);
	for (unsigned int i = 0; !r && i < n; i++)
		r = kvmkit_vcpu_set_one_reg(v, REG_X(i), x[i]);
	return r;
}

int kvmkit_vcpu_dump(struct kvmkit_vcpu *v, char *buf, size_t len)
{
	static const struct {
		const char *name;
		uint64_t id;
	} regs[] = {
		{ "pc", REG_PC },
		{ "pstate", REG_PSTATE },
		{ "sp_el1", REG_SP_EL1 },
		{ "elr_el1", REG_ELR_EL1 },
		{ "esr_el1", REG_ESR_EL1 },
		{ "far_el1", REG_FAR_EL1 },
		{ "vbar_el1", REG_VBAR_EL1 },
		{ "x0", REG_X(0) },
		{ "x1", REG_X(1) },
		{ "x2", REG_X(2) },
		{ "x3", REG_X(3) },
		{ "x30", REG_X(30) },
	};
	size_t off = 0;

	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < KVMKIT_ARRAY_SIZE(regs) && off < len; i++) {
		struct kvm_one_reg reg;
		uint64_t val;
		int w;

		reg.id = regs[i].id;
		reg.addr = (uint64_t)(uintptr_t)&val;
		if (ioctl(kvmkit_vcpu_fd(v), KVM_GET_ONE_REG, &reg) < 0)
			w = snprintf(buf + off, len - off, "%s%s=?", off ? " " : "", regs[i].name);
		else
			w = snprintf(buf + off, len - off, "%s%s=%016llx", off ? " " : "",
				     regs[i].name, (unsigned long long)val);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return (int)(off < len ? off : len ? len - 1 : 0);
}
