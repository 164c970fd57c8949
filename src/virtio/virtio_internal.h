/* SPDX-License-Identifier: MIT */
/*
 * The virtio-mmio transport (mmio.c registers, transport.c thread, irq and
 * lifetime) and what a device type (rng.c, blk.c) plugs into it.
 *
 * Locking: one mutex per device, t->lock, guards the registers and the
 * queues. vCPUs take it for a register access; the device thread takes it
 * to process queues and releases it around slow work (blocking I/O), with
 * the request counted in t->inflight so that a reset can wait for it.
 */
#ifndef KVMKIT_VIRTIO_INTERNAL_H
#define KVMKIT_VIRTIO_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <kvmkit/irq.h>
#include <kvmkit/virtio.h>

#include "core/internal.h"
#include "virtio/virtqueue.h"

/* Feature bits (virtio 1.x 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

/* InterruptStatus bits (4.2.2). */
#define VIRTIO_INT_USED 1
#define VIRTIO_INT_CONFIG 2

#define KVMK_VIRTIO_MAX_QUEUES 3 /* virtio-vsock: rx, tx, event */
#define KVMK_VIRTIO_DEFAULT_QSIZE 256
#define KVMK_VIRTIO_CONFIG_MAX 64

struct kvmk_virtio;

/* A device type. Callbacks run with t->lock held unless said otherwise. */
struct kvmk_virtio_ops {
	const char *name;
	uint32_t device_id;
	uint64_t features; /* device-specific bits; the transport adds its own */
	unsigned int nqueues;
	/* Queue @q may have work (device thread). Budgeted: a device that
	 * stops early calls kvmk_virtio_kick() to come back. */
	void (*queue)(struct kvmk_virtio *t, unsigned int q);
	/* The driver reset the device; the queues are already stopped.
	 * Optional. */
	void (*reset)(struct kvmk_virtio *t);
	/* An fd of the device's own the thread polls (-1: none), and its
	 * handler, called WITHOUT t->lock. */
	int (*poll_fd)(struct kvmk_virtio *t);
	void (*poll)(struct kvmk_virtio *t);
	/* The thread has been joined: finish what is in flight and free
	 * t->priv. Without t->lock. */
	void (*destroy)(struct kvmk_virtio *t);
};

struct kvmk_virtio_queue {
	struct kvmk_vq vq;
	int notify_fd; /* eventfd: ioeventfd on QueueNotify with datamatch q */
	bool ioeventfd; /* KVM signals notify_fd itself */
};

struct kvmk_virtio {
	const struct kvmk_virtio_ops *ops;
	void *priv; /* the device type's state */
	struct kvmkit_vm *vm;
	struct kvmkit_irqchip *chip;
	struct kvmk_gmem mem;
	uint64_t base;
	uint32_t gsi;
	bool gsi_allocated;
	enum kvmkit_virtio_trigger trigger;
	uint16_t queue_max;
	bool registered;
	bool uring; /* virtio-blk: I/O through io_uring (for the info) */

	pthread_mutex_t lock;
	pthread_cond_t idle; /* inflight reached 0 */
	unsigned int inflight; /* requests worked on without the lock */
	uint32_t status, isr, config_gen;
	/* InterruptStatus bits that read as set whatever isr says: a queue
	 * the kernel serves (vhost) signals the irqfd without setting isr. */
	uint32_t isr_forced;
	uint32_t dev_feat_sel, drv_feat_sel, queue_sel;
	uint64_t driver_features;
	uint8_t config[KVMK_VIRTIO_CONFIG_MAX];
	uint32_t config_len;
	struct kvmk_virtio_queue q[KVMK_VIRTIO_MAX_QUEUES];
	uint32_t pending; /* queues to look at once the VM runs again */

	/* The device thread and its fds. */
	pthread_t thread;
	bool thread_started;
	int epoll_fd, kick_fd, stop_fd, irq_fd, resample_fd;
	bool irq_bound; /* irq_fd bound to gsi (at the first interrupt) */

	/* Log throttling (one line a second, with the count meanwhile). */
	uint64_t log_ns;
	unsigned int log_suppressed;

	struct kvmkit_virtio_stats st; /* under lock; status filled on read */
};

/* transport.c */
int kvmk_virtio_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
		       const struct kvmk_virtio_ops *ops, void *priv, struct kvmk_virtio **out);
/* Wakes the device thread to look at every ready queue. Any thread. */
void kvmk_virtio_kick(struct kvmk_virtio *t);
/* Binds the irqfd if it is not yet (it is at the first interrupt): for
 * the kernel (vhost) to signal it directly (lock held). */
int kvmk_virtio_bind_irq(struct kvmk_virtio *t);
/* Raises InterruptStatus @bits and signals the irqfd (lock held). */
void kvmk_virtio_interrupt(struct kvmk_virtio *t, uint32_t bits);
/* After pushes on queue @q: a used-buffer interrupt if the driver wants
 * one (lock held). */
void kvmk_virtio_used(struct kvmk_virtio *t, unsigned int q);
/* Queue @q is malformed: DEVICE_NEEDS_RESET, config interrupt, a throttled
 * log line (lock held). */
void kvmk_virtio_broken(struct kvmk_virtio *t, unsigned int q);
/* Whether queue @q may be processed now (lock held). */
bool kvmk_virtio_queue_live(struct kvmk_virtio *t, unsigned int q);
/* A throttled warning about the guest (lock held). */
void kvmk_virtio_warn(struct kvmk_virtio *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Whether the device thread watches queue @q's notify eventfd (it stops
 * while the kernel (vhost) polls that fd itself). Any thread. */
int kvmk_virtio_queue_watch(struct kvmk_virtio *t, unsigned int q, bool on);
/* Around work done without the lock (lock held at both calls). */
void kvmk_virtio_inflight_get(struct kvmk_virtio *t);
void kvmk_virtio_inflight_put(struct kvmk_virtio *t);

/* mmio.c */
extern const struct kvmkit_io_ops kvmk_virtio_mmio_ops;
/* Device reset: registers to their initial values, queues stopped, waits
 * for work in flight (lock held; released while waiting). */
void kvmk_virtio_reset(struct kvmk_virtio *t);
/* Feature bits the device offers. */
uint64_t kvmk_virtio_offered(const struct kvmk_virtio *t);

/* Saved state (the machine frames it): registers and queue indices.
 * Restore into a device of the same type and slot, before the VM runs;
 * untrusted bytes, nothing changed on error. */
int kvmk_virtio_save(struct kvmkit_virtio *dev, struct kvmk_blob *out);
int kvmk_virtio_restore(struct kvmkit_virtio *dev, const uint8_t *p, size_t len);

/* Tests: the next blocking I/O of virtio-blk @dev (synchronous, whatever
 * the back end) sleeps @ms first, with the request in flight. */
void kvmk_virtio_blk_test_delay(struct kvmkit_virtio *dev, unsigned int ms);

/* The public handle is the transport. */
struct kvmkit_virtio {
	struct kvmk_virtio t;
};

static inline struct kvmkit_virtio *kvmk_virtio_dev(struct kvmk_virtio *t)
{
	return (struct kvmkit_virtio *)(void *)t;
}

#endif
