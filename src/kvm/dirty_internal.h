/* SPDX-License-Identifier: MIT */
/*
 * What dirty.c, vm.c and memory.c ask of each other for dirty-page
 * tracking (include/kvmkit/dirty.h). Internal.
 */
#ifndef KVMKIT_KVM_DIRTY_INTERNAL_H
#define KVMKIT_KVM_DIRTY_INTERNAL_H

#include <stdint.h>

#include "kvm/kvm_internal.h"

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
