/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueues (virtio 1.x, "Split Virtqueues"): the descriptor table,
 * the driver area (avail ring) and the device area (used ring) live in
 * guest memory; this code walks them for a device. Pure code: guest memory
 * is reached only through struct kvmk_gmem, so unit tests and the fuzz
 * target run it against a plain buffer.
 *
 * The guest is hostile. Every index, length, address, chain length and
 * flag combination is checked; each descriptor is copied out of guest
 * memory once and only the copy is used (the guest may change the table
 * while it is walked). A malformed ring makes kvmk_vq_pop() return -EIO
 * and marks the queue broken (the transport then sets DEVICE_NEEDS_RESET);
 * nothing here loops more than the queue's size per chain.
 *
 * Threads: a queue belongs to whoever holds its transport's lock.
 */
#ifndef KVMKIT_VIRTIO_VIRTQUEUE_H
#define KVMKIT_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Descriptor flags (virtio 1.x 2.7.5). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
/* avail.flags / used.flags (without VIRTIO_F_EVENT_IDX). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* The largest queue the transport lets a driver set (the spec's limit). */
#define KVMK_VQ_MAX_SIZE 32768

/* Guest memory as the queue code sees it. */
struct kvmk_gmem {
	void *ctx;
	/* Host address of [gpa, gpa + len), wholly inside guest RAM (no
	 * wrap), or NULL. Never called with len 0. */
	void *(*map)(void *ctx, uint64_t gpa, uint64_t len);
	/* The device wrote [gpa, gpa + len) (dirty logging); may be NULL. */
	void (*dirty)(void *ctx, uint64_t gpa, uint64_t len);
};

/* One buffer of a chain: device-readable or device-writable. */
struct kvmk_vq_seg {
	void *hva; /* NULL for a zero-length descriptor */
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* A descriptor chain as popped: readable segments first, then writable
 * ones (the spec's order; a chain breaking it is malformed). @seg and
 * @cap are the caller's; a chain with more than @cap segments is refused
 * as malformed, so @cap should be at least the queue's maximum size. */
struct kvmk_vq_chain {
	struct kvmk_vq_seg *seg;
	uint32_t cap;
	uint32_t nseg, nread; /* segments, of which readable */
	uint64_t read_len, write_len; /* bytes in each direction */
	uint16_t head; /* descriptor index to give back in the used ring */
	uint32_t gen; /* the queue's generation when popped */
};

struct kvmk_vq {
	/* Set by the transport while the queue is stopped. */
	uint16_t size; /* entries, a power of two */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect; /* VIRTIO_F_INDIRECT_DESC negotiated */

	/* Running state (kvmk_vq_start() .. kvmk_vq_stop()). */
	bool ready, broken;
	uint32_t gen; /* bumped by every stop: chains of an older one are stale */
	const struct kvmk_gmem *mem;
	uint8_t *desc; /* 16 * size bytes */
	uint8_t *avail; /* flags, idx, ring[size], used_event */
	uint8_t *used; /* flags, idx, ring[size] of {id, len}, avail_event */
	uint16_t last_avail; /* next avail entry the device takes */
	uint16_t used_idx; /* next used entry the device fills */
	uint16_t signalled; /* used_idx when the driver was last notified */
	bool signalled_valid;
	char why[96]; /* what was malformed, once broken */
};

/* Checks the layout (size a power of two up to KVMK_VQ_MAX_SIZE, areas
 * aligned as the spec requires and wholly in guest RAM) and starts the
 * queue at index 0. -EINVAL with @vq->why set, the queue left stopped. */
int kvmk_vq_start(struct kvmk_vq *vq, const struct kvmk_gmem *mem);
/* Restarts at saved indices (a snapshot restore). */
int kvmk_vq_resume(struct kvmk_vq *vq, const struct kvmk_gmem *mem, uint16_t last_avail,
		   uint16_t used_idx);
/* Stops the queue; chains popped before are stale (kvmk_vq_push ignores
 * them). Keeps the layout registers. */
void kvmk_vq_stop(struct kvmk_vq *vq);

/* Takes the next available chain into @c: 1, 0 when none is available
 * (or the queue is stopped), -EIO when the ring is malformed (the queue is
 * then broken and @vq->why says why; nothing is consumed). */
int kvmk_vq_pop(struct kvmk_vq *vq, struct kvmk_vq_chain *c);
/* Puts chain @c back in the used ring with @written bytes written and
 * returns true; a stale chain (queue stopped or reset since) is dropped:
 * false. */
bool kvmk_vq_push(struct kvmk_vq *vq, const struct kvmk_vq_chain *c, uint32_t written);
/* After pushes: whether the driver wants a used-buffer notification
 * (avail.flags, or used_event with VIRTIO_F_EVENT_IDX). */
bool kvmk_vq_need_notify(struct kvmk_vq *vq);
/* After kvmk_vq_pop() returned 0: asks the driver to notify again (writes
 * avail_event with VIRTIO_F_EVENT_IDX) and re-checks the ring; true if a
 * chain arrived meanwhile (pop again). */
bool kvmk_vq_rearm(struct kvmk_vq *vq);

/* Copies from the chain's readable bytes at @off into @buf; returns the
 * bytes copied (short at the end of the readable part). */
size_t kvmk_chain_read(const struct kvmk_vq_chain *c, uint64_t off, void *buf, size_t len);
/* Copies @buf into the chain's writable bytes at @off (offset within the
 * writable part) and marks them dirty; returns the bytes copied. */
size_t kvmk_chain_write(const struct kvmk_vq_chain *c, const struct kvmk_gmem *mem, uint64_t off,
			const void *buf, size_t len);

#endif
