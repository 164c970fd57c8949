// SPDX-License-Identifier: MIT
/* The x86 back ends' common parts and the mode -> back end table. */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "irq"
#include "core/internal.h"
#include "arch/x86/irqchip_x86.h"

const struct kvmk_irqchip_ops *kvmk_arch_irqchip_ops(enum kvmkit_irqchip_mode mode)
{
	switch (mode) {
	case KVMKIT_IRQCHIP_KERNEL:
		return &kvmk_x86_kernel_irqchip;
	case KVMKIT_IRQCHIP_SPLIT:
		return &kvmk_x86_split_irqchip;
	default:
		return NULL;
	}
}

void kvmk_x86_gsi_layout(struct kvmkit_irqchip *chip)
{
	chip->pins = KVMKIT_IOAPIC_PINS;
	chip->line_lo = 16;
	chip->line_hi = KVMKIT_IOAPIC_PINS;
	chip->msi_lo = KVMKIT_IOAPIC_PINS;
}

static void add_irqchip_entry(struct kvm_irq_routing_entry *tab, unsigned int *n, uint32_t gsi,
			      uint32_t chip, uint32_t pin)
{
	struct kvm_irq_routing_entry *e = &tab[(*n)++];

	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

void kvmk_x86_default_routes(struct kvm_irq_routing_entry *tab, unsigned int *n, bool with_pic)
{
	*n = 0;
	for (uint32_t gsi = 0; gsi < KVMKIT_IOAPIC_PINS; gsi++) {
		if (gsi < 16 && with_pic)
			add_irqchip_entry(tab, n, gsi,
					  gsi < 8 ? KVMKIT_IRQCHIP_PIC_MASTER :
						    KVMKIT_IRQCHIP_PIC_SLAVE,
					  gsi % 8);
		add_irqchip_entry(tab, n, gsi, KVMKIT_IRQCHIP_IOAPIC, gsi);
	}
}

int kvmk_x86_check_route(uint32_t irqchip, uint32_t pin)
{
	const char *op = "kvmkit_irq_route_irqchip";

	if (irqchip > KVMKIT_IRQCHIP_IOAPIC)
		return kvmk_err_param(op, "irqchip",
				      "must be 0 (PIC master), 1 (PIC slave) or 2 (IOAPIC)", "%u",
				      irqchip);
	if (pin >= (irqchip == KVMKIT_IRQCHIP_IOAPIC ? KVMKIT_IOAPIC_PINS : 8u))
		return kvmk_err_param(op, "pin", "beyond the chip's pins", "%u (chip %u)", pin,
				      irqchip);
	return 0;
}

int kvmk_x86_set_gsi_routing(int vm_fd, const struct kvm_irq_routing_entry *a, unsigned int na,
			     const struct kvm_irq_routing_entry *b, unsigned int nb)
{
	struct kvm_irq_routing *tab;
	int r = 0;

	tab = calloc(1, sizeof(*tab) + (na + nb) * sizeof(tab->entries[0]));
	if (!tab)
		return kvmk_err_resource("KVM_SET_GSI_ROUTING", ENOMEM, "%u entries", na + nb);
	tab->nr = na + nb;
	if (na)
		memcpy(tab->entries, a, na * sizeof(*a));
	if (nb)
		memcpy(tab->entries + na, b, nb * sizeof(*b));
	if (ioctl(vm_fd, KVM_SET_GSI_ROUTING, tab) < 0)
		r = kvmk_err_ioctl("KVM_SET_GSI_ROUTING", errno, "%u entries", na + nb);
	free(tab);
	return r;
}

int kvmk_x86_send_msi(int vm_fd, uint64_t address, uint32_t data, uint32_t flags, uint32_t devid)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)address,
		.address_hi = (uint32_t)(address >> 32),
		.data = data,
		.flags = flags,
		.devid = devid,
	};
	int r = ioctl(vm_fd, KVM_SIGNAL_MSI, &msi);

	return r < 0 ? -errno : r;
}

int kvmk_x86_irqfd_deassign(int vm_fd, uint32_t gsi, int fd)
{
	struct kvm_irqfd d = { .fd = (uint32_t)fd, .gsi = gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN };

	/* EBADF: the owner closed the eventfd first; KVM released the irqfd
	 * with it, so it is gone either way. */
	if (ioctl(vm_fd, KVM_IRQFD, &d) < 0 && errno != EBADF)
		return kvmk_err_ioctl("KVM_IRQFD", errno, "deassign gsi %u fd %d", gsi, fd);
	return 0;
}

int kvmk_x86_signal_msi_op(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data,
			   uint32_t flags, uint32_t devid, bool *failed)
{
	int r = kvmk_x86_send_msi(kvmkit_vm_fd(chip->vm), address, data, flags, devid);

	if (r < 0) {
		*failed = true;
		return kvmk_err_ioctl("KVM_SIGNAL_MSI", -r, "address 0x%llx data 0x%x",
				      (unsigned long long)address, data);
	}
	return r;
}
