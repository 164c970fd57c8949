// SPDX-License-Identifier: MIT
/* Guest memory regions: slots, mappings and guest-physical translation. */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "memory"
#include "core/internal.h"
#include "kvm/kvm_internal.h"
#include "kvm/dirty_internal.h"
#include "kvm/arch.h"

#define HUGE_ALIGN (2ull << 20)

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int kvmk_region_pick_slot(const struct kvmk_region *regions, unsigned int n, int max_slots,
			  uint64_t gpa, uint64_t size)
{
	int free_slot = -1;

	/* Slot numbers are the region index: a freed slot is reused. */
	for (unsigned int i = 0; i < n; i++) {
		const struct kvmk_region *e = &regions[i];

		if (!e->used) {
			if (free_slot < 0 && (int)i < max_slots)
				free_slot = (int)i;
			continue;
		}
		if (ranges_overlap(gpa, size, e->gpa, e->size))
			return kvmk_err_param(
				"kvmkit_vm_add_memory", "gpa", "overlaps an existing memory region",
				"0x%llx+0x%llx (slot %u at 0x%llx+0x%llx)", (unsigned long long)gpa,
				(unsigned long long)size, e->slot, (unsigned long long)e->gpa,
				(unsigned long long)e->size);
	}
	if (free_slot < 0)
		return kvmk_err_resource("kvmkit_vm_add_memory", ENOSPC,
					 "no free memory slot (max %d)",
					 max_slots < (int)n ? max_slots : (int)n);
	return free_slot;
}

static int set_region(struct kvmkit_vm *vm, const struct kvmk_region *r, uint64_t size)
{
	bool log = (r->flags & KVMKIT_MEM_LOG_DIRTY) || r->logging; /* r->logging: dirty.c */
	struct kvm_userspace_memory_region m = {
		.slot = r->slot,
		.flags = ((r->flags & KVMKIT_MEM_READONLY) ? KVM_MEM_READONLY : 0) |
			 (log ? KVM_MEM_LOG_DIRTY_PAGES : 0),
		.guest_phys_addr = r->gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)r->hva,
	};

	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &m) < 0)
		return kvmk_err_ioctl("KVM_SET_USER_MEMORY_REGION", errno,
				      "slot %u gpa 0x%llx size 0x%llx", r->slot,
				      (unsigned long long)r->gpa, (unsigned long long)size);
	return 0;
}

int kvmk_region_update(struct kvmkit_vm *vm, const struct kvmk_region *r)
{
	return set_region(vm, r, r->size);
}

/*
 * Takes the fresh private mapping @base (@len bytes) for region @r: RAM
 * starts on a 2 MiB boundary (so transparent huge pages can back it) and
 * the slack around it is unmapped, so the RAM is one mapping with one set
 * of madvise flags. RAM is kept out of core dumps: it is the guest's, often
 * large, and may hold the guest's secrets.
 */
static void own_ram(struct kvmk_region *r, uint8_t *base, size_t len)
{
	uint8_t *start = base, *end = base + len;

	r->hva = base;
	if (len > r->size) {
		uintptr_t a = ((uintptr_t)base + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1);

		r->hva = (uint8_t *)a;
		/* Trimming splits the mapping first; at the process's map
		 * limit it fails and the slack stays mapped (and owned). */
		if (r->hva > base && !munmap(base, (size_t)(r->hva - base)))
			start = r->hva;
		if (end > r->hva + r->size &&
		    !munmap(r->hva + r->size, (size_t)(end - (r->hva + r->size))))
			end = r->hva + r->size;
		madvise(r->hva, r->size, MADV_HUGEPAGE); /* advisory: THP may be off */
	}
	if (madvise(start, (size_t)(end - start), MADV_DONTDUMP))
		kvmk_warn("guest RAM at gpa 0x%llx stays in core dumps: madvise: %s",
			  (unsigned long long)r->gpa, strerror(errno));
	r->map_base = start;
	r->map_len = (size_t)(end - start);
}

/* Maps @size bytes of @fd from @off privately for region @r (kvmkit owns
 * the mapping), after checking the file holds them: touching a page past
 * its end would be a SIGBUS. */
static int map_file_ram(struct kvmk_region *r, int fd, uint64_t off, uint64_t size)
{
	const char *op = "kvmkit_vm_create";
	struct stat st;
	uint8_t *base;

	if (fstat(fd, &st) < 0)
		return kvmk_err_sys(op, errno, "ram_fd %d", fd);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < off + size)
		return kvmk_err_param(op, "ram_fd", "not a regular file holding the RAM",
				      "%lld bytes, wanted %llu", (long long)st.st_size,
				      (unsigned long long)(off + size));
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd,
		    (off_t)off);
	if (base == MAP_FAILED)
		return kvmk_err_resource(op, errno, "mmap of %llu bytes of ram_fd",
					 (unsigned long long)size);
	if (madvise(base, size, MADV_DONTDUMP))
		kvmk_warn("guest RAM at gpa 0x%llx stays in core dumps: madvise: %s",
			  (unsigned long long)r->gpa, strerror(errno));
	r->hva = base;
	r->map_base = base;
	r->map_len = size;
	return 0;
}

static int add_region(struct kvmkit_vm *vm, uint64_t gpa, uint64_t size, unsigned int flags,
		      void *host, int fd, uint64_t file_off);

int kvmk_vm_add_ram(struct kvmkit_vm *vm, uint64_t gpa, uint64_t size, uint64_t file_off)
{
	const struct kvmkit_vm_config *cfg = kvmkit_vm_config(vm);

	return add_region(vm, gpa, size, 0, NULL, cfg->ram_from_fd ? cfg->ram_fd : -1, file_off);
}

int kvmkit_vm_add_memory(struct kvmkit_vm *vm, uint64_t gpa, uint64_t size, unsigned int flags,
			 void *host)
{
	return add_region(vm, gpa, size, flags, host, -1, 0);
}

static int add_region(struct kvmkit_vm *vm, uint64_t gpa, uint64_t size, unsigned int flags,
		      void *host, int fd, uint64_t file_off)
{
	const char *op = "kvmkit_vm_add_memory";
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct kvmk_region *free_r = NULL;
	struct kvmk_region nr = { 0 };
	int r;

	if (size == 0 || size % page)
		return kvmk_err_param(op, "size", "must be a non-zero page multiple", "0x%llx",
				      (unsigned long long)size);
	if (gpa % page)
		return kvmk_err_param(op, "gpa", "must be page aligned", "0x%llx",
				      (unsigned long long)gpa);
	if (gpa + size < gpa)
		return kvmk_err_param(op, "size", "region wraps the address space", "0x%llx",
				      (unsigned long long)size);
	if (host && ((uintptr_t)host % page))
		return kvmk_err_param(op, "host", "must be page aligned", "%p", host);
	if (flags & ~(KVMKIT_MEM_READONLY | KVMKIT_MEM_LOG_DIRTY))
		return kvmk_err_param(op, "flags", "unknown flag bits", "0x%x", flags);
	if ((flags & KVMKIT_MEM_READONLY) &&
	    kvmk_check_extension(vm->fd, KVM_CAP_READONLY_MEM) <= 0)
		return kvmk_err_unsupported(op, ENOTSUP, "read-only memory (KVM_CAP_READONLY_MEM)");

	pthread_rwlock_wrlock(&vm->mem_lock);
	r = kvmk_region_pick_slot(vm->regions, KVMK_MAX_REGIONS, vm->max_slots, gpa, size);
	if (r < 0) {
		pthread_rwlock_unlock(&vm->mem_lock);
		return r;
	}
	free_r = &vm->regions[r];
	nr.used = true;
	nr.slot = (uint32_t)(free_r - vm->regions);
	nr.flags = flags;
	nr.gpa = gpa;
	nr.size = size;
	if (host) {
		nr.hva = host;
	} else if (fd >= 0) {
		r = map_file_ram(&nr, fd, file_off, size);
		if (r) {
			pthread_rwlock_unlock(&vm->mem_lock);
			return r;
		}
	} else {
		/* Over-allocate so the region can start on a 2 MiB boundary and be
		 * backed by transparent huge pages. */
		size_t len = size + (size >= HUGE_ALIGN ? HUGE_ALIGN : 0);
		uint8_t *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (base == MAP_FAILED) {
			pthread_rwlock_unlock(&vm->mem_lock);
			return kvmk_err_resource(op, errno, "mmap of %llu bytes",
						 (unsigned long long)size);
		}
		own_ram(&nr, base, len);
	}
	/* Logged from the start if logging is on: no write goes unseen. */
	r = kvmk_dirty_region_add(vm, &nr);
	if (!r)
		r = set_region(vm, &nr, size);
	if (r) {
		kvmk_dirty_region_drop(&nr);
		if (nr.map_base)
			munmap(nr.map_base, nr.map_len);
		pthread_rwlock_unlock(&vm->mem_lock);
		return r;
	}
	*free_r = nr;
	pthread_rwlock_unlock(&vm->mem_lock);
	kvmk_debug("slot %u: gpa 0x%llx size 0x%llx%s", nr.slot, (unsigned long long)gpa,
		   (unsigned long long)size, (flags & KVMKIT_MEM_READONLY) ? " (read-only)" : "");
	return (int)nr.slot;
}

/*
 * KVM stops using the host range when the slot is deleted; kvmkit then
 * waits out the exit handlers vCPUs are running (one may have translated
 * an address in this region) before it unmaps memory it owns, as a bus
 * unregistration waits before a device is freed. The memory lock is not
 * held meanwhile: a handler may need it to finish.
 */
int kvmkit_vm_remove_memory(struct kvmkit_vm *vm, int slot)
{
	struct kvmk_region *e, old;
	int r;

	if (slot < 0 || slot >= KVMK_MAX_REGIONS)
		return kvmk_err_param("kvmkit_vm_remove_memory", "slot", "out of range", "%d",
				      slot);
	pthread_rwlock_wrlock(&vm->mem_lock);
	e = &vm->regions[slot];
	if (!e->used) {
		pthread_rwlock_unlock(&vm->mem_lock);
		return kvmk_err_param("kvmkit_vm_remove_memory", "slot", "not in use", "%d", slot);
	}
	r = set_region(vm, e, 0); /* size 0 deletes the slot */
	old = *e;
	if (!r) {
		kvmk_dirty_region_drop(e);
		memset(e, 0, sizeof(*e));
	}
	pthread_rwlock_unlock(&vm->mem_lock);
	if (r)
		return r;
	kvmkit_vm_quiesce(vm);
	if (old.map_base)
		munmap(old.map_base, old.map_len);
	return 0;
}

/* The region holding all of [gpa, gpa + len), or NULL (mem_lock held). */
static struct kvmk_region *find_region(struct kvmkit_vm *vm, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < KVMK_MAX_REGIONS; i++) {
		struct kvmk_region *e = &vm->regions[i];

		if (e->used && gpa >= e->gpa && gpa - e->gpa <= e->size &&
		    len <= e->size - (gpa - e->gpa))
			return e;
	}
	return NULL;
}

static int not_in_ram(const char *op, uint64_t gpa, uint64_t len)
{
	if (gpa + len < gpa)
		return kvmk_err_param(op, "len", "range wraps", "0x%llx+0x%llx",
				      (unsigned long long)gpa, (unsigned long long)len);
	return kvmk_err_param(op, "gpa", "not inside guest RAM", "0x%llx+0x%llx",
			      (unsigned long long)gpa, (unsigned long long)len);
}

void *kvmkit_vm_gpa_to_hva(struct kvmkit_vm *vm, uint64_t gpa, uint64_t len)
{
	struct kvmk_region *e;
	void *hva = NULL;

	if (gpa + len < gpa) {
		not_in_ram("kvmkit_vm_gpa_to_hva", gpa, len);
		return NULL;
	}
	pthread_rwlock_rdlock(&vm->mem_lock);
	e = find_region(vm, gpa, len);
	if (e)
		hva = e->hva + (gpa - e->gpa);
	pthread_rwlock_unlock(&vm->mem_lock);
	if (!hva)
		not_in_ram("kvmkit_vm_gpa_to_hva", gpa, len);
	return hva;
}

/* The copy is made under the memory lock, so a region removed by another
 * thread meanwhile is never unmapped under it. */
int kvmkit_vm_read(struct kvmkit_vm *vm, uint64_t gpa, void *buf, size_t len)
{
	struct kvmk_region *e = NULL;

	if (gpa + len >= gpa) {
		pthread_rwlock_rdlock(&vm->mem_lock);
		e = find_region(vm, gpa, len);
		if (e)
			memcpy(buf, e->hva + (gpa - e->gpa), len);
		pthread_rwlock_unlock(&vm->mem_lock);
	}
	if (!e) {
		not_in_ram("kvmkit_vm_read", gpa, len);
		return -EFAULT;
	}
	return 0;
}

/* The copy and the mark are made under the memory lock, so that logging
 * switched on meanwhile either sees the mark or comes after the copy (and
 * a first full pass over memory then sees the data). */
int kvmkit_vm_write(struct kvmkit_vm *vm, uint64_t gpa, const void *buf, size_t len)
{
	struct kvmk_region *e = NULL;

	if (gpa + len >= gpa) {
		pthread_rwlock_rdlock(&vm->mem_lock);
		e = find_region(vm, gpa, len);
		if (e) {
			memcpy(e->hva + (gpa - e->gpa), buf, len);
			kvmk_dirty_mark(vm, e, gpa, len);
		}
		pthread_rwlock_unlock(&vm->mem_lock);
	}
	if (!e) {
		not_in_ram("kvmkit_vm_write", gpa, len);
		return -EFAULT;
	}
	return 0;
}

int kvmkit_vm_mark_dirty(struct kvmkit_vm *vm, uint64_t gpa, uint64_t len)
{
	struct kvmk_region *e = NULL;

	if (gpa + len >= gpa) {
		pthread_rwlock_rdlock(&vm->mem_lock);
		e = find_region(vm, gpa, len);
		if (e)
			kvmk_dirty_mark(vm, e, gpa, len);
		pthread_rwlock_unlock(&vm->mem_lock);
	}
	if (!e) {
		not_in_ram("kvmkit_vm_mark_dirty", gpa, len);
		return -EFAULT;
	}
	return 0;
}

/*
 * KVM keeps its own translation of guest pages and drops it when the MMU
 * notifier reports a change to the host page tables. Adding PROT_EXEC to
 * the page and taking it away again is such a change (change_protection()
 * invalidates the range), and it never makes the page less accessible, so
 * a vCPU touching it meanwhile only refaults. The first call splits the
 * page out of the RAM mapping and the second merges it back, so nothing
 * lasts: not a mapping, not a moved page, not a lost madvise flag.
 */
int kvmkit_vm_flush_page(struct kvmkit_vm *vm, uint64_t gpa)
{
	const char *op = "kvmkit_vm_flush_page";
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	const struct kvmk_region *e = NULL;
	uint8_t *p;
	int r = 0;

	/* With READ_IMPLIES_EXEC readable memory is executable already, and
	 * adding PROT_EXEC would change nothing. */
	if (personality(0xffffffff) & READ_IMPLIES_EXEC)
		return kvmk_err_unsupported(op, EOPNOTSUPP, "READ_IMPLIES_EXEC personality");
	pthread_rwlock_rdlock(&vm->mem_lock);
	for (int i = 0; i < KVMK_MAX_REGIONS; i++) {
		const struct kvmk_region *c = &vm->regions[i];

		if (c->used && gpa >= c->gpa && gpa - c->gpa < c->size) {
			e = c;
			break;
		}
	}
	if (!e) {
		r = -EFAULT;
		kvmk_err_param(op, "gpa", "not inside guest RAM", "0x%llx",
			       (unsigned long long)gpa);
		goto out;
	}
	/* Memory the caller supplied may have other protections or be
	 * shared: changing them is not kvmkit's business. */
	if (!e->map_base) {
		r = kvmk_err_unsupported(op, EOPNOTSUPP,
					 "gpa 0x%llx: memory the caller supplied (slot %u)",
					 (unsigned long long)gpa, e->slot);
		goto out;
	}
	p = e->hva + ((gpa - e->gpa) & ~(page - 1));
	if (mprotect(p, page, PROT_READ | PROT_WRITE | PROT_EXEC)) {
		r = kvmk_err_sys(op, errno, "mprotect(+exec) of gpa 0x%llx",
				 (unsigned long long)gpa);
		goto out;
	}
	/* Merging back allocates no mapping; should it fail, the page stays
	 * executable in a mapping of its own (reported). */
	if (mprotect(p, page, PROT_READ | PROT_WRITE))
		r = kvmk_err_sys(op, errno, "mprotect(-exec) of gpa 0x%llx",
				 (unsigned long long)gpa);
out:
	pthread_rwlock_unlock(&vm->mem_lock);
	return r;
}

unsigned int kvmkit_vm_memory_regions(struct kvmkit_vm *vm, struct kvmkit_mem_region *out,
				      unsigned int max)
{
	struct kvmkit_mem_region tab[KVMK_MAX_REGIONS];
	unsigned int n = 0;

	pthread_rwlock_rdlock(&vm->mem_lock);
	for (unsigned int i = 0; i < KVMK_MAX_REGIONS; i++) {
		const struct kvmk_region *e = &vm->regions[i];

		if (e->used)
			tab[n++] = (struct kvmkit_mem_region){ (int)e->slot, e->gpa, e->size,
							       e->flags };
	}
	pthread_rwlock_unlock(&vm->mem_lock);
	/* Slot order, whatever order the table has. */
	for (unsigned int i = 1; i < n; i++)
		for (unsigned int j = i; j > 0 && tab[j - 1].slot > tab[j].slot; j--) {
			struct kvmkit_mem_region t = tab[j];

			tab[j] = tab[j - 1];
			tab[j - 1] = t;
		}
	memcpy(out, tab, (n < max ? n : max) * sizeof(*out));
	return n;
}
