/* SPDX-License-Identifier: MIT */
/*
 * What dirty.c, dirty_ring.c, vm.c and memory.c share for dirty-page
 * tracking (include/kvmkit/dirty.h). Internal.
 */
#ifndef KVMKIT_KVM_DIRTY_INTERNAL_H
#define KVMKIT_KVM_DIRTY_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <kvmkit/dirty.h>
#include "kvm/kvm_internal.h"

struct kvmk_ring {
	struct kvm_dirty_gfn *gfns; /* NULL until mapped */
	uint32_t fetch; /* free-running index of the next entry */
};

/* A VM's tracking state. Locks, in the order they are taken: lock
 * (enable, disable and harvest one at a time), then vm->mem_lock, then
 * ring_lock (ring fetch indices, unreset, KVM_RESET_DIRTY_RINGS), then
 * vm->lock (only to look a vCPU up). */
struct kvmk_dirty {
	enum kvmkit_dirty_mode mode;
	uint64_t page;
	pthread_mutex_t lock;
	pthread_mutex_t ring_lock;
	uint32_t ring_entries; /* a power of two */
	unsigned int nr_rings; /* one per configured vCPU */
	struct kvmk_ring *rings;
	uint64_t unreset; /* entries marked harvested, not yet reset (ring_lock) */
	struct kvmkit_dirty_stats stats; /* relaxed atomics */
};

#define KVMK_DIRTY_STAT_ADD(d, field, n) \
	__atomic_fetch_add(&(d)->stats.field, (n), __ATOMIC_RELAXED)

static inline uint64_t kvmk_dirty_region_pages(const struct kvmk_dirty *d,
					       const struct kvmk_region *r)
{
	return r->size / d->page;
}

/* dirty_ring.c: the ring the config asks for (1 if enabled, 0 if the host
 * has none, < 0 on a bad size or a refusal), with its exit handler; and
 * every vCPU's ring into the pending bitmaps, then the reset (mem_lock
 * held). */
int kvmk_dirty_ring_init(struct kvmkit_vm *vm, struct kvmk_dirty *d);
int kvmk_dirty_rings_collect(struct kvmkit_vm *vm, struct kvmk_dirty *d);

/* vm.c, right after KVM_CREATE_VM and before any slot or vCPU: the mode,
 * the ring (KVM_ENABLE_CAP) and its exit handler, or manual protect. */
int kvmk_dirty_vm_init(struct kvmkit_vm *vm);
/* vm.c, at destroy, once the vCPU threads are joined: ring mappings,
 * region bitmaps, the state. Safe on a VM whose init failed or never ran. */
void kvmk_dirty_vm_free(struct kvmkit_vm *vm);

/* memory.c, mem_lock held for writing: a slot about to be added gets its
 * bitmaps and logging if logging is on; one removed (or not added after
 * all) loses them. */
int kvmk_dirty_region_add(struct kvmkit_vm *vm, struct kvmk_region *r);
void kvmk_dirty_region_drop(struct kvmk_region *r);
/* memory.c, mem_lock held (either way): marks [gpa, gpa + len), which lies
 * in @r, as written by the VMM. Call after the write. */
void kvmk_dirty_mark(struct kvmkit_vm *vm, struct kvmk_region *r, uint64_t gpa, uint64_t len);

/* memory.c: sends @r's slot to KVM again with its current flags (its
 * logging changed), mem_lock held for writing. */
int kvmk_region_update(struct kvmkit_vm *vm, const struct kvmk_region *r);

#endif
