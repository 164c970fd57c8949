/* SPDX-License-Identifier: MIT */
/*
 * Dirty-page tracking: which guest pages were written since the last
 * harvest, for snapshots and live migration.
 *
 * Turn it on with kvmkit_dirty_enable(): every memory slot of the VM, and
 * every slot added while it is on, gets KVM_MEM_LOG_DIRTY_PAGES. Then
 * kvmkit_dirty_harvest() hands the caller each run of consecutive pages
 * written since logging began or since the previous harvest reported them,
 * in increasing guest-physical order. Pages are host pages
 * (kvmkit_dirty_page_size(), 4 KiB on x86), whatever the guest maps.
 *
 * A harvest reports pages written by
 *  - the guest's vCPUs (KVM logs them, as it does pages KVM itself writes
 *    on the guest's behalf, e.g. a kvmclock page);
 *  - the VMM: kvmkit_vm_write(), the loaders, and any device that writes
 *    through a kvmkit_vm_gpa_to_hva() pointer and then calls
 *    kvmkit_vm_mark_dirty() (vm.h). KVM does not see such writes.
 *
 * How KVM is asked (kvmkit_dirty_mode(), fixed when the VM is created):
 *  - KVMKIT_DIRTY_RING: kvmkit_vm_config.dirty_ring_entries asked for a
 *    ring and the host has KVM_CAP_DIRTY_LOG_RING(_ACQ_REL). Each vCPU has a
 *    ring of the pages it dirtied; a harvest takes them in order and
 *    re-arms them (KVM_RESET_DIRTY_RINGS) before reporting. A vCPU whose
 *    ring fills exits (KVM_EXIT_DIRTY_RING_FULL); kvmkit's exit handler then
 *    harvests that ring on the vCPU's own thread into the VM's pending
 *    pages, resets it and lets the vCPU run on, so the vCPU never waits for
 *    the caller and the pages are reported by the next harvest.
 *  - KVMKIT_DIRTY_BITMAP_MANUAL: the bitmap (the ring was not asked for or
 *    the host has none) on a host with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
 *    KVM_GET_DIRTY_LOG reads a slot's bitmap, then KVM_CLEAR_DIRTY_LOG
 *    clears and write-protects again just the dirty pages, a chunk of at
 *    most 64 Ki pages at a time, so the MMU lock is never held for a whole
 *    large slot. (KVM_DIRTY_LOG_INITIALLY_SET is not used: the first harvest
 *    reports only pages written after kvmkit_dirty_enable().)
 *  - KVMKIT_DIRTY_BITMAP: KVM_GET_DIRTY_LOG alone, which clears and
 *    write-protects the whole slot as it reads (older hosts, or
 *    kvmkit_vm_config.dirty_no_manual_protect).
 * Every mode reports the same pages.
 *
 * Threads: enable, disable, harvest, the mode and statistics may be called
 * from any thread, in any VM state, while vCPUs run; enable, disable and
 * harvest are serialized against each other and against memory slots being
 * added or removed. A harvest while vCPUs run reports what KVM logged until
 * then (writes that a vCPU still buffers, e.g. in Intel's PML, come with a
 * later harvest); one made after kvmkit_vm_pause() is exact. Removing a
 * slot drops its pages not yet harvested (the memory is gone).
 *
 * Lifetimes: the tracking state belongs to the VM and goes with
 * kvmkit_vm_destroy(); nothing the API hands out outlives the call.
 */
#ifndef KVMKIT_DIRTY_H
#define KVMKIT_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

#include <kvmkit/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

enum kvmkit_dirty_mode {
	KVMKIT_DIRTY_BITMAP = 0,
	KVMKIT_DIRTY_BITMAP_MANUAL,
	KVMKIT_DIRTY_RING,
};

/* "bitmap", "bitmap-manual", "ring". */
const char *kvmkit_dirty_mode_name(enum kvmkit_dirty_mode mode);
enum kvmkit_dirty_mode kvmkit_dirty_mode(struct kvmkit_vm *vm);
/* Bytes per page of a harvest (the host page size). */
uint64_t kvmkit_dirty_page_size(struct kvmkit_vm *vm);

/* Starts logging on every slot: from here on every write is reported by a
 * harvest. -EBUSY if logging is on already; on a KVM error no slot is left
 * logging. */
int kvmkit_dirty_enable(struct kvmkit_vm *vm);
/* Stops logging and forgets the pages not yet harvested. -EBUSY if off. */
int kvmkit_dirty_disable(struct kvmkit_vm *vm);
bool kvmkit_dirty_enabled(struct kvmkit_vm *vm);

/* A run of @npages dirty pages from guest-physical @gpa (page aligned).
 * Return 0 to go on; anything else stops the harvest, which returns it
 * (use a positive value to tell it from kvmkit's own negative errors). */
typedef int (*kvmkit_dirty_fn)(uint64_t gpa, uint64_t npages, void *opaque);

struct kvmkit_dirty_result {
	uint64_t pages_scanned; /* pages of every logged slot */
	uint64_t pages_dirty; /* pages reported */
	uint64_t runs; /* calls of the callback */
};

/*
 * Reports every page dirtied since the previous harvest, once, as runs in
 * increasing guest-physical order; a run never spans two slots. Before the
 * first run is reported, KVM tracks each reported page again (cleared and
 * write-protected, or the ring entries reset), so a write made while the
 * caller copies a page is reported by the next harvest: copy pages after
 * they are reported, never before.
 *
 * @fn runs on the calling thread with the VM's memory lock held for
 * reading: it may read and write guest memory (kvmkit_vm_read/write,
 * gpa_to_hva, mark_dirty) and pause or kick the VM, but must not add or
 * remove memory or enable, disable or harvest (that deadlocks).
 *
 * Returns 0, a negative errno (-EBUSY when logging is off; a KVM error),
 * or what @fn returned to stop. Nothing is lost either way: pages not
 * reported (after a stop or an error) are reported by a later harvest,
 * possibly with a few more. @res (may be NULL) counts what was reported.
 *
 * Reported means "may have been written since": KVM logs a page when a
 * write faults, before the store retires, so a page written once while a
 * harvest runs can come in two harvests. And with nested paging (AMD NPT,
 * Intel EPT with A/D flags) every guest page walk counts as a write to the
 * guest's page-table pages, so a running guest's page tables come with
 * every harvest; on a shadow MMU (KVM-PVM) only when a walk sets a flag.
 */
int kvmkit_dirty_harvest(struct kvmkit_vm *vm, kvmkit_dirty_fn fn, void *opaque,
			 struct kvmkit_dirty_result *res);

/* Totals since the VM was created; each counter is read whole but not one
 * snapshot of them all while vCPUs run. */
struct kvmkit_dirty_stats {
	uint64_t harvests; /* kvmkit_dirty_harvest() calls that succeeded */
	uint64_t pages_reported; /* pages those reported */
	uint64_t clear_calls; /* KVM_CLEAR_DIRTY_LOG ioctls (bitmap-manual) */
	uint64_t ring_entries; /* dirty-ring entries taken (ring) */
	uint64_t ring_full_exits; /* KVM_EXIT_DIRTY_RING_FULL handled (ring) */
	uint64_t ring_full_ns; /* time vCPUs spent emptying their full rings */
	uint64_t ring_resets; /* KVM_RESET_DIRTY_RINGS ioctls (ring) */
};

void kvmkit_dirty_get_stats(struct kvmkit_vm *vm, struct kvmkit_dirty_stats *out);

#ifdef __cplusplus
}
#endif
#endif
