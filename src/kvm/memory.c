// SPDX-License-Identifier: MIT
/* Guest memory regions: slots, mappings and guest-physical translation. */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "memory"
#include "core/internal.h"
#include "kvm/kvm_internal.h"

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
	struct kvm_userspace_memory_region m = {
		.slot = r->slot,
		.flags = ((r->flags & KVMKIT_MEM_READONLY) ? KVM_MEM_READONLY : 0) |
			 ((r->flags & KVMKIT_MEM_LOG_DIRTY) ? KVM_MEM_LOG_DIRTY_PAGES : 0),
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

int kvmkit_vm_add_memory(struct kvmkit_vm *vm, uint64_t gpa, uint64_t size, unsigned int flags,
			 void *host)
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
		nr.map_base = base;
		nr.map_len = len;
		nr.hva = base;
		if (size >= HUGE_ALIGN) {
			uintptr_t a =
				((uintptr_t)base + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1);

			nr.hva = (uint8_t *)a;
			madvise(nr.hva, size, MADV_HUGEPAGE); /* advisory */
		}
		madvise(nr.hva, size, MADV_DONTDUMP);
	}
	r = set_region(vm, &nr, size);
	if (r) {
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

int kvmkit_vm_remove_memory(struct kvmkit_vm *vm, int slot)
{
	struct kvmk_region *e;
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
	if (!r) {
		if (e->map_base)
			munmap(e->map_base, e->map_len);
		memset(e, 0, sizeof(*e));
	}
	pthread_rwlock_unlock(&vm->mem_lock);
	return r;
}

void *kvmkit_vm_gpa_to_hva(struct kvmkit_vm *vm, uint64_t gpa, uint64_t len)
{
	void *hva = NULL;

	if (gpa + len < gpa) {
		kvmk_err_param("kvmkit_vm_gpa_to_hva", "len", "range wraps", "0x%llx+0x%llx",
			       (unsigned long long)gpa, (unsigned long long)len);
		return NULL;
	}
	pthread_rwlock_rdlock(&vm->mem_lock);
	for (int i = 0; i < KVMK_MAX_REGIONS; i++) {
		const struct kvmk_region *e = &vm->regions[i];

		if (e->used && gpa >= e->gpa && gpa - e->gpa <= e->size &&
		    len <= e->size - (gpa - e->gpa)) {
			hva = e->hva + (gpa - e->gpa);
			break;
		}
	}
	pthread_rwlock_unlock(&vm->mem_lock);
	if (!hva)
		kvmk_err_param("kvmkit_vm_gpa_to_hva", "gpa", "not inside guest RAM",
			       "0x%llx+0x%llx", (unsigned long long)gpa, (unsigned long long)len);
	return hva;
}

int kvmkit_vm_read(struct kvmkit_vm *vm, uint64_t gpa, void *buf, size_t len)
{
	void *p = kvmkit_vm_gpa_to_hva(vm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int kvmkit_vm_write(struct kvmkit_vm *vm, uint64_t gpa, const void *buf, size_t len)
{
	void *p = kvmkit_vm_gpa_to_hva(vm, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}
