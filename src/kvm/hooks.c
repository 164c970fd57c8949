// SPDX-License-Identifier: MIT
/*
 * The VM's extension points: pre-run hooks, exit handlers by reason, and
 * the teardown list. They let components above the VM layer (an irqchip
 * back end, devices) attach per-run work and release themselves with the
 * VM, without this layer knowing about them. Registration happens while the
 * VM is CREATED, so the vCPU threads read the tables without a lock.
 */
#include <string.h>

#define KVMK_LOG_MODULE "vm"
#include "core/internal.h"
#include "kvm/kvm_internal.h"
#include "kvm/vm_ext.h"
#include <kvmkit/irq.h>

static int check_created(struct kvmkit_vm *vm, const char *op)
{
	if (vm->state != KVMKIT_VM_CREATED)
		return kvmk_err_state("vm", kvmkit_vm_state_name(vm->state), "created", op);
	return 0;
}

int kvmkit_vm_add_teardown(struct kvmkit_vm *vm, kvmkit_teardown_fn fn, void *opaque)
{
	int r;

	pthread_mutex_lock(&vm->lock);
	r = check_created(vm, "add_teardown");
	if (!r && vm->nr_teardown == KVMK_MAX_TEARDOWN)
		r = kvmk_err_resource("kvmkit_vm_add_teardown", ENOSPC, "%d entries",
				      KVMK_MAX_TEARDOWN);
	if (!r)
		vm->teardown[vm->nr_teardown++] = (struct kvmk_teardown){ fn, opaque };
	pthread_mutex_unlock(&vm->lock);
	return r;
}

void kvmk_vm_run_teardown(struct kvmkit_vm *vm)
{
	while (vm->nr_teardown) {
		struct kvmk_teardown t = vm->teardown[--vm->nr_teardown];

		t.fn(t.opaque);
	}
}

int kvmkit_vm_add_exit_handler(struct kvmkit_vm *vm, uint32_t exit_reason, kvmkit_exit_handler fn,
			       void *opaque)
{
	int r;

	switch (exit_reason) {
	case KVM_EXIT_IO:
	case KVM_EXIT_MMIO:
	case KVM_EXIT_HLT:
	case KVM_EXIT_INTR:
	case KVM_EXIT_SHUTDOWN:
	case KVM_EXIT_FAIL_ENTRY:
	case KVM_EXIT_INTERNAL_ERROR:
	case KVM_EXIT_SYSTEM_EVENT:
		/* The vCPU loop handles these itself and would never call it. */
		return kvmk_err_param("kvmkit_vm_add_exit_handler", "exit_reason",
				      "handled by the vCPU loop (use the buses or the stop info)",
				      "%u", exit_reason);
	default:
		break;
	}
	pthread_mutex_lock(&vm->lock);
	r = check_created(vm, "add_exit_handler");
	for (unsigned int i = 0; !r && i < vm->nr_exit_handlers; i++)
		if (vm->exit_handlers[i].reason == exit_reason)
			r = kvmk_err_param("kvmkit_vm_add_exit_handler", "exit_reason",
					   "already has a handler", "%u", exit_reason);
	if (!r && vm->nr_exit_handlers == KVMK_MAX_EXIT_HANDLERS)
		r = kvmk_err_resource("kvmkit_vm_add_exit_handler", ENOSPC, "%d handlers",
				      KVMK_MAX_EXIT_HANDLERS);
	if (!r)
		vm->exit_handlers[vm->nr_exit_handlers++] =
			(struct kvmk_exit_handler){ exit_reason, fn, opaque };
	pthread_mutex_unlock(&vm->lock);
	return r;
}

const struct kvmk_exit_handler *kvmk_vm_exit_handler(struct kvmkit_vm *vm, uint32_t reason)
{
	for (unsigned int i = 0; i < vm->nr_exit_handlers; i++)
		if (vm->exit_handlers[i].reason == reason)
			return &vm->exit_handlers[i];
	return NULL;
}

static void vcpu_add_hook(struct kvmkit_vcpu *v, const struct kvmk_pre_run *h)
{
	if (h->vcpu_id < 0 || (unsigned int)h->vcpu_id == v->id)
		v->pre_run[v->nr_pre_run++] = *h;
}

int kvmkit_vm_add_pre_run_hook(struct kvmkit_vm *vm, int vcpu_id, kvmkit_pre_run_hook fn,
			       void *opaque)
{
	struct kvmk_pre_run h = { fn, opaque, vcpu_id };
	int r;

	pthread_mutex_lock(&vm->lock);
	r = check_created(vm, "add_pre_run_hook");
	/* Each vCPU's copy has the same capacity as the VM's list. */
	if (!r && vm->nr_pre_run == KVMK_MAX_PRE_RUN)
		r = kvmk_err_resource("kvmkit_vm_add_pre_run_hook", ENOSPC, "%d hooks",
				      KVMK_MAX_PRE_RUN);
	if (!r) {
		vm->pre_run[vm->nr_pre_run++] = h;
		for (unsigned int i = 0; i < vm->cfg.vcpus; i++)
			if (vm->vcpus[i])
				vcpu_add_hook(vm->vcpus[i], &h);
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

void kvmk_vcpu_take_hooks(struct kvmkit_vcpu *v)
{
	v->nr_pre_run = 0;
	for (unsigned int i = 0; i < v->vm->nr_pre_run; i++)
		vcpu_add_hook(v, &v->vm->pre_run[i]);
}

static unsigned int drop_pre_run(struct kvmk_pre_run *tab, unsigned int n, void *opaque)
{
	unsigned int j = 0;

	for (unsigned int i = 0; i < n; i++)
		if (tab[i].opaque != opaque)
			tab[j++] = tab[i];
	return j;
}

void kvmk_vm_drop_hooks(struct kvmkit_vm *vm, void *opaque)
{
	unsigned int j = 0;

	pthread_mutex_lock(&vm->lock);
	vm->nr_pre_run = drop_pre_run(vm->pre_run, vm->nr_pre_run, opaque);
	for (unsigned int i = 0; i < vm->cfg.vcpus; i++)
		if (vm->vcpus[i])
			vm->vcpus[i]->nr_pre_run = drop_pre_run(vm->vcpus[i]->pre_run,
								vm->vcpus[i]->nr_pre_run, opaque);
	for (unsigned int i = 0; i < vm->nr_exit_handlers; i++)
		if (vm->exit_handlers[i].opaque != opaque)
			vm->exit_handlers[j++] = vm->exit_handlers[i];
	vm->nr_exit_handlers = j;
	pthread_mutex_unlock(&vm->lock);
}

int kvmk_vm_attach_irqchip(struct kvmkit_vm *vm, struct kvmkit_irqchip *chip,
			   kvmkit_teardown_fn release, void *opaque)
{
	int r;

	pthread_mutex_lock(&vm->lock);
	if (vm->irqchip)
		r = kvmk_err_state("irqchip", "attached", "not yet attached", "attach_irqchip");
	else if (vm->nr_created)
		r = kvmk_err_state("vm", "has vCPUs", "no vCPU created yet", "attach_irqchip");
	else
		r = check_created(vm, "attach_irqchip");
	if (!r && vm->nr_teardown == KVMK_MAX_TEARDOWN)
		r = kvmk_err_resource("attach_irqchip", ENOSPC, "teardown list full");
	if (!r) {
		vm->irqchip = chip;
		vm->teardown[vm->nr_teardown++] = (struct kvmk_teardown){ release, opaque };
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

struct kvmkit_irqchip *kvmkit_vm_irqchip(struct kvmkit_vm *vm)
{
	return vm->irqchip;
}
