// SPDX-License-Identifier: MIT
/*
 * A virtio-mmio device's saved state: the transport registers and each
 * queue's layout and indices, so a restored guest's driver carries on.
 * Little-endian u32 words:
 *   version, device id, queue count,
 *   status, isr, config generation, queue_sel, device/driver feature
 *   selects, driver features (2 words),
 *   per queue: size, ready, desc/avail/used gpa (2 words each),
 *              last_avail, used_idx.
 * Saved with the VM paused: the device thread does no work then, and the
 * save waits for requests in flight.
 */
#include <string.h>

#define KVMK_LOG_MODULE "virtio"
#include "virtio/virtio_internal.h"

#define STATE_VERSION 1u
#define OP "virtio restore"

static int put64(struct kvmk_blob *b, uint64_t v)
{
	int r = kvmk_blob_put_u32(b, (uint32_t)v);

	return r ? r : kvmk_blob_put_u32(b, (uint32_t)(v >> 32));
}

int kvmk_virtio_save(struct kvmkit_virtio *dev, struct kvmk_blob *out)
{
	struct kvmk_virtio *t = &dev->t;
	uint32_t w[] = { STATE_VERSION, t->ops->device_id, t->ops->nqueues, 0, 0, 0, 0, 0, 0 };
	int r = 0;

	pthread_mutex_lock(&t->lock);
	while (t->inflight)
		pthread_cond_wait(&t->idle, &t->lock);
	w[3] = t->status;
	w[4] = t->isr;
	w[5] = t->config_gen;
	w[6] = t->queue_sel;
	w[7] = t->dev_feat_sel;
	w[8] = t->drv_feat_sel;
	for (unsigned int i = 0; !r && i < KVMKIT_ARRAY_SIZE(w); i++)
		r = kvmk_blob_put_u32(out, w[i]);
	if (!r)
		r = put64(out, t->driver_features);
	for (unsigned int i = 0; !r && i < t->ops->nqueues; i++) {
		const struct kvmk_vq *vq = &t->q[i].vq;

		r = kvmk_blob_put_u32(out, vq->size);
		if (!r)
			r = kvmk_blob_put_u32(out, vq->ready);
		if (!r)
			r = put64(out, vq->desc_gpa);
		if (!r)
			r = put64(out, vq->avail_gpa);
		if (!r)
			r = put64(out, vq->used_gpa);
		if (!r)
			r = kvmk_blob_put_u32(out, vq->last_avail);
		if (!r)
			r = kvmk_blob_put_u32(out, vq->used_idx);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

static int get64(struct kvmk_reader *rd, uint64_t *v, const char *what)
{
	uint32_t lo = 0, hi = 0;
	int r = kvmk_reader_u32(rd, &lo, what);

	if (!r)
		r = kvmk_reader_u32(rd, &hi, what);
	*v = (uint64_t)hi << 32 | lo;
	return r;
}

int kvmk_virtio_restore(struct kvmkit_virtio *dev, const uint8_t *p, size_t len)
{
	struct kvmk_virtio *t = &dev->t;
	struct kvmk_reader rd = { p, len, OP };
	struct kvmk_vq vq[KVMK_VIRTIO_MAX_QUEUES];
	uint32_t w[9], ready[KVMK_VIRTIO_MAX_QUEUES] = { 0 }, ia[KVMK_VIRTIO_MAX_QUEUES],
		       iu[KVMK_VIRTIO_MAX_QUEUES];
	uint64_t features;
	int r = 0;

	for (unsigned int i = 0; !r && i < KVMKIT_ARRAY_SIZE(w); i++)
		r = kvmk_reader_u32(&rd, &w[i], "virtio registers");
	if (!r && w[0] != STATE_VERSION)
		r = kvmk_err_format(OP, "virtio state version %u, this kvmkit reads %u", w[0],
				    STATE_VERSION);
	if (!r && (w[1] != t->ops->device_id || w[2] != t->ops->nqueues))
		r = kvmk_err_format(OP, "state of device %u with %u queues, this is %u with %u",
				    w[1], w[2], t->ops->device_id, t->ops->nqueues);
	if (!r)
		r = get64(&rd, &features, "driver features");
	if (!r && ((w[3] & ~0xffu) || (features & ~kvmk_virtio_offered(t))))
		r = kvmk_err_format(OP, "status 0x%x or features 0x%llx out of range", w[3],
				    (unsigned long long)features);
	if (!r && (w[4] & ~3u))
		r = kvmk_err_format(OP, "interrupt status 0x%x", w[4]);
	pthread_mutex_lock(&t->lock);
	for (unsigned int i = 0; !r && i < t->ops->nqueues; i++) {
		uint32_t size;

		vq[i] = t->q[i].vq;
		r = kvmk_reader_u32(&rd, &size, "queue size");
		if (!r)
			r = kvmk_reader_u32(&rd, &ready[i], "queue ready");
		if (!r)
			r = get64(&rd, &vq[i].desc_gpa, "queue desc");
		if (!r)
			r = get64(&rd, &vq[i].avail_gpa, "queue avail");
		if (!r)
			r = get64(&rd, &vq[i].used_gpa, "queue used");
		if (!r)
			r = kvmk_reader_u32(&rd, &ia[i], "queue avail index");
		if (!r)
			r = kvmk_reader_u32(&rd, &iu[i], "queue used index");
		if (!r && (size > t->queue_max || ready[i] > 1 || ia[i] > 0xffff || iu[i] > 0xffff))
			r = kvmk_err_format(OP, "queue %u: size %u, ready %u, indices %u/%u", i,
					    size, ready[i], ia[i], iu[i]);
		if (r)
			break;
		vq[i].size = (uint16_t)size;
		vq[i].event_idx = features & (1ull << VIRTIO_F_EVENT_IDX);
		vq[i].indirect = features & (1ull << VIRTIO_F_INDIRECT_DESC);
		kvmk_vq_stop(&vq[i]);
		if (ready[i] && kvmk_vq_resume(&vq[i], &t->mem, (uint16_t)ia[i], (uint16_t)iu[i]))
			r = kvmk_err_format(OP, "queue %u: %s", i, vq[i].why);
	}
	if (!r && rd.left)
		r = kvmk_err_format(OP, "%zu bytes past the virtio state", rd.left);
	if (!r) {
		t->status = w[3];
		t->isr = w[4];
		t->config_gen = w[5];
		t->queue_sel = w[6];
		t->dev_feat_sel = w[7];
		t->drv_feat_sel = w[8];
		t->driver_features = features;
		for (unsigned int i = 0; i < t->ops->nqueues; i++)
			t->q[i].vq = vq[i];
		/* Notifications and interrupts in flight at the save are gone:
		 * look at every queue, and raise the line again if the guest
		 * had something unacknowledged. */
		kvmk_virtio_kick(t);
		if (t->isr)
			kvmk_virtio_interrupt(t, 0);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}
