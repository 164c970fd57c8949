// SPDX-License-Identifier: MIT
/*
 * virtio-mmio version 2 registers (virtio 1.x 4.2.2), served on vCPU
 * threads under the device's lock. Control registers take 32-bit aligned
 * accesses only (4.2.2.2); the device configuration space at 0x100 takes
 * naturally aligned 8/16/32-bit accesses. Anything else reads 0, is
 * ignored when written, and counted (bad_accesses) with a throttled line.
 */
#include <string.h>
#include <sys/eventfd.h>

#define KVMK_LOG_MODULE "virtio"
#include "virtio/virtio_internal.h"

enum {
	REG_MAGIC = 0x000,
	REG_VERSION = 0x004,
	REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010,
	REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020,
	REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034,
	REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044,
	REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060,
	REG_INTERRUPT_ACK = 0x064,
	REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080,
	REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090,
	REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0,
	REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_CONFIG_GENERATION = 0x0fc,
	REG_CONFIG = 0x100,
};

#define MAGIC 0x74726976 /* "virt" */
#define VENDOR 0x4b4d564b /* "KVMK" */

uint64_t kvmk_virtio_offered(const struct kvmk_virtio *t)
{
	return t->ops->features | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
	       (1ull << VIRTIO_F_EVENT_IDX);
}

static struct kvmk_virtio_queue *selected(struct kvmk_virtio *t)
{
	return t->queue_sel < t->ops->nqueues ? &t->q[t->queue_sel] : NULL;
}

void kvmk_virtio_reset(struct kvmk_virtio *t)
{
	t->status = 0;
	t->isr = 0;
	t->dev_feat_sel = t->drv_feat_sel = t->queue_sel = 0;
	t->driver_features = 0;
	t->pending = 0;
	for (unsigned int i = 0; i < t->ops->nqueues; i++) {
		struct kvmk_vq *vq = &t->q[i].vq;

		kvmk_vq_stop(vq);
		vq->size = 0;
		vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	}
	if (t->ops->reset)
		t->ops->reset(t);
	/* Requests in flight may still write guest memory: the driver must
	 * not see that after its reset. */
	while (t->inflight)
		pthread_cond_wait(&t->idle, &t->lock);
	t->st.resets++;
}

static uint32_t read_queue(struct kvmk_virtio *t, uint64_t off)
{
	struct kvmk_virtio_queue *q = selected(t);

	if (!q)
		return 0; /* a queue that does not exist: QueueNumMax 0 */
	switch (off) {
	case REG_QUEUE_NUM_MAX:
		return t->queue_max;
	case REG_QUEUE_NUM:
		return q->vq.size;
	case REG_QUEUE_READY:
		return q->vq.ready;
	case REG_QUEUE_DESC_LOW:
		return (uint32_t)q->vq.desc_gpa;
	case REG_QUEUE_DESC_HIGH:
		return (uint32_t)(q->vq.desc_gpa >> 32);
	case REG_QUEUE_DRIVER_LOW:
		return (uint32_t)q->vq.avail_gpa;
	case REG_QUEUE_DRIVER_HIGH:
		return (uint32_t)(q->vq.avail_gpa >> 32);
	case REG_QUEUE_DEVICE_LOW:
		return (uint32_t)q->vq.used_gpa;
	case REG_QUEUE_DEVICE_HIGH:
		return (uint32_t)(q->vq.used_gpa >> 32);
	}
	return 0; /* not a queue register */
}

static uint32_t read_reg(struct kvmk_virtio *t, uint64_t off)
{
	uint64_t f;

	switch (off) {
	case REG_MAGIC:
		return MAGIC;
	case REG_VERSION:
		return 2;
	case REG_DEVICE_ID:
		return t->ops->device_id;
	case REG_VENDOR_ID:
		return VENDOR;
	case REG_DEVICE_FEATURES:
		f = kvmk_virtio_offered(t);
		return t->dev_feat_sel == 0 ? (uint32_t)f :
		       t->dev_feat_sel == 1 ? (uint32_t)(f >> 32) :
					      0;
	case REG_INTERRUPT_STATUS:
		return t->isr | t->isr_forced;
	case REG_STATUS:
		return t->status;
	case REG_CONFIG_GENERATION:
		return t->config_gen;
	}
	/* The selected queue's registers; 0 for write-only and reserved ones. */
	return read_queue(t, off);
}

static void set_queue_ready(struct kvmk_virtio *t, struct kvmk_virtio_queue *q, uint32_t v)
{
	struct kvmk_vq *vq = &q->vq;

	if (!v) {
		/* Stopping a queue: chains in flight become stale. */
		kvmk_vq_stop(vq);
		return;
	}
	if (vq->ready)
		return;
	if (!(t->status & VIRTIO_STATUS_FEATURES_OK)) {
		kvmk_virtio_warn(t, "queue %u made ready before FEATURES_OK", t->queue_sel);
		return;
	}
	if (vq->size > t->queue_max) {
		kvmk_virtio_warn(t, "queue %u: size %u above QueueNumMax %u", t->queue_sel,
				 vq->size, t->queue_max);
		return;
	}
	vq->event_idx = t->driver_features & (1ull << VIRTIO_F_EVENT_IDX);
	vq->indirect = t->driver_features & (1ull << VIRTIO_F_INDIRECT_DESC);
	/* A refused layout leaves the queue not ready, which the driver reads
	 * back (4.2.3.2). */
	if (kvmk_vq_start(vq, &t->mem))
		kvmk_virtio_warn(t, "queue %u not made ready: %s", t->queue_sel, vq->why);
}

/* The low or @high 32 bits of a 64-bit value the driver writes in halves. */
static void set_half(uint64_t *x, bool high, uint32_t v)
{
	if (high)
		*x = (*x & 0xffffffffull) | (uint64_t)v << 32;
	else
		*x = (*x & ~0xffffffffull) | v;
}

static void write_queue(struct kvmk_virtio *t, uint64_t off, uint32_t v)
{
	struct kvmk_virtio_queue *q = selected(t);
	struct kvmk_vq *vq;

	if (!q)
		return;
	vq = &q->vq;
	if (off == REG_QUEUE_READY) {
		set_queue_ready(t, q, v);
		return;
	}
	/* The layout of a live queue is fixed (4.2.3.2: set it up before
	 * QueueReady). */
	if (vq->ready) {
		kvmk_virtio_warn(t, "queue %u: register 0x%03x written while ready", t->queue_sel,
				 (unsigned int)off);
		return;
	}
	switch (off) {
	case REG_QUEUE_NUM:
		/* Checked against QueueNumMax when the queue is made ready. */
		vq->size = v <= KVMK_VQ_MAX_SIZE ? (uint16_t)v : 0;
		break;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
		set_half(&vq->desc_gpa, off == REG_QUEUE_DESC_HIGH, v);
		break;
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
		set_half(&vq->avail_gpa, off == REG_QUEUE_DRIVER_HIGH, v);
		break;
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		set_half(&vq->used_gpa, off == REG_QUEUE_DEVICE_HIGH, v);
		break;
	}
}

static void write_status(struct kvmk_virtio *t, uint32_t v)
{
	uint32_t old = t->status, set;

	if (v == 0) {
		kvmk_virtio_reset(t);
		return;
	}
	/* NEEDS_RESET is the device's bit; the driver only adds bits. */
	v = (v & 0xff & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET);
	if ((old & ~v) != 0) {
		kvmk_virtio_warn(t, "driver cleared status bits (0x%x -> 0x%x): ignored", old, v);
		return;
	}
	set = v & ~old;
	if (set & VIRTIO_STATUS_FEATURES_OK) {
		uint64_t bad = t->driver_features & ~kvmk_virtio_offered(t);

		/* Modern only: no VERSION_1, no device (4.2.2, 6.1). */
		if (!(t->driver_features & (1ull << VIRTIO_F_VERSION_1)) || bad) {
			kvmk_virtio_warn(t, "FEATURES_OK refused: driver features 0x%llx (%s)",
					 (unsigned long long)t->driver_features,
					 bad ? "not offered" : "no VERSION_1: legacy driver");
			v &= ~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	if ((set & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) {
		kvmk_virtio_warn(t, "DRIVER_OK without FEATURES_OK: ignored");
		v &= ~VIRTIO_STATUS_DRIVER_OK;
	}
	t->status = v;
	/* Buffers may have been made available before DRIVER_OK. */
	if (v & ~old & VIRTIO_STATUS_DRIVER_OK)
		kvmk_virtio_kick(t);
}

static void write_reg(struct kvmk_virtio *t, uint64_t off, uint32_t v)
{
	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		t->dev_feat_sel = v;
		break;
	case REG_DRIVER_FEATURES_SEL:
		t->drv_feat_sel = v;
		break;
	case REG_DRIVER_FEATURES:
		/* Only while negotiating (3.1.1 steps 4-5). */
		if (!(t->status & VIRTIO_STATUS_DRIVER) ||
		    (t->status & VIRTIO_STATUS_FEATURES_OK)) {
			kvmk_virtio_warn(t, "DriverFeatures written outside negotiation");
			break;
		}
		if (t->drv_feat_sel <= 1)
			set_half(&t->driver_features, t->drv_feat_sel == 1, v);
		else if (v)
			kvmk_virtio_warn(t, "feature bits 0x%x in page %u: none offered", v,
					 t->drv_feat_sel);
		break;
	case REG_QUEUE_SEL:
		t->queue_sel = v;
		break;
	case REG_QUEUE_NOTIFY:
		/* Only reached without an ioeventfd for this value. */
		if (v < t->ops->nqueues) {
			t->st.mmio_notifies++;
			eventfd_write(t->q[v].notify_fd, 1);
		}
		break;
	case REG_INTERRUPT_ACK:
		t->isr &= ~v;
		break;
	case REG_STATUS:
		write_status(t, v);
		break;
	case REG_QUEUE_NUM:
	case REG_QUEUE_READY:
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH:
		write_queue(t, off, v);
		break;
	default:
		kvmk_virtio_warn(t, "write of 0x%x to read-only or reserved register 0x%03x", v,
				 (unsigned int)off);
	}
}

static bool config_access_ok(const struct kvmk_virtio *t, uint64_t off, unsigned int size)
{
	off -= REG_CONFIG;
	return (size == 1 || size == 2 || size == 4) && !(off & (size - 1)) &&
	       off + size <= t->config_len;
}

static void mmio_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	struct kvmk_virtio *t = opaque;
	uint32_t v = 0;

	pthread_mutex_lock(&t->lock);
	if (off >= REG_CONFIG) {
		if (config_access_ok(t, off, size))
			memcpy(&v, t->config + (off - REG_CONFIG), size);
		else
			t->st.bad_accesses++;
	} else if (size == 4 && !(off & 3)) {
		v = read_reg(t, off);
	} else {
		t->st.bad_accesses++;
		kvmk_virtio_warn(t,
				 "%u-byte read at 0x%03x: registers take aligned 32-bit accesses",
				 size, (unsigned int)off);
	}
	pthread_mutex_unlock(&t->lock);
	memset(data, 0, size);
	memcpy(data, &v, size < 4 ? size : 4);
}

static void mmio_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmk_virtio *t = opaque;
	uint32_t v = 0;

	memcpy(&v, data, size < 4 ? size : 4);
	pthread_mutex_lock(&t->lock);
	if (off >= REG_CONFIG) {
		/* No device here has writable configuration fields. */
		if (!config_access_ok(t, off, size))
			t->st.bad_accesses++;
	} else if (size == 4 && !(off & 3)) {
		write_reg(t, off, v);
	} else {
		t->st.bad_accesses++;
		kvmk_virtio_warn(t,
				 "%u-byte write at 0x%03x: registers take aligned 32-bit accesses",
				 size, (unsigned int)off);
	}
	pthread_mutex_unlock(&t->lock);
}

const struct kvmkit_io_ops kvmk_virtio_mmio_ops = { mmio_read, mmio_write };
