// SPDX-License-Identifier: MIT
/*
 * Address-range buses. The range table is immutable once published: a
 * registration builds a new sorted table and swaps the pointer, so a vCPU
 * dispatching an exit reads it without a lock, and a handler may register
 * or unregister ranges (even on its own bus) without deadlocking. Replaced
 * tables are kept until the bus is destroyed because a vCPU may still be
 * searching one; they are small and registrations are rare.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "bus"
#include "core/internal.h"
#include <kvmkit/bus.h>
#include "bus/bus_internal.h"

/*
 * What dispatch reads per exit is packed: 40 bytes a range, the handlers
 * copied out of the device's ops at registration (one fewer page to touch
 * after a world switch) and the names kept apart, after the ranges.
 */
struct range {
	uint64_t base;
	uint64_t len;
	void (*read)(void *opaque, uint64_t offset, void *data, unsigned int size);
	void (*write)(void *opaque, uint64_t offset, const void *data, unsigned int size);
	void *opaque;
};

struct table {
	unsigned int n;
	char (*names)[32]; /* n names, after r[n] in the same allocation */
	struct table *retired_next;
	struct range r[];
};

#define BUS_PAGE 4096

/* A bus is one page: the header, then its tables while they fit (later ones
 * come from malloc), so that dispatch touches one page for the bus and the
 * table it searches. */
struct kvmkit_bus {
	struct table *cur; /* published with release, read with acquire */
	enum kvmkit_bus_kind kind;
	struct table *retired;
	pthread_mutex_t lock; /* serialises writers */
	uint64_t unclaimed;
	/* The owner's grace period (a VM: no vCPU still inside a handler it
	 * entered through the old table), run after an unregister. */
	void (*sync)(void *opaque);
	void *sync_opaque;
	size_t arena_used; /* bytes of arena[] handed out, never given back */
	_Alignas(16) unsigned char arena[];
};

void kvmk_bus_set_sync(struct kvmkit_bus *bus, void (*fn)(void *opaque), void *opaque)
{
	bus->sync = fn;
	bus->sync_opaque = opaque;
}

static const char *bus_name(const struct kvmkit_bus *bus)
{
	return bus->kind == KVMKIT_BUS_PIO ? "pio" : "mmio";
}

/* A zeroed table for @n ranges, from the bus's page while it has room. */
static struct table *table_alloc(struct kvmkit_bus *bus, unsigned int n)
{
	size_t size = (sizeof(struct table) + (size_t)n * (sizeof(struct range) + 32) + 15) & ~15ul;
	size_t room = BUS_PAGE - offsetof(struct kvmkit_bus, arena) - bus->arena_used;
	struct table *t;

	if (size <= room) {
		t = (struct table *)(bus->arena + bus->arena_used);
		bus->arena_used += size;
		memset(t, 0, size);
	} else {
		t = calloc(1, size);
		if (!t)
			return NULL;
	}
	t->n = n;
	t->names = (void *)&t->r[n];
	return t;
}

static void table_free(struct kvmkit_bus *bus, struct table *t)
{
	if ((unsigned char *)t < bus->arena ||
	    (unsigned char *)t >= (unsigned char *)bus + BUS_PAGE)
		free(t);
}

/* Copies entries [from, from + count) of @t to @at in @nt, names too. */
static void copy_ranges(struct table *nt, unsigned int at, const struct table *t, unsigned int from,
			unsigned int count)
{
	memcpy(nt->r + at, t->r + from, count * sizeof(struct range));
	memcpy(nt->names + at, t->names + from, count * sizeof(t->names[0]));
}

int kvmkit_bus_create(enum kvmkit_bus_kind kind, struct kvmkit_bus **out)
{
	struct kvmkit_bus *bus;

	if (posix_memalign((void **)&bus, BUS_PAGE, BUS_PAGE))
		return kvmk_err_resource("kvmkit_bus_create", ENOMEM, NULL);
	memset(bus, 0, sizeof(*bus));
	bus->kind = kind;
	bus->cur = table_alloc(bus, 0); /* from the page: cannot fail */
	pthread_mutex_init(&bus->lock, NULL);
	*out = bus;
	return 0;
}

void kvmkit_bus_destroy(struct kvmkit_bus *bus)
{
	struct table *t, *next;

	if (!bus)
		return;
	for (t = bus->retired; t; t = next) {
		next = t->retired_next;
		table_free(bus, t);
	}
	table_free(bus, bus->cur);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

/* Swaps in @nt (lock held) and retires the old table. */
static void publish(struct kvmkit_bus *bus, struct table *nt)
{
	struct table *old = bus->cur;

	__atomic_store_n(&bus->cur, nt, __ATOMIC_RELEASE);
	old->retired_next = bus->retired;
	bus->retired = old;
}

int kvmkit_bus_register(struct kvmkit_bus *bus, uint64_t base, uint64_t len, const char *name,
			const struct kvmkit_io_ops *ops, void *opaque)
{
	const char *op = "kvmkit_bus_register";
	struct table *t, *nt;
	unsigned int pos;

	if (len == 0)
		return kvmk_err_param(op, "len", "must be non-zero", "0");
	if (base + len - 1 < base)
		return kvmk_err_param(op, "len", "range wraps the address space", "0x%llx+0x%llx",
				      (unsigned long long)base, (unsigned long long)len);
	if (bus->kind == KVMKIT_BUS_PIO && base + len > 0x10000)
		return kvmk_err_param(op, "base", "port range beyond 0xffff", "0x%llx+0x%llx",
				      (unsigned long long)base, (unsigned long long)len);
	if (!ops || (!ops->read && !ops->write))
		return kvmk_err_param(op, "ops", "needs a read or write handler", "%p",
				      (const void *)ops);

	pthread_mutex_lock(&bus->lock);
	t = bus->cur;
	for (pos = 0; pos < t->n && t->r[pos].base < base; pos++)
		;
	/* Sorted and disjoint: only the neighbours can overlap. */
	for (unsigned int i = pos ? pos - 1 : 0; i < t->n && i <= pos; i++) {
		const struct range *e = &t->r[i];

		if (base <= e->base + e->len - 1 && e->base <= base + len - 1) {
			int r = kvmk_err_param(op, "range", "overlaps a registered device",
					       "%s 0x%llx+0x%llx vs %s 0x%llx+0x%llx on %s",
					       name ? name : "?", (unsigned long long)base,
					       (unsigned long long)len, t->names[i],
					       (unsigned long long)e->base,
					       (unsigned long long)e->len, bus_name(bus));

			pthread_mutex_unlock(&bus->lock);
			return r == -EINVAL ? -EEXIST : r;
		}
	}
	nt = table_alloc(bus, t->n + 1);
	if (!nt) {
		pthread_mutex_unlock(&bus->lock);
		return kvmk_err_resource(op, ENOMEM, NULL);
	}
	copy_ranges(nt, 0, t, 0, pos);
	copy_ranges(nt, pos + 1, t, pos, t->n - pos);
	nt->r[pos] = (struct range){
		.base = base, .len = len, .read = ops->read, .write = ops->write, .opaque = opaque
	};
	snprintf(nt->names[pos], sizeof(nt->names[pos]), "%s", name ? name : "device");
	publish(bus, nt);
	pthread_mutex_unlock(&bus->lock);
	kvmk_debug("%s: %s at 0x%llx+0x%llx", bus_name(bus), name ? name : "device",
		   (unsigned long long)base, (unsigned long long)len);
	return 0;
}

int kvmkit_bus_unregister(struct kvmkit_bus *bus, uint64_t base)
{
	struct table *t, *nt;
	unsigned int i;

	pthread_mutex_lock(&bus->lock);
	t = bus->cur;
	for (i = 0; i < t->n && t->r[i].base != base; i++)
		;
	if (i == t->n) {
		pthread_mutex_unlock(&bus->lock);
		kvmk_err_param("kvmkit_bus_unregister", "base", "no device registered there",
			       "0x%llx", (unsigned long long)base);
		return -ENOENT;
	}
	nt = table_alloc(bus, t->n - 1);
	if (!nt) {
		pthread_mutex_unlock(&bus->lock);
		return kvmk_err_resource("kvmkit_bus_unregister", ENOMEM, NULL);
	}
	copy_ranges(nt, 0, t, 0, i);
	copy_ranges(nt, i, t, i + 1, t->n - i - 1);
	publish(bus, nt);
	pthread_mutex_unlock(&bus->lock);
	/* Once this returns, the device's handlers are not running on any
	 * vCPU (but the caller's own), so its owner may free it. */
	if (bus->sync)
		bus->sync(bus->sync_opaque);
	return 0;
}

/* The index of the range holding @addr, or -1. */
static int find(const struct table *t, uint64_t addr)
{
	unsigned int lo = 0, hi = t->n;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct range *e = &t->r[mid];

		if (addr < e->base)
			hi = mid;
		else if (addr - e->base >= e->len)
			lo = mid + 1;
		else
			return (int)mid;
	}
	return -1;
}

/* hot: placed with the vCPU loop's exit path (.text.hot), so that after a
 * world switch the whole path is one code page. */
__attribute__((hot)) bool kvmkit_bus_dispatch(struct kvmkit_bus *bus, uint64_t addr, void *data,
					      unsigned int size, bool is_write)
{
	const struct table *t = __atomic_load_n(&bus->cur, __ATOMIC_ACQUIRE);
	int i = find(t, addr);
	const struct range *e = i < 0 ? NULL : &t->r[i];
	uint64_t off;

	/* An access must fit inside the range: a guest straddling two devices
	 * or the end of one gets nothing. */
	if (!e || size == 0 || size > 8 || size > e->len ||
	    (off = addr - e->base) > e->len - size) {
		__atomic_add_fetch(&bus->unclaimed, 1, __ATOMIC_RELAXED);
		if (!is_write)
			memset(data, 0xff, size > 8 ? 8 : size);
		kvmk_trace("%s: unclaimed %s at 0x%llx size %u", bus_name(bus),
			   is_write ? "write" : "read", (unsigned long long)addr, size);
		return false;
	}
	if (is_write) {
		if (e->write)
			e->write(e->opaque, off, data, size);
	} else if (e->read) {
		e->read(e->opaque, off, data, size);
	} else {
		memset(data, 0xff, size);
	}
	return true;
}

const char *kvmkit_bus_lookup(struct kvmkit_bus *bus, uint64_t addr)
{
	const struct table *t = __atomic_load_n(&bus->cur, __ATOMIC_ACQUIRE);
	int i = find(t, addr);

	return i < 0 ? NULL : t->names[i];
}

unsigned int kvmkit_bus_count(struct kvmkit_bus *bus)
{
	return __atomic_load_n(&bus->cur, __ATOMIC_ACQUIRE)->n;
}
