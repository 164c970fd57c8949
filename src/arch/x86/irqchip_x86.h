/* SPDX-License-Identifier: MIT */
/* What the two x86 irqchip back ends share (irqchip_x86.c). Internal. */
#ifndef KVMKIT_ARCH_X86_IRQCHIP_H
#define KVMKIT_ARCH_X86_IRQCHIP_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "irq/irq_backend.h"

extern const struct kvmk_irqchip_ops kvmk_x86_kernel_irqchip;
extern const struct kvmk_irqchip_ops kvmk_x86_split_irqchip;

/* 24 IOAPIC pins; device lines 16..23 (never a legacy ISA pin); MSIs
 * from 24 up. */
void kvmk_x86_gsi_layout(struct kvmkit_irqchip *chip);
/* The table KVM_CREATE_IRQCHIP installs: GSI 0-15 to the PIC pair (if
 * @with_pic) and the IOAPIC, 16-23 to the IOAPIC only. */
void kvmk_x86_default_routes(struct kvm_irq_routing_entry *tab, unsigned int *n, bool with_pic);
/* (chip 0/1 PIC master/slave pin < 8, chip 2 IOAPIC pin < 24) */
int kvmk_x86_check_route(uint32_t irqchip, uint32_t pin);
/* KVM_SET_GSI_ROUTING with @a[0..na) followed by @b[0..nb). */
int kvmk_x86_set_gsi_routing(int vm_fd, const struct kvm_irq_routing_entry *a, unsigned int na,
			     const struct kvm_irq_routing_entry *b, unsigned int nb);
/* KVM_SIGNAL_MSI: > 0 delivered, 0 blocked, -errno (nothing recorded). */
int kvmk_x86_send_msi(int vm_fd, uint64_t address, uint32_t data, uint32_t flags, uint32_t devid);
/* The signal_msi op of both back ends: KVM_SIGNAL_MSI on the chip's VM. */
int kvmk_x86_signal_msi_op(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data,
			   uint32_t flags, uint32_t devid, bool *failed);
/* KVM_IRQFD deassign; the error is recorded. */
int kvmk_x86_irqfd_deassign(int vm_fd, uint32_t gsi, int fd);

#endif
