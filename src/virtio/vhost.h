/* SPDX-License-Identifier: MIT */
/*
 * The part of a virtio-mmio device that the kernel's vhost serves: the
 * guest's memory map, and for each queue it takes its size, indices and
 * ring addresses, the queue's notify eventfd as the kick (the ioeventfd
 * KVM signals) and the device's irqfd eventfd as the call, so guest and
 * kernel reach each other without kvmkit. vhost-net and vhost-vsock add
 * their backend ioctls between start and stop.
 *
 * While vhost runs, the transport's thread leaves the queues' notify fds
 * alone and InterruptStatus reads with the used-buffer bit set
 * (virtio_io.h says why). Each queue's error eventfd is err_fd, which the
 * device watches: a ring the kernel finds malformed sets NEEDS_RESET. Called with the transport's lock held, except
 * kvmk_vhost_open() and kvmk_vhost_close().
 */
#ifndef KVMKIT_VIRTIO_VHOST_H
#define KVMKIT_VIRTIO_VHOST_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/virtio_internal.h"

struct kvmk_vhost {
	int fd;
	int err_fd; /* eventfd: the kernel found a ring malformed (VHOST_SET_VRING_ERR) */
	uint64_t features; /* what the kernel offers (VHOST_GET_FEATURES) */
	unsigned int nq; /* queues 0 .. nq-1 go to the kernel */
	bool running;
};

/* Opens @path (one clear error when it is missing), takes ownership,
 * reads the kernel's features. */
int kvmk_vhost_open(struct kvmk_vhost *v, const char *path, unsigned int nq);
/* Hands queues 0 .. nq-1 (all live) to the kernel with the driver's
 * features. On error nothing is left running. */
int kvmk_vhost_start(struct kvmk_vhost *v, struct kvmk_virtio *t);
/* Once the backend is attached: the driver may have notified before the
 * kernel polled the kick fds. */
void kvmk_vhost_kick(struct kvmk_vhost *v, struct kvmk_virtio *t);
/* Takes the queues back (the caller detached its backend first). */
void kvmk_vhost_stop(struct kvmk_vhost *v, struct kvmk_virtio *t);
/* After err_fd became readable (without the lock): takes the lock and,
 * while the kernel owns the queues, sets DEVICE_NEEDS_RESET as for a
 * malformed ring kvmkit found itself. */
void kvmk_vhost_error(struct kvmk_vhost *v, struct kvmk_virtio *t);
void kvmk_vhost_close(struct kvmk_vhost *v);

#endif
