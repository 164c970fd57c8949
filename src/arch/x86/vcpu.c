// SPDX-License-Identifier: MIT
/* x86 vCPUs: register access, the CPU model applied at creation, dumps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "vcpu"
#include "core/internal.h"
#include "kvm/arch.h"
#include "arch/x86/x86_vm.h"
#include <kvmkit/irq.h>

static int vcpu_ioctl(struct kvmkit_vcpu *v, unsigned long req, void *arg, const char *name)
{
	if (ioctl(kvmkit_vcpu_fd(v), req, arg) < 0)
		return kvmk_err_ioctl(name, errno, "vcpu %u", kvmkit_vcpu_id(v));
	return 0;
}

int kvmkit_vcpu_get_regs(struct kvmkit_vcpu *v, struct kvm_regs *regs)
{
	return vcpu_ioctl(v, KVM_GET_REGS, regs, "KVM_GET_REGS");
}

int kvmkit_vcpu_set_regs(struct kvmkit_vcpu *v, const struct kvm_regs *regs)
{
	return vcpu_ioctl(v, KVM_SET_REGS, (void *)regs, "KVM_SET_REGS");
}

int kvmkit_vcpu_get_sregs(struct kvmkit_vcpu *v, struct kvm_sregs *sregs)
{
	return vcpu_ioctl(v, KVM_GET_SREGS, sregs, "KVM_GET_SREGS");
}

int kvmkit_vcpu_set_sregs(struct kvmkit_vcpu *v, const struct kvm_sregs *sregs)
{
	return vcpu_ioctl(v, KVM_SET_SREGS, (void *)sregs, "KVM_SET_SREGS");
}

static int fetch_supported_cpuid(struct kvmkit_vm *vm, struct kvmk_arch_vm *a)
{
	int sfd = kvmkit_system_fd(kvmkit_vm_system(vm));

	for (unsigned int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return kvmk_err_resource("KVM_GET_SUPPORTED_CPUID", ENOMEM, NULL);
		c->nent = n;
		if (ioctl(sfd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			a->supported_cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return kvmk_err_ioctl("KVM_GET_SUPPORTED_CPUID", errno, NULL);
	}
	return kvmk_err_resource("KVM_GET_SUPPORTED_CPUID", E2BIG, "more than 4096 entries");
}

int kvmkit_vcpu_set_default_cpuid(struct kvmkit_vcpu *v)
{
	struct kvmkit_vm *vm = kvmkit_vcpu_vm(v);
	struct kvmk_arch_vm *a = kvmk_vm_arch(vm);
	struct kvmk_cpu_model model;
	struct kvm_cpuid2 *c;
	size_t sz;
	int r;

	if (!a->supported_cpuid) {
		r = fetch_supported_cpuid(vm, a);
		if (r)
			return r;
	}
	sz = sizeof(*c) + a->supported_cpuid->nent * sizeof(c->entries[0]);
	c = malloc(sz);
	if (!c)
		return kvmk_err_resource("kvmkit_vcpu_set_default_cpuid", ENOMEM, NULL);
	memcpy(c, a->supported_cpuid, sz);
	model = (struct kvmk_cpu_model){
		.lapic = kvmkit_vm_irqchip(vm) != NULL,
		.tsc_deadline = a->tsc_deadline,
		.flags = a->cpu_flags,
	};
	kvmk_cpuid_apply(c, &model, kvmkit_vcpu_id(v));
	r = vcpu_ioctl(v, KVM_SET_CPUID2, c, "KVM_SET_CPUID2");
	free(c);
	return r;
}

int kvmk_arch_vcpu_init(struct kvmkit_vcpu *v, struct kvmk_arch_vm *a)
{
	return kvmkit_vcpu_set_default_cpuid(v);
}

int kvmkit_vcpu_dump(struct kvmkit_vcpu *v, char *buf, size_t len)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	int fd = kvmkit_vcpu_fd(v);

	if (ioctl(fd, KVM_GET_REGS, &r) < 0 || ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return snprintf(buf, len, "registers unavailable (%s)", strerror(errno));
	return snprintf(buf, len,
			"rip=%016llx rsp=%016llx rflags=%08llx rax=%016llx rbx=%016llx "
			"rcx=%016llx rdx=%016llx rsi=%016llx rdi=%016llx rbp=%016llx "
			"cs=%04x(l=%u,dpl=%u) ss=%04x cr0=%08llx cr2=%016llx cr3=%016llx "
			"cr4=%08llx efer=%llx",
			r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
			s.cs.selector, s.cs.l, s.cs.dpl, s.ss.selector, s.cr0, s.cr2, s.cr3, s.cr4,
			s.efer);
}
