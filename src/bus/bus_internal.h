/* SPDX-License-Identifier: MIT */
/* What the VM layer sets on the buses it owns. Internal. */
#ifndef KVMKIT_BUS_INTERNAL_H
#define KVMKIT_BUS_INTERNAL_H

#include <kvmkit/bus.h>

/* @fn runs after every kvmkit_bus_unregister(), outside the bus lock, and
 * returns once no dispatch that may have found the removed range is still
 * running (except on the calling thread). */
void kvmk_bus_set_sync(struct kvmkit_bus *bus, void (*fn)(void *opaque), void *opaque);

#endif
