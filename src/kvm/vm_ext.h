/* SPDX-License-Identifier: MIT */
/*
 * What other modules of the library may ask of the VM layer beyond the
 * public API (the layout of the VM and vCPU structures stays private to
 * src/kvm/). Internal.
 */
#ifndef KVMKIT_KVM_VM_EXT_H
#define KVMKIT_KVM_VM_EXT_H

#include <kvmkit/vm.h>

struct kvmkit_irqchip;

/* Makes @chip the VM's irqchip (kvmkit_vm_irqchip) and registers @release
 * on the VM's teardown list. -EBUSY if one is set or a vCPU exists. */
int kvmk_vm_attach_irqchip(struct kvmkit_vm *vm, struct kvmkit_irqchip *chip,
			   kvmkit_teardown_fn release, void *opaque);
/* Called by kvmkit_vm_create_vcpu() once the last configured vCPU exists:
 * the irqchip's set-up that needs every vCPU (src/irq/irqchip.c). */
int kvmk_irqchip_vcpus_ready(struct kvmkit_irqchip *chip);
/* Removes every pre-run hook and exit handler registered with @opaque
 * (a component going away before the VM). Only while no vCPU thread runs
 * (the VM is CREATED or its threads are joined): the vCPU loop reads the
 * tables without a lock. */
void kvmk_vm_drop_hooks(struct kvmkit_vm *vm, void *opaque);

/* The vCPU whose thread calls this, or NULL (also kvm_internal.h). */
struct kvmkit_vcpu *kvmk_vcpu_self(void);

#endif
