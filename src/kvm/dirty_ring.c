// SPDX-License-Identifier: MIT
/*
 * The dirty ring (KVM_CAP_DIRTY_LOG_RING): enabled right after
 * KVM_CREATE_VM, one ring per vCPU mapped at KVM_DIRTY_LOG_PAGE_OFFSET,
 * entries taken strictly in order into the slots' pending bitmaps, then
 * KVM_RESET_DIRTY_RINGS; and the vCPU's own emptying of a full ring
 * (KVM_EXIT_DIRTY_RING_FULL). The rest of dirty-page tracking is dirty.c.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define KVMK_LOG_MODULE "dirty"
#include "core/internal.h"
#include "kvm/dirty_bitmap.h"
#include "kvm/dirty_internal.h"

/* Maps ring @i of the vCPU with @fd (ring_lock held). */
static int ring_map(struct kvmk_dirty *d, unsigned int i, int fd)
{
	void *p;

	if (d->rings[i].gfns)
		return 0;
	p = mmap(NULL, (size_t)d->ring_entries * sizeof(struct kvm_dirty_gfn),
		 PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)(KVM_DIRTY_LOG_PAGE_OFFSET * d->page));
	if (p == MAP_FAILED)
		return kvmk_err_sys("mmap", errno, "dirty ring of vCPU %u", i);
	d->rings[i].gfns = p;
	return 0;
}

/* One entry the kernel filled: a page of a slot, marked pending. Entries
 * for a slot gone or not logging (or out of its range) are dropped. */
static void ring_mark(struct kvmkit_vm *vm, struct kvmk_dirty *d, uint32_t slot, uint64_t offset)
{
	struct kvmk_region *r;

	if (slot >> 16 || (slot & 0xffff) >= KVMK_MAX_REGIONS)
		return;
	r = &vm->regions[slot & 0xffff];
	if (r->used && r->dirty_pending && offset < kvmk_dirty_region_pages(d, r))
		kvmk_bitmap_set_atomic(r->dirty_pending, offset, 1);
}

/* Takes ring @i's dirty entries strictly in order, marks them, and hands
 * each back as harvested (mem_lock and ring_lock held). The acquiring
 * load of flags pairs with the kernel publishing the entry; the releasing
 * store hands it back only once it has been read. */
static void ring_take(struct kvmkit_vm *vm, struct kvmk_dirty *d, unsigned int i)
{
	struct kvmk_ring *ring = &d->rings[i];
	uint32_t n = 0;

	while (n < d->ring_entries) {
		struct kvm_dirty_gfn *e = &ring->gfns[ring->fetch & (d->ring_entries - 1)];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);

		if ((flags & KVM_DIRTY_GFN_F_MASK) != KVM_DIRTY_GFN_F_DIRTY)
			break;
		ring_mark(vm, d, e->slot, e->offset);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		ring->fetch++;
		n++;
	}
	d->unreset += n;
	KVMK_DIRTY_STAT_ADD(d, ring_entries, n);
}

/*
 * Re-arms every harvested entry (ring_lock held): KVM write-protects those
 * pages again. One call may reset fewer entries than were harvested (newer
 * kernels bound a call, or stop with -EINTR on a pending signal), so it is
 * repeated until all are, or until KVM has none left.
 */
static int rings_reset(struct kvmkit_vm *vm, struct kvmk_dirty *d)
{
	while (d->unreset) {
		int n = ioctl(vm->fd, KVM_RESET_DIRTY_RINGS, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return kvmk_err_ioctl("KVM_RESET_DIRTY_RINGS", errno, "%llu entries",
					      (unsigned long long)d->unreset);
		}
		KVMK_DIRTY_STAT_ADD(d, ring_resets, 1);
		if (n == 0 || (uint64_t)n >= d->unreset)
			d->unreset = 0;
		else
			d->unreset -= (uint64_t)n;
	}
	return 0;
}

/* Every vCPU's ring into the pending bitmaps, then the reset (mem_lock
 * held). */
int kvmk_dirty_rings_collect(struct kvmkit_vm *vm, struct kvmk_dirty *d)
{
	int r = 0;

	pthread_mutex_lock(&d->ring_lock);
	for (unsigned int i = 0; !r && i < d->nr_rings; i++) {
		struct kvmkit_vcpu *v;

		pthread_mutex_lock(&vm->lock);
		v = vm->vcpus[i];
		pthread_mutex_unlock(&vm->lock);
		if (!v)
			continue;
		r = ring_map(d, i, v->fd);
		if (!r)
			ring_take(vm, d, i);
	}
	if (!r)
		r = rings_reset(vm, d);
	pthread_mutex_unlock(&d->ring_lock);
	return r;
}

/*
 * KVM_EXIT_DIRTY_RING_FULL, on the vCPU's thread: KVM will not run the
 * vCPU again until its ring has room. Rather than wait for the caller's
 * next harvest (which may never come, and would block pause and stop), the
 * vCPU takes its own ring into the pending bitmaps and resets it; it waits
 * only for a harvest that holds the ring lock. The pages are reported by
 * the next harvest.
 */
static int ring_full(struct kvmkit_vcpu *vcpu, struct kvm_run *run, void *opaque)
{
	struct kvmkit_vm *vm = opaque;
	struct kvmk_dirty *d = vm->dirty;
	uint64_t t0 = kvmk_now_ns();
	int r;

	(void)run;
	KVMK_DIRTY_STAT_ADD(d, ring_full_exits, 1);
	pthread_rwlock_rdlock(&vm->mem_lock);
	pthread_mutex_lock(&d->ring_lock);
	r = vcpu->id < d->nr_rings ? ring_map(d, vcpu->id, vcpu->fd) : -EINVAL;
	if (!r) {
		ring_take(vm, d, vcpu->id);
		r = rings_reset(vm, d);
	}
	pthread_mutex_unlock(&d->ring_lock);
	pthread_rwlock_unlock(&vm->mem_lock);
	KVMK_DIRTY_STAT_ADD(d, ring_full_ns, kvmk_now_ns() - t0);
	if (r)
		kvmk_error("vCPU %u: dirty ring full and not emptied: %s", vcpu->id,
			   kvmkit_strerror());
	return r;
}

/* The ring the config asks for: 1 if enabled, 0 if the host has none,
 * < 0 on a bad size or a refusal. */
int kvmk_dirty_ring_init(struct kvmkit_vm *vm, struct kvmk_dirty *d)
{
	uint32_t n = vm->cfg.dirty_ring_entries;
	struct kvm_enable_cap cap = { .cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL };
	uint64_t bytes = (uint64_t)n * sizeof(struct kvm_dirty_gfn);
	int max;

	if (n & (n - 1))
		return kvmk_err_param("kvmkit_vm_create", "dirty_ring_entries",
				      "must be a power of two", "%u", n);
	/* The acquire/release flavour where the host has it: kvmkit orders
	 * its accesses to flags that way on every architecture. */
	max = kvmk_check_extension(vm->fd, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	if (max <= 0) {
		cap.cap = KVM_CAP_DIRTY_LOG_RING;
		max = kvmk_check_extension(vm->fd, KVM_CAP_DIRTY_LOG_RING);
	}
	if (max <= 0) {
		kvmk_info("no dirty ring on this host (KVM_CAP_DIRTY_LOG_RING): the bitmap");
		return 0;
	}
	if (bytes > (uint64_t)max)
		return kvmk_err_param("kvmkit_vm_create", "dirty_ring_entries",
				      "larger than the host's dirty ring", "%u (max %d)", n,
				      max / (int)sizeof(struct kvm_dirty_gfn));
	cap.args[0] = bytes;
	if (ioctl(vm->fd, KVM_ENABLE_CAP, &cap))
		return kvmk_err_ioctl("KVM_ENABLE_CAP", errno,
				      "dirty ring of %u entries (KVM reserves some; try more)", n);
	d->rings = calloc(vm->cfg.vcpus, sizeof(*d->rings));
	if (!d->rings)
		return kvmk_err_resource("kvmkit_vm_create", ENOMEM, "dirty ring table");
	d->nr_rings = vm->cfg.vcpus;
	d->ring_entries = n;
	d->mode = KVMKIT_DIRTY_RING;
	max = kvmkit_vm_add_exit_handler(vm, KVM_EXIT_DIRTY_RING_FULL, ring_full, vm);
	return max ? max : 1;
}
