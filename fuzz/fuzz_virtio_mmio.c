// SPDX-License-Identifier: MIT
/*
 * The virtio-mmio register file (src/virtio/mmio.c) driven by a guest made
 * of the input: accesses of any size at any offset of the window, with any
 * value, and the rings of the queues it makes ready walked from a guest
 * memory that is also the input's. No VM: the transport record is built by
 * hand, with no thread and no interrupt (nothing here may signal one).
 * Invariants: FEATURES_OK only for a modern driver taking offered bits, a
 * ready queue's layout valid and inside guest memory, config reads inside
 * the config space, a reset leaves every register at its initial value.
 */
#include <string.h>

#include "fuzz.h"
#include "virtio/virtio_internal.h"

#define RAM_BASE 0x10000u
#define RAM_SIZE 0x8000u
#define QMAX 64

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));

static void *map(void *ctx, uint64_t gpa, uint64_t len)
{
	CHECK(len > 0);
	if (gpa < RAM_BASE || gpa - RAM_BASE > RAM_SIZE || len > RAM_SIZE - (gpa - RAM_BASE))
		return NULL;
	return ram + (gpa - RAM_BASE);
}

static const struct kvmk_virtio_ops ops = {
	.name = "fuzz",
	.device_id = 42,
	.features = 1ull << 5,
	.nqueues = 2,
};

static void check(const struct kvmk_virtio *t)
{
	CHECK(!(t->status & VIRTIO_STATUS_FEATURES_OK) ||
	      ((t->driver_features & (1ull << VIRTIO_F_VERSION_1)) &&
	       !(t->driver_features & ~kvmk_virtio_offered(t))));
	for (unsigned int q = 0; q < KVMK_VIRTIO_MAX_QUEUES; q++) {
		const struct kvmk_vq *vq = &t->q[q].vq;

		if (!vq->ready)
			continue;
		CHECK(q < t->ops->nqueues && vq->size && vq->size <= QMAX &&
		      !(vq->size & (vq->size - 1)));
		CHECK(map(NULL, vq->desc_gpa, 16ull * vq->size) == vq->desc);
		CHECK(map(NULL, vq->used_gpa, 6 + 8ull * vq->size) == vq->used);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kvmkit_virtio dev; /* big: not on the stack */
	struct kvmk_virtio *t = &dev.t;
	struct kvmk_gmem mem = { NULL, map, NULL };
	struct kvmk_vq_seg segs[QMAX];
	struct kvmk_vq_chain c = { .seg = segs, .cap = QMAX };
	size_t split = size / 2;

	/* Each input is a new device: its first warning would print. */
	kvmkit_log_set_level(KVMKIT_LOG_ERROR);
	memset(&dev, 0, sizeof(dev));
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data + split, size - split < RAM_SIZE ? size - split : RAM_SIZE);
	t->ops = &ops;
	t->mem = mem;
	t->queue_max = QMAX;
	t->config_len = 12;
	memcpy(t->config, "config-bytes", 12);
	t->kick_fd = t->stop_fd = t->irq_fd = t->resample_fd = t->epoll_fd = -1;
	t->q[0].notify_fd = t->q[1].notify_fd = -1;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->idle, NULL);
	/* Each access: u8 kind (bit 0 write, bits 1-2 size), u16 offset, u32
	 * value. Now and then the ready queues are walked. */
	for (size_t i = 0; i + 7 <= split; i += 7) {
		unsigned int sz = 1u << ((data[i] >> 1) & 3);
		uint16_t off;
		uint32_t v;
		uint8_t buf[8];

		memcpy(&off, data + i + 1, 2);
		memcpy(&v, data + i + 3, 4);
		off %= KVMKIT_VIRTIO_MMIO_SIZE + 8;
		if (off + sz > KVMKIT_VIRTIO_MMIO_SIZE)
			continue; /* the bus never hands those to the device */
		if (data[i] & 1) {
			memcpy(buf, &v, 4);
			memset(buf + 4, 0, 4);
			kvmk_virtio_mmio_ops.write(t, off, buf, sz);
		} else {
			kvmk_virtio_mmio_ops.read(t, off, buf, sz);
			if (off >= 0x100 && sz <= 4 && off + sz <= 0x100 + t->config_len &&
			    !(off & (sz - 1)))
				CHECK(!memcmp(buf, t->config + (off - 0x100), sz));
		}
		check(t);
		if (off == 0x70 && sz == 4 && (data[i] & 1) && v == 0) {
			CHECK(t->status == 0 && t->isr == 0 && t->driver_features == 0);
			CHECK(!t->q[0].vq.ready && !t->q[1].vq.ready);
		}
		if ((data[i] & 0x80) && (t->status & VIRTIO_STATUS_DRIVER_OK)) {
			for (unsigned int q = 0; q < 2; q++)
				for (int k = 0; k < 4 && kvmk_virtio_queue_live(t, q); k++)
					if (kvmk_vq_pop(&t->q[q].vq, &c) == 1)
						kvmk_vq_push(&t->q[q].vq, &c, 0);
		}
	}
	pthread_cond_destroy(&t->idle);
	pthread_mutex_destroy(&t->lock);
	return 0;
}
