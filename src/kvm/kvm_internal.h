/* SPDX-License-Identifier: MIT */
/* Internal structures of the KVM layer (vm.c, vcpu.c, memory.c). */
#ifndef KVMKIT_KVM_INTERNAL_H
#define KVMKIT_KVM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

#include <kvmkit/vm.h>
#include <kvmkit/vcpu.h>

#include "kvm/arch.h"

#define KVMK_MAX_REGIONS 64
#define KVMK_MAX_PRE_RUN 4
#define KVMK_MAX_EXIT_HANDLERS 8
#define KVMK_MAX_TEARDOWN 16

struct kvmk_pre_run {
	kvmkit_pre_run_hook fn;
	void *opaque;
	int vcpu_id; /* -1: every vCPU */
};

struct kvmk_exit_handler {
	uint32_t reason;
	kvmkit_exit_handler fn;
	void *opaque;
};

struct kvmk_teardown {
	kvmkit_teardown_fn fn;
	void *opaque;
};

struct kvmk_region {
	bool used;
	uint32_t slot;
	unsigned int flags;
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
	void *map_base; /* non-NULL when kvmkit owns the mapping */
	size_t map_len;
	/* Dirty-page tracking (dirty.c), changed only with mem_lock held for
	 * writing: whether KVM logs the slot for kvmkit_dirty_*, the pages
	 * marked outside KVM (VMM writes, ring entries a vCPU took: atomic
	 * words) and the harvest's scratch bitmap. NULL while not logging. */
	bool logging;
	uint64_t *dirty_pending;
	uint64_t *dirty_buf;
};

/*
 * A vCPU. The exit path (vcpu.c: the loop, exit decoding, bus dispatch)
 * reads only the first two cache lines: the hot block, then the counters.
 * After a KVM_RUN world switch every distinct line and page touched costs
 * a miss (a page walk under a nested hypervisor), so what the loop needs
 * per exit is copied here at creation instead of being read through the
 * VM, and the structure is 128-byte aligned (kvmk_vcpu_alloc()) so that
 * both lines share one page.
 */
struct kvmkit_vcpu {
	/* Hot: read on every exit; written only by the thread running the
	 * vCPU (run->immediate_exit aside, see vm.c). */
	struct kvm_run *run;
	struct kvmkit_vm *vm;
	struct kvmkit_bus *pio, *mmio; /* the VM's buses: fixed for its life */
	size_t run_size;
	uint64_t last_return_ns;
	int fd;
	unsigned int nr_pre_run;
	bool exit_timing; /* vm->cfg.exit_timing */
	/* vm->pause_req || vm->stop_req, which the loop checks here instead of
	 * in the VM (seq_cst; written under vm->lock by vm.c's set_request()
	 * before any kick). */
	bool req;
	/* HLT with no way to be woken (no in-kernel irqchip). Only the vCPU's
	 * own thread touches it; written under vm->lock for nr_halted. */
	bool halted;
	/* The last KVM_RUN returned an exit kvmkit handled and KVM has not
	 * completed yet (kvmk_vcpu_complete_exit). Only the vCPU's own thread
	 * touches it. */
	bool exit_pending;

	/* Written only by the thread running the vCPU, with relaxed atomic
	 * load + store (no RMW); read with relaxed loads (vcpu.h). Its own
	 * cache line, right after the hot block. */
	struct kvmkit_vcpu_stats stats __attribute__((aligned(64)));

	/* Cold: creation, hooks, the thread's lifecycle. */
	unsigned int id;
	pthread_t thread;
	/* Under vm->lock. thread_started: from a successful pthread_create
	 * until join_all has joined it. thread_exited: set by the thread
	 * itself, in its last critical section, so that a kick (which holds
	 * the lock) never signals a thread that has left its loop, let alone
	 * one already joined. */
	bool thread_started;
	bool thread_exited;
	bool parked; /* in the park loop (paused or halted), under vm->lock */
	/* Its thread waits in kvmkit_vm_quiesce() of any VM (under vm->lock):
	 * grace periods run on vCPU threads do not wait for it, or two of them
	 * would wait for each other for ever. */
	bool quiescing;
	kvmkit_exit_hook exit_hook;
	void *exit_hook_opaque;
	/* This vCPU's pre-run hooks, copied from the VM's (read per run only
	 * when nr_pre_run is not 0). */
	struct kvmk_pre_run pre_run[KVMK_MAX_PRE_RUN];
} __attribute__((aligned(64)));

struct kvmkit_vm {
	struct kvmkit_vm_config cfg;
	struct kvmkit_system *sys;
	int fd;
	int run_size;
	int max_vcpus;
	int max_vcpu_id;
	int max_slots;
	uint64_t ram_size;

	struct kvmkit_bus *pio;
	struct kvmkit_bus *mmio;
	struct kvmkit_irqchip *irqchip; /* opaque here; NULL until attached */
	struct kvmk_arch_vm *arch; /* src/arch/<arch>/vm.c */

	/* Extension points (registered while CREATED, read lock-free after). */
	unsigned int nr_pre_run, nr_exit_handlers, nr_teardown;
	struct kvmk_pre_run pre_run[KVMK_MAX_PRE_RUN];
	struct kvmk_exit_handler exit_handlers[KVMK_MAX_EXIT_HANDLERS];
	struct kvmk_teardown teardown[KVMK_MAX_TEARDOWN];

	struct kvmkit_vcpu **vcpus; /* cfg.vcpus entries, NULL until created */
	unsigned int nr_created;

	/* Lifecycle: everything below is protected by lock. pause_req and
	 * stop_req are also read lock-free (seq_cst) outside the vCPU loop,
	 * which reads each vCPU's copy (req). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum kvmkit_vm_state state;
	bool pause_req;
	bool stop_req;
	bool joined;
	unsigned int nr_parked;
	unsigned int nr_halted;
	struct kvmkit_stop_info stop;

	pthread_rwlock_t mem_lock;
	struct kvmk_region regions[KVMK_MAX_REGIONS];
	/* Dirty-page tracking (dirty.c); dirty_logging under mem_lock. */
	struct kvmk_dirty *dirty;
	bool dirty_logging;
};

/* Adds @n to a vCPU counter. The thread running the vCPU is its only writer,
 * so a relaxed load and store suffice (plain moves on x86, no locked RMW on
 * the exit path), and kvmkit_vcpu_get_stats() on another thread never reads
 * a torn or racy value. */
static inline void kvmk_stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* Picks the lowest free slot for [gpa, gpa + size) among @n regions, of which
 * the first @max_slots are usable; -EINVAL on overlap, -ENOSPC when full. */
int kvmk_region_pick_slot(const struct kvmk_region *regions, unsigned int n, int max_slots,
			  uint64_t gpa, uint64_t size);
/* The exit handler registered for @reason, or NULL (hooks.c). */
const struct kvmk_exit_handler *kvmk_vm_exit_handler(struct kvmkit_vm *vm, uint32_t reason);
/* Copies the VM's pre-run hooks for @v into it (at creation). */
void kvmk_vcpu_take_hooks(struct kvmkit_vcpu *v);
/* Runs the teardown list in reverse order and empties it. */
void kvmk_vm_run_teardown(struct kvmkit_vm *vm);
const char *kvmk_kvm_path(const char *path);
int kvmk_check_extension(int fd, long cap);
/* Kicks every vCPU whose thread is still in its loop out of KVM_RUN
 * (vm->lock held). */
void kvmk_vm_kick_all(struct kvmkit_vm *vm);
void *kvmk_vcpu_thread(void *arg);
/* Kicks @v out of KVM_RUN unless its thread left its loop (vm->lock held). */
void kvmk_vm_kick(struct kvmkit_vm *vm, struct kvmkit_vcpu *v);
/* -EDEADLK (recorded) when called on one of @vm's own vCPU threads: @op
 * would wait for the caller itself. */
int kvmk_vm_refuse_on_own_vcpu(struct kvmkit_vm *vm, const char *op);
/* The vCPU the calling thread runs, or NULL. */
struct kvmkit_vcpu *kvmk_vcpu_self(void);
void kvmk_vcpu_free(struct kvmkit_vcpu *vcpu);
int kvmk_vcpu_handle_exit(struct kvmkit_vcpu *vcpu);

#endif
