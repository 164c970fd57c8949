/* SPDX-License-Identifier: MIT */
/*
 * Address-space buses (x86 port I/O and MMIO). Devices register disjoint
 * address ranges; vCPU exits are dispatched to the range's handler with the
 * offset inside the range. Overlapping registrations are rejected.
 *
 * Threads: every call but kvmkit_bus_destroy() may come from any thread at
 * any time, also from a handler on its own bus; dispatch takes no lock
 * (writers publish a new immutable range table). Handlers run on the vCPU
 * thread that took the exit and may run concurrently on several vCPUs:
 * devices lock their own state.
 *
 * Lifetimes: a range's @ops and @opaque are kept (not copied) until it is
 * unregistered; its name is copied. On a VM's buses (owned and destroyed by
 * the VM) kvmkit_bus_unregister() returns only when no other vCPU is still
 * in a handler (kvmkit_vm_quiesce(), with its rule for handlers), so the
 * device may then be freed. A bus from kvmkit_bus_create() has nothing to
 * wait for: its owner makes sure no dispatch still uses a range it
 * unregisters, and that none runs when it destroys the bus.
 */
#ifndef KVMKIT_BUS_H
#define KVMKIT_BUS_H

#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kvmkit_bus;

struct kvmkit_io_ops {
	/* Fill @data with @size bytes (1, 2, 4 or 8) read at @offset. */
	void (*read)(void *opaque, uint64_t offset, void *data, unsigned int size);
	void (*write)(void *opaque, uint64_t offset, const void *data, unsigned int size);
};

enum kvmkit_bus_kind { KVMKIT_BUS_PIO, KVMKIT_BUS_MMIO };

int kvmkit_bus_create(enum kvmkit_bus_kind kind, struct kvmkit_bus **out);
void kvmkit_bus_destroy(struct kvmkit_bus *bus);

/* Registers [base, base + len) under @name (copied, at most 31 characters).
 * -EEXIST (KVMKIT_ERR_PARAM naming both devices) if it overlaps a registered
 * range; -EINVAL for len 0 or a range that wraps the address space. The
 * handlers in @ops are copied at registration; @opaque is kept. */
int kvmkit_bus_register(struct kvmkit_bus *bus, uint64_t base, uint64_t len, const char *name,
			const struct kvmkit_io_ops *ops, void *opaque);
/* Removes the range that starts at @base; -ENOENT if there is none. */
int kvmkit_bus_unregister(struct kvmkit_bus *bus, uint64_t base);

/* Dispatches an access. Returns true if a device took it. An access nobody
 * claims reads as all ones and its writes are dropped (as on a PC bus). An
 * access that crosses the end of a range is not given to the device. */
bool kvmkit_bus_dispatch(struct kvmkit_bus *bus, uint64_t addr, void *data, unsigned int size,
			 bool is_write);

/* The name of the device covering @addr, or NULL. The string stays valid
 * until the bus is destroyed, even if the range is unregistered meanwhile. */
const char *kvmkit_bus_lookup(struct kvmkit_bus *bus, uint64_t addr);

unsigned int kvmkit_bus_count(struct kvmkit_bus *bus);

#ifdef __cplusplus
}
#endif
#endif
