// SPDX-License-Identifier: MIT
/*
 * The vGIC's ITS and MSIs (a GICv3's, where the host has one: arm-vgic-its.rst),
 * PPIs per vCPU, and probing which vGICs the host creates. The GIC itself
 * is irqchip_vgic.c's.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "vgic"
#include "core/internal.h"
#include "arch/arm64/vgic.h"
#include <kvmkit/arm64.h>

int kvmk_vgic_dev_attr(int fd, uint32_t group, uint64_t attr, void *val, const char *what)
{
	struct kvm_device_attr a = {
		.group = group,
		.attr = attr,
		.addr = (uint64_t)(uintptr_t)val,
	};

	if (ioctl(fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		return kvmk_err_ioctl("KVM_SET_DEVICE_ATTR", errno, "%s", what);
	return 0;
}

/* A GICv3's ITS where the host has one (arm-vgic-its.rst): created and
 * placed now, initialised with the vGIC. Its absence is not an error:
 * MSIs are then refused. */
int kvmk_vgic_create_its(struct vgic *g)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_ARM_VGIC_ITS };
	uint64_t base = KVMKIT_ARM64_GIC_ITS;

	if (ioctl(g->vm_fd, KVM_CREATE_DEVICE, &cd) < 0) {
		kvmk_debug("no ITS (%s): MSIs unavailable", strerror(errno));
		return 0;
	}
	g->its_fd = (int)cd.fd;
	return kvmk_vgic_dev_attr(g->its_fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE,
				  &base, "ITS address");
}

int kvmk_vgic_signal_msi(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data,
			 uint32_t flags, uint32_t devid, bool *failed)
{
	struct vgic *g = chip->priv;
	struct kvm_msi msi = {
		.address_lo = (uint32_t)address,
		.address_hi = (uint32_t)(address >> 32),
		.data = data,
		.flags = flags,
		.devid = devid,
	};
	int r;

	*failed = true;
	if (g->its_fd < 0)
		return kvmk_err_unsupported("kvmkit_signal_msi", ENOTSUP,
					    "MSIs on arm64 need an ITS (GICv%d%s)", g->version,
					    g->version == 3 ? ", the host has none" : "");
	if (!kvmk_vgic_ready(g))
		return kvmk_err_state("vgic", "not initialised", "every vCPU created",
				      "kvmkit_signal_msi");
	r = ioctl(g->vm_fd, KVM_SIGNAL_MSI, &msi);
	if (r < 0)
		return kvmk_err_ioctl("KVM_SIGNAL_MSI", errno, "address 0x%llx data 0x%x devid %u",
				      (unsigned long long)address, data, devid);
	*failed = false;
	return r;
}

int kvmkit_irqchip_ppi(struct kvmkit_irqchip *chip, unsigned int vcpu, uint32_t intid, bool level)
{
	const char *op = "kvmkit_irqchip_ppi";
	struct kvm_irq_level il = { .level = level };
	struct vgic *g;

	if (!chip || chip->ops != &kvmk_arm64_vgic)
		return kvmk_err_param(op, "chip", "not a vGIC", "%p", (void *)chip);
	g = chip->priv;
	if (intid < 16 || intid > 31)
		return kvmk_err_param(op, "intid", "a PPI is 16..31", "%u", intid);
	/* The map's 123 vCPUs fit the 8-bit vcpu_index field. */
	if (vcpu >= kvmkit_vm_config(chip->vm)->vcpus)
		return kvmk_err_param(op, "vcpu", "no such vCPU", "%u", vcpu);
	if (!kvmk_vgic_ready(g))
		return kvmk_err_state("vgic", "not initialised", "every vCPU created", op);
	il.irq = (KVM_ARM_IRQ_TYPE_PPI << KVM_ARM_IRQ_TYPE_SHIFT) |
		 (vcpu << KVM_ARM_IRQ_VCPU_SHIFT) | intid;
	if (ioctl(g->vm_fd, KVM_IRQ_LINE, &il) < 0)
		return kvmk_err_ioctl("KVM_IRQ_LINE", errno, "PPI %u of vCPU %u level %d", intid,
				      vcpu, level);
	return 0;
}

bool kvmkit_irqchip_has_its(const struct kvmkit_irqchip *chip)
{
	return chip && chip->ops == &kvmk_arm64_vgic && ((struct vgic *)chip->priv)->its_fd >= 0;
}

int kvmkit_arm64_gic_probe(struct kvmkit_vm *vm, bool *v2, bool *v3, bool *its)
{
	struct kvm_create_device cd = { .flags = KVM_CREATE_DEVICE_TEST };

	cd.type = KVM_DEV_TYPE_ARM_VGIC_V3;
	*v3 = ioctl(kvmkit_vm_fd(vm), KVM_CREATE_DEVICE, &cd) == 0;
	cd.type = KVM_DEV_TYPE_ARM_VGIC_V2;
	*v2 = ioctl(kvmkit_vm_fd(vm), KVM_CREATE_DEVICE, &cd) == 0;
	cd.type = KVM_DEV_TYPE_ARM_VGIC_ITS;
	*its = ioctl(kvmkit_vm_fd(vm), KVM_CREATE_DEVICE, &cd) == 0;
	return 0;
}
