/* SPDX-License-Identifier: MIT */
/*
 * A machine's virtio-mmio devices (machine_virtio.c), kept out of
 * machine.c: its device table calls these. Internal.
 */
#ifndef KVMKIT_VMM_MACHINE_VIRTIO_H
#define KVMKIT_VMM_MACHINE_VIRTIO_H

#include <kvmkit/machine.h>

#include "core/internal.h"

struct kvmk_machine_virtio {
	struct kvmkit_virtio *dev[4 + KVMKIT_MACHINE_MAX_DISKS]; /* + net, vsock */
	unsigned int n;
	struct kvmkit_virtio *console; /* one of dev[] */
};

/* The rng, the disks, the console, net and vsock of @cfg, in windows 0,
 * 1, ... */
int kvmk_machine_virtio_create(struct kvmkit_vm *vm, const struct kvmkit_machine_config *cfg,
			       struct kvmk_machine_virtio *mv);
void kvmk_machine_virtio_destroy(struct kvmk_machine_virtio *mv);
/* u32 count, then per device u32 length and its state. */
int kvmk_machine_virtio_save(struct kvmk_machine_virtio *mv, struct kvmk_blob *out);
int kvmk_machine_virtio_restore(struct kvmk_machine_virtio *mv, const uint8_t *p, size_t len);

#endif
