// SPDX-License-Identifier: MIT
/* isa-debug-exit: a guest write of V stops the VM with status (V << 1) | 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "debug-exit"
#include "core/internal.h"
#include <kvmkit/devices.h>

struct kvmkit_debug_exit {
	struct kvmkit_vm *vm;
	uint16_t port;
};

static void de_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	memset(data, 0, size);
}

static void de_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmkit_debug_exit *d = opaque;
	uint32_t v = 0;
	char detail[64];

	memcpy(&v, data, size > 4 ? 4 : size);
	snprintf(detail, sizeof(detail), "debug-exit write 0x%x", v);
	kvmkit_vm_request_stop(d->vm, KVMKIT_STOP_GUEST_EXIT, (int)((v << 1) | 1), detail);
}

static const struct kvmkit_io_ops de_ops = { .read = de_read, .write = de_write };

int kvmkit_debug_exit_create(struct kvmkit_vm *vm, uint16_t port, struct kvmkit_debug_exit **out)
{
	struct kvmkit_debug_exit *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return kvmk_err_resource("kvmkit_debug_exit_create", ENOMEM, NULL);
	d->vm = vm;
	d->port = port;
	/* QEMU's device is 4 bytes wide at 0xf4. */
	r = kvmkit_bus_register(kvmkit_vm_pio_bus(vm), port, 4, "isa-debug-exit", &de_ops, d);
	if (r) {
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

void kvmkit_debug_exit_destroy(struct kvmkit_debug_exit *d)
{
	if (!d)
		return;
	kvmkit_bus_unregister(kvmkit_vm_pio_bus(d->vm), d->port);
	free(d);
}
