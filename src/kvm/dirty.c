// SPDX-License-Identifier: MIT
/*
 * Dirty-page tracking (include/kvmkit/dirty.h): the mode, logging on every
 * slot, the harvest through KVM's bitmap (with manual protect where the
 * host has it) or the dirty rings (dirty_ring.c), and the pages the VMM
 * marks itself. Locks: see struct kvmk_dirty (dirty_internal.h).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "dirty"
#include "core/internal.h"
#include "kvm/dirty_bitmap.h"
#include "kvm/dirty_internal.h"
#include <kvmkit/dirty.h>

/* Most pages one KVM_CLEAR_DIRTY_LOG re-protects: KVM holds the MMU lock
 * for the call, so a large slot is cleared in pieces (256 MiB of 4 KiB
 * pages), and only the words that hold dirty bits are sent. */
#define CLEAR_CHUNK_PAGES (64ull * 1024)

static const char *const mode_names[] = {
	[KVMKIT_DIRTY_BITMAP] = "bitmap",
	[KVMKIT_DIRTY_BITMAP_MANUAL] = "bitmap-manual",
	[KVMKIT_DIRTY_RING] = "ring",
};

const char *kvmkit_dirty_mode_name(enum kvmkit_dirty_mode mode)
{
	return (unsigned int)mode < KVMKIT_ARRAY_SIZE(mode_names) ? mode_names[mode] : "?";
}

enum kvmkit_dirty_mode kvmkit_dirty_mode(struct kvmkit_vm *vm)
{
	return vm->dirty->mode;
}

uint64_t kvmkit_dirty_page_size(struct kvmkit_vm *vm)
{
	return vm->dirty->page;
}

int kvmk_dirty_vm_init(struct kvmkit_vm *vm)
{
	struct kvmk_dirty *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return kvmk_err_resource("kvmkit_vm_create", ENOMEM, "dirty-log state");
	pthread_mutex_init(&d->lock, NULL);
	pthread_mutex_init(&d->ring_lock, NULL);
	d->page = (uint64_t)sysconf(_SC_PAGESIZE);
	d->mode = KVMKIT_DIRTY_BITMAP;
	vm->dirty = d;
	if (vm->cfg.dirty_ring_entries) {
		r = kvmk_dirty_ring_init(vm, d);
		if (r)
			return r < 0 ? r : 0;
	}
	/* Manual protect only changes how KVM_GET_DIRTY_LOG treats logged
	 * slots, so it is switched on once, here, where the host has it. */
	r = kvmk_check_extension(vm->fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	if (!vm->cfg.dirty_no_manual_protect && r > 0 &&
	    (r & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)) {
		struct kvm_enable_cap cap = {
			.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			.args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE },
		};

		if (ioctl(vm->fd, KVM_ENABLE_CAP, &cap) == 0)
			d->mode = KVMKIT_DIRTY_BITMAP_MANUAL;
		else
			kvmk_warn("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 refused (%s): the bitmap "
				  "clears as it is read",
				  strerror(errno));
	}
	return 0;
}

/* ---- regions ------------------------------------------------------------ */

static int region_alloc(struct kvmk_dirty *d, struct kvmk_region *r)
{
	size_t words = (size_t)kvmk_bitmap_words(kvmk_dirty_region_pages(d, r));

	r->dirty_pending = calloc(words ? words : 1, sizeof(uint64_t));
	r->dirty_buf = calloc(words ? words : 1, sizeof(uint64_t));
	if (!r->dirty_pending || !r->dirty_buf) {
		kvmk_dirty_region_drop(r);
		return kvmk_err_resource("kvmkit_dirty_enable", ENOMEM, "dirty bitmaps of slot %u",
					 r->slot);
	}
	r->logging = true;
	return 0;
}

void kvmk_dirty_region_drop(struct kvmk_region *r)
{
	free(r->dirty_pending);
	free(r->dirty_buf);
	r->dirty_pending = NULL;
	r->dirty_buf = NULL;
	r->logging = false;
}

int kvmk_dirty_region_add(struct kvmkit_vm *vm, struct kvmk_region *r)
{
	return vm->dirty_logging ? region_alloc(vm->dirty, r) : 0;
}

void kvmk_dirty_mark(struct kvmkit_vm *vm, struct kvmk_region *r, uint64_t gpa, uint64_t len)
{
	uint64_t page, first, last;

	if (!r->dirty_pending || !len)
		return;
	page = vm->dirty->page;
	first = (gpa - r->gpa) / page;
	last = (gpa - r->gpa + len - 1) / page;
	kvmk_bitmap_set_atomic(r->dirty_pending, first, last - first + 1);
}

/* ---- enable, disable ---------------------------------------------------- */

static void region_stop(struct kvmkit_vm *vm, struct kvmk_region *r)
{
	kvmk_dirty_region_drop(r);
	/* If KVM refuses, the slot merely stays logged: nobody reads it. */
	if (kvmk_region_update(vm, r))
		kvmk_warn("slot %u stays logged by KVM: %s", r->slot, kvmkit_strerror());
}

int kvmkit_dirty_enable(struct kvmkit_vm *vm)
{
	struct kvmk_dirty *d = vm->dirty;
	int r = 0, i;

	pthread_mutex_lock(&d->lock);
	pthread_rwlock_wrlock(&vm->mem_lock);
	if (vm->dirty_logging)
		r = kvmk_err_state("dirty log", "enabled", "disabled", "enable");
	for (i = 0; !r && i < KVMK_MAX_REGIONS; i++) {
		struct kvmk_region *e = &vm->regions[i];

		if (!e->used)
			continue;
		r = region_alloc(d, e);
		if (!r) {
			r = kvmk_region_update(vm, e);
			if (r)
				kvmk_dirty_region_drop(e);
		}
	}
	if (r) {
		/* Roll back the slots already switched (i is one past the
		 * failed one, or KVMK_MAX_REGIONS when already enabled). */
		for (int j = 0; j < i; j++)
			if (vm->regions[j].used && vm->regions[j].logging)
				region_stop(vm, &vm->regions[j]);
	} else {
		vm->dirty_logging = true;
		kvmk_debug("dirty logging on (%s)", kvmkit_dirty_mode_name(d->mode));
	}
	pthread_rwlock_unlock(&vm->mem_lock);
	pthread_mutex_unlock(&d->lock);
	return r;
}

int kvmkit_dirty_disable(struct kvmkit_vm *vm)
{
	struct kvmk_dirty *d = vm->dirty;
	int r = 0;

	pthread_mutex_lock(&d->lock);
	pthread_rwlock_wrlock(&vm->mem_lock);
	if (!vm->dirty_logging) {
		r = kvmk_err_state("dirty log", "disabled", "enabled", "disable");
	} else {
		for (int i = 0; i < KVMK_MAX_REGIONS; i++)
			if (vm->regions[i].used && vm->regions[i].logging)
				region_stop(vm, &vm->regions[i]);
		vm->dirty_logging = false;
		/* Empty the rings: their entries would be reported by the
		 * next enable's first harvest. */
		if (d->mode == KVMKIT_DIRTY_RING && kvmk_dirty_rings_collect(vm, d))
			kvmk_warn("dirty rings not emptied: %s", kvmkit_strerror());
	}
	pthread_rwlock_unlock(&vm->mem_lock);
	pthread_mutex_unlock(&d->lock);
	return r;
}

bool kvmkit_dirty_enabled(struct kvmkit_vm *vm)
{
	bool on;

	pthread_rwlock_rdlock(&vm->mem_lock);
	on = vm->dirty_logging;
	pthread_rwlock_unlock(&vm->mem_lock);
	return on;
}

/* ---- harvest ------------------------------------------------------------ */

/* KVM's bitmap of slot @e into its dirty_buf; with manual protect, the
 * dirty pages are then cleared and write-protected again, chunk by chunk. */
static int fetch_bitmap(struct kvmkit_vm *vm, struct kvmk_dirty *d, struct kvmk_region *e,
			uint64_t npages)
{
	struct kvm_dirty_log log = { .slot = e->slot, .dirty_bitmap = e->dirty_buf };
	uint64_t *buf = e->dirty_buf;

	if (ioctl(vm->fd, KVM_GET_DIRTY_LOG, &log))
		return kvmk_err_ioctl("KVM_GET_DIRTY_LOG", errno, "slot %u", e->slot);
	if (d->mode != KVMKIT_DIRTY_BITMAP_MANUAL)
		return 0;
	for (uint64_t c = 0; c < npages; c += CLEAR_CHUNK_PAGES) {
		uint64_t lo = c / 64, hi = kvmk_bitmap_words(c + CLEAR_CHUNK_PAGES < npages ?
								     c + CLEAR_CHUNK_PAGES :
								     npages);
		uint64_t end;
		struct kvm_clear_dirty_log clr = { .slot = e->slot };

		/* Only the words from the first to the last dirty one: the
		 * start is a multiple of 64 pages and so is the length,
		 * unless it runs to the end of the slot. */
		while (lo < hi && !buf[lo])
			lo++;
		while (hi > lo && !buf[hi - 1])
			hi--;
		if (lo == hi)
			continue;
		end = hi * 64 < npages ? hi * 64 : npages;
		clr.first_page = lo * 64;
		clr.num_pages = (uint32_t)(end - lo * 64);
		clr.dirty_bitmap = &buf[lo];
		if (ioctl(vm->fd, KVM_CLEAR_DIRTY_LOG, &clr)) {
			int r = kvmk_err_ioctl("KVM_CLEAR_DIRTY_LOG", errno,
					       "slot %u pages 0x%llx+0x%x", e->slot,
					       (unsigned long long)clr.first_page, clr.num_pages);

			/* Chunks already cleared are no longer in KVM's log. */
			kvmk_bitmap_or_from(e->dirty_pending, buf, 0, npages);
			return r;
		}
		KVMK_DIRTY_STAT_ADD(d, clear_calls, 1);
	}
	return 0;
}

struct walk {
	kvmkit_dirty_fn fn;
	void *opaque;
	uint64_t gpa, page;
	struct kvmkit_dirty_result *res;
};

static int report_run(uint64_t first, uint64_t count, void *opaque)
{
	struct walk *w = opaque;
	int r = w->fn ? w->fn(w->gpa + first * w->page, count, w->opaque) : 0;

	if (!r) {
		w->res->pages_dirty += count;
		w->res->runs++;
	}
	return r;
}

static int harvest_region(struct kvmkit_vm *vm, struct kvmk_dirty *d, struct kvmk_region *e,
			  kvmkit_dirty_fn fn, void *opaque, struct kvmkit_dirty_result *res)
{
	uint64_t npages = kvmk_dirty_region_pages(d, e), nwords = kvmk_bitmap_words(npages), stop;
	struct walk w = { fn, opaque, e->gpa, d->page, res };
	uint64_t *buf = e->dirty_buf;
	int r;

	if (d->mode == KVMKIT_DIRTY_RING) {
		memset(buf, 0, (size_t)nwords * sizeof(*buf));
	} else {
		r = fetch_bitmap(vm, d, e, npages);
		if (r)
			return r;
	}
	for (uint64_t i = 0; i < nwords; i++)
		if (__atomic_load_n(&e->dirty_pending[i], __ATOMIC_RELAXED))
			buf[i] |= __atomic_exchange_n(&e->dirty_pending[i], 0, __ATOMIC_ACQUIRE);
	res->pages_scanned += npages;
	r = kvmk_bitmap_walk(buf, npages, report_run, &w, &stop);
	if (r) /* what was not reported goes back, to be reported next time */
		kvmk_bitmap_or_from(e->dirty_pending, buf, stop, npages);
	return r;
}

int kvmkit_dirty_harvest(struct kvmkit_vm *vm, kvmkit_dirty_fn fn, void *opaque,
			 struct kvmkit_dirty_result *res)
{
	struct kvmk_dirty *d = vm->dirty;
	struct kvmkit_dirty_result tot = { 0 };
	struct kvmk_region *order[KVMK_MAX_REGIONS];
	unsigned int n = 0;
	int r = 0;

	pthread_mutex_lock(&d->lock);
	pthread_rwlock_rdlock(&vm->mem_lock);
	if (!vm->dirty_logging) {
		r = kvmk_err_state("dirty log", "disabled", "enabled", "harvest");
		goto out;
	}
	/* Rings first: their pages are re-armed before any is reported. */
	if (d->mode == KVMKIT_DIRTY_RING) {
		r = kvmk_dirty_rings_collect(vm, d);
		if (r)
			goto out;
	}
	/* Slots in guest-physical order (insertion sort: a handful). */
	for (int i = 0; i < KVMK_MAX_REGIONS; i++) {
		struct kvmk_region *e = &vm->regions[i];
		unsigned int j = n++;

		if (!e->used || !e->logging) {
			n--;
			continue;
		}
		for (; j && order[j - 1]->gpa > e->gpa; j--)
			order[j] = order[j - 1];
		order[j] = e;
	}
	for (unsigned int i = 0; !r && i < n; i++)
		r = harvest_region(vm, d, order[i], fn, opaque, &tot);
	if (!r)
		KVMK_DIRTY_STAT_ADD(d, harvests, 1);
	KVMK_DIRTY_STAT_ADD(d, pages_reported, tot.pages_dirty);
out:
	pthread_rwlock_unlock(&vm->mem_lock);
	pthread_mutex_unlock(&d->lock);
	if (res)
		*res = tot;
	return r;
}

#define STAT_GET(d, field) __atomic_load_n(&(d)->stats.field, __ATOMIC_RELAXED)

void kvmkit_dirty_get_stats(struct kvmkit_vm *vm, struct kvmkit_dirty_stats *out)
{
	struct kvmk_dirty *d = vm->dirty;

	*out = (struct kvmkit_dirty_stats){
		.harvests = STAT_GET(d, harvests),
		.pages_reported = STAT_GET(d, pages_reported),
		.clear_calls = STAT_GET(d, clear_calls),
		.ring_entries = STAT_GET(d, ring_entries),
		.ring_full_exits = STAT_GET(d, ring_full_exits),
		.ring_full_ns = STAT_GET(d, ring_full_ns),
		.ring_resets = STAT_GET(d, ring_resets),
	};
}

void kvmk_dirty_vm_free(struct kvmkit_vm *vm)
{
	struct kvmk_dirty *d = vm->dirty;

	if (!d)
		return;
	for (unsigned int i = 0; i < d->nr_rings; i++)
		if (d->rings[i].gfns)
			munmap(d->rings[i].gfns,
			       (size_t)d->ring_entries * sizeof(struct kvm_dirty_gfn));
	free(d->rings);
	for (int i = 0; i < KVMK_MAX_REGIONS; i++)
		kvmk_dirty_region_drop(&vm->regions[i]);
	vm->dirty_logging = false;
	pthread_mutex_destroy(&d->lock);
	pthread_mutex_destroy(&d->ring_lock);
	free(d);
	vm->dirty = NULL;
}
