// SPDX-License-Identifier: MIT
/*
 * virtio-rng (virtio 1.x 5.4): one request queue of device-writable
 * buffers, each filled from getrandom() straight into guest memory.
 */
#include <stdlib.h>
#include <sys/random.h>

#define KVMK_LOG_MODULE "virtio"
#include "virtio/virtio_internal.h"

/* Bytes per chain (a driver asking for more gets this much: 5.4.6 lets
 * the device fill less than the buffer) and chains per wake-up, so one
 * guest cannot keep the thread from its other fds. */
#define MAX_FILL (64 * 1024)
#define BUDGET 256

struct rng {
	uint32_t cap; /* QueueNumMax: no valid chain has more segments */
	struct kvmk_vq_seg seg[];
};

static uint32_t fill(const struct kvmk_virtio *t, const struct kvmk_vq_chain *c)
{
	uint32_t done = 0;

	for (uint32_t i = c->nread; i < c->nseg && done < MAX_FILL; i++) {
		const struct kvmk_vq_seg *s = &c->seg[i];
		uint32_t want = s->len < MAX_FILL - done ? s->len : MAX_FILL - done, got = 0;

		while (got < want) {
			ssize_t n = getrandom((uint8_t *)s->hva + got, want - got, 0);

			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				break;
			}
			got += (uint32_t)n;
		}
		if (got)
			kvmkit_vm_mark_dirty(t->vm, s->gpa, got);
		done += got;
		if (got < want)
			break;
	}
	return done;
}

static void rng_queue(struct kvmk_virtio *t, unsigned int q)
{
	struct rng *rng = t->priv;
	struct kvmk_vq *vq = &t->q[q].vq;
	struct kvmk_vq_chain c = { .seg = rng->seg, .cap = rng->cap };
	unsigned int n = 0;
	bool pushed = false;

	/* Live again after every unlocked fill: a reset may have come. */
	while (n < BUDGET && kvmk_virtio_queue_live(t, q)) {
		uint32_t len;
		int r = kvmk_vq_pop(vq, &c);

		if (r < 0) {
			kvmk_virtio_broken(t, q);
			break;
		}
		if (r == 0) {
			if (kvmk_vq_rearm(vq))
				continue;
			break;
		}
		/* Readable buffers have no meaning here; they are ignored. The
		 * fill (up to 64 KiB) runs without the lock, so vCPUs reading
		 * registers meanwhile do not wait for it. */
		kvmk_virtio_inflight_get(t);
		pthread_mutex_unlock(&t->lock);
		len = fill(t, &c);
		pthread_mutex_lock(&t->lock);
		kvmk_virtio_inflight_put(t);
		if (kvmk_vq_push(vq, &c, len)) {
			t->st.chains++;
			pushed = true;
		}
		n++;
	}
	if (n == BUDGET)
		kvmk_virtio_kick(t);
	if (pushed)
		kvmk_virtio_used(t, q);
}

static void rng_destroy(struct kvmk_virtio *t)
{
	free(t->priv);
}

static const struct kvmk_virtio_ops rng_ops = {
	.name = "virtio-rng",
	.device_id = KVMKIT_VIRTIO_ID_RNG,
	.nqueues = 1,
	.queue = rng_queue,
	.destroy = rng_destroy,
};

int kvmkit_virtio_rng_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
			     struct kvmkit_virtio **out)
{
	uint32_t cap = cfg && cfg->queue_size ? cfg->queue_size : KVMK_VIRTIO_DEFAULT_QSIZE;
	struct rng *rng;
	struct kvmk_virtio *t = NULL;
	int r;

	if (cap > KVMK_VQ_MAX_SIZE)
		cap = KVMK_VQ_MAX_SIZE; /* refused by the transport anyway */
	rng = calloc(1, sizeof(*rng) + cap * sizeof(rng->seg[0]));
	if (!rng)
		return kvmk_err_resource("kvmkit_virtio_rng_create", ENOMEM, NULL);
	rng->cap = cap;
	r = kvmk_virtio_create(vm, cfg, &rng_ops, rng, &t);
	if (r) {
		if (t)
			kvmkit_virtio_destroy(kvmk_virtio_dev(t));
		else
			free(rng);
		return r;
	}
	*out = kvmk_virtio_dev(t);
	return 0;
}
