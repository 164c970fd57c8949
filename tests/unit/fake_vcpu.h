/* SPDX-License-Identifier: MIT */
/*
 * A vCPU without KVM, for driving the exit decoder (kvmk_vcpu_handle_exit)
 * with synthetic kvm_run records: a VM struct built by hand (creating one
 * needs /dev/kvm) with real PIO and MMIO buses, one vCPU whose run area is
 * a heap buffer of the size KVM maps on x86, and fd -1 (so a register dump
 * says "registers unavailable"). Used by tests/unit/test_exits.c and
 * fuzz/fuzz_exits.c.
 */
#ifndef KVMKIT_FAKE_VCPU_H
#define KVMKIT_FAKE_VCPU_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <kvmkit/kvmkit.h>
#include "kvm/kvm_internal.h"

/* KVM_GET_VCPU_MMAP_SIZE on x86: the kvm_run page, the PIO data page and
 * the coalesced-MMIO ring page. */
#define FAKE_RUN_SIZE (3 * 4096)

struct fake_vcpu {
	struct kvmkit_vm vm;
	struct kvmkit_vcpu vcpu;
	struct kvmkit_vcpu *vcpus[1];
};

static inline int fake_vcpu_init(struct fake_vcpu *f)
{
	memset(f, 0, sizeof(*f));
	f->vm.cfg.vcpus = 1;
	f->vm.fd = -1;
	f->vm.run_size = FAKE_RUN_SIZE;
	f->vm.vcpus = f->vcpus;
	f->vm.nr_created = 1;
	f->vm.state = KVMKIT_VM_RUNNING;
	f->vm.stop.vcpu = -1;
	pthread_mutex_init(&f->vm.lock, NULL);
	pthread_cond_init(&f->vm.cond, NULL);
	if (kvmkit_bus_create(KVMKIT_BUS_PIO, &f->vm.pio) ||
	    kvmkit_bus_create(KVMKIT_BUS_MMIO, &f->vm.mmio))
		return -1;
	f->vcpus[0] = &f->vcpu;
	f->vcpu.vm = &f->vm;
	f->vcpu.pio = f->vm.pio; /* the vCPU's hot copies of the VM's buses */
	f->vcpu.mmio = f->vm.mmio;
	f->vcpu.fd = -1;
	f->vcpu.run_size = FAKE_RUN_SIZE;
	f->vcpu.run = calloc(1, FAKE_RUN_SIZE);
	return f->vcpu.run ? 0 : -1;
}

/* Forgets a stop and a halt, so that the next exit is decoded afresh. */
static inline void fake_vcpu_reset_stop(struct fake_vcpu *f)
{
	f->vm.stop_req = false;
	memset(&f->vm.stop, 0, sizeof(f->vm.stop));
	f->vm.stop.vcpu = -1;
	f->vm.nr_halted = 0;
	f->vcpu.halted = false;
}

static inline void fake_vcpu_free(struct fake_vcpu *f)
{
	free(f->vcpu.run);
	kvmkit_bus_destroy(f->vm.pio);
	kvmkit_bus_destroy(f->vm.mmio);
	pthread_cond_destroy(&f->vm.cond);
	pthread_mutex_destroy(&f->vm.lock);
}

#endif
