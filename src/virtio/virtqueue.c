// SPDX-License-Identifier: MIT
/*
 * Split virtqueue walker (virtio 1.x 2.7). Layout in guest memory:
 *   descriptor table  16 bytes each: le64 addr, le32 len, le16 flags, le16 next
 *   driver area       le16 flags, le16 idx, le16 ring[size], le16 used_event
 *   device area       le16 flags, le16 idx, {le32 id, le32 len}[size], le16 avail_event
 * Index fields are free-running 16-bit counters; ring slots are idx % size,
 * which only stays consistent across the 16-bit wrap for power-of-two sizes.
 * x86_64 and arm64 hosts are little-endian, like virtio 1.x.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "virtio/virtqueue.h"

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

_Static_assert(sizeof(struct desc) == 16, "virtq_desc is 16 bytes");

static uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_RELAXED);
}

static uint16_t load16_acquire(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(const void *)p, __ATOMIC_ACQUIRE);
}

static void store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELAXED);
}

static void store16_release(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, v, __ATOMIC_RELEASE);
}

__attribute__((format(printf, 2, 3))) static int broken(struct kvmk_vq *vq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vq->why, sizeof(vq->why), fmt, ap);
	va_end(ap);
	vq->broken = true;
	return -EIO;
}

static uint8_t *map_area(struct kvmk_vq *vq, const struct kvmk_gmem *mem, uint64_t gpa,
			 uint64_t len, uint64_t align, const char *what)
{
	uint8_t *p;

	if (gpa & (align - 1)) {
		snprintf(vq->why, sizeof(vq->why), "%s at 0x%llx is not %llu-byte aligned", what,
			 (unsigned long long)gpa, (unsigned long long)align);
		return NULL;
	}
	p = mem->map(mem->ctx, gpa, len);
	if (!p)
		snprintf(vq->why, sizeof(vq->why), "%s 0x%llx+0x%llx is not in guest RAM", what,
			 (unsigned long long)gpa, (unsigned long long)len);
	return p;
}

static int start(struct kvmk_vq *vq, const struct kvmk_gmem *mem)
{
	uint64_t n = vq->size;

	vq->ready = false;
	vq->broken = false;
	vq->why[0] = 0;
	if (!n || n > KVMK_VQ_MAX_SIZE || (n & (n - 1))) {
		snprintf(vq->why, sizeof(vq->why), "queue size %llu is not a power of two <= %u",
			 (unsigned long long)n, KVMK_VQ_MAX_SIZE);
		return -EINVAL;
	}
	/* Alignments: 2.7 "Virtqueue alignment" (16, 2 and 4). */
	vq->desc = map_area(vq, mem, vq->desc_gpa, 16 * n, 16, "descriptor table");
	vq->avail = vq->desc ? map_area(vq, mem, vq->avail_gpa, 6 + 2 * n, 2, "driver area") : NULL;
	vq->used = vq->avail ? map_area(vq, mem, vq->used_gpa, 6 + 8 * n, 4, "device area") : NULL;
	if (!vq->used)
		return -EINVAL;
	vq->mem = mem;
	vq->signalled_valid = false;
	vq->ready = true;
	return 0;
}

int kvmk_vq_start(struct kvmk_vq *vq, const struct kvmk_gmem *mem)
{
	int r = start(vq, mem);

	if (r)
		return r;
	vq->last_avail = 0;
	vq->used_idx = 0;
	/* The device area starts zeroed by the driver; make idx match ours. */
	store16_release(vq->used + 2, 0);
	if (mem->dirty)
		mem->dirty(mem->ctx, vq->used_gpa + 2, 2);
	return 0;
}

int kvmk_vq_resume(struct kvmk_vq *vq, const struct kvmk_gmem *mem, uint16_t last_avail,
		   uint16_t used_idx)
{
	int r = start(vq, mem);

	vq->last_avail = last_avail;
	vq->used_idx = used_idx;
	return r;
}

void kvmk_vq_stop(struct kvmk_vq *vq)
{
	vq->ready = false;
	vq->broken = false;
	vq->gen++;
	vq->desc = vq->avail = vq->used = NULL;
}

static int add_seg(struct kvmk_vq *vq, struct kvmk_vq_chain *c, const struct desc *d)
{
	struct kvmk_vq_seg *s;
	bool write = d->flags & VIRTQ_DESC_F_WRITE;

	if (!write && c->nseg > c->nread)
		return broken(vq, "chain %u: readable descriptor after a writable one", c->head);
	if (c->nseg >= c->cap)
		return broken(vq, "chain %u: more than %u descriptors", c->head, c->cap);
	s = &c->seg[c->nseg];
	s->gpa = d->addr;
	s->len = d->len;
	s->write = write;
	s->hva = NULL;
	if (d->len) {
		s->hva = vq->mem->map(vq->mem->ctx, d->addr, d->len);
		if (!s->hva)
			return broken(vq, "chain %u: buffer 0x%llx+0x%x is not in guest RAM",
				      c->head, (unsigned long long)d->addr, d->len);
	}
	c->nseg++;
	if (write) {
		c->write_len += d->len;
	} else {
		c->nread++;
		c->read_len += d->len;
	}
	return 0;
}

/* Walks the chain at @head. Each table (the ring's, then at most one
 * indirect one) is walked at most once per entry: a longer walk is a loop. */
static int walk(struct kvmk_vq *vq, struct kvmk_vq_chain *c, uint16_t head)
{
	const uint8_t *table = vq->desc;
	uint32_t tsize = vq->size, idx = head, steps = 0;
	bool indirect = false;
	struct desc d;
	int r;

	for (;;) {
		if (++steps > tsize)
			return broken(vq, "chain %u: longer than its table (%u), a loop?", head,
				      tsize);
		memcpy(&d, table + 16 * (size_t)idx, sizeof(d));
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return broken(vq, "chain %u: indirect descriptor not negotiated",
					      head);
			if (indirect)
				return broken(vq,
					      "chain %u: indirect descriptor in an indirect table",
					      head);
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return broken(vq, "chain %u: indirect descriptor with NEXT", head);
			if (!d.len || d.len % 16 || d.len / 16 > c->cap)
				return broken(vq, "chain %u: indirect table of %u bytes", head,
					      d.len);
			table = vq->mem->map(vq->mem->ctx, d.addr, d.len);
			if (!table)
				return broken(vq, "chain %u: indirect table 0x%llx+0x%x not in RAM",
					      head, (unsigned long long)d.addr, d.len);
			indirect = true;
			tsize = d.len / 16;
			idx = 0;
			steps = 0;
			continue;
		}
		r = add_seg(vq, c, &d);
		if (r)
			return r;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= tsize)
			return broken(vq, "chain %u: next %u past a table of %u", head, d.next,
				      tsize);
		idx = d.next;
	}
}

int kvmk_vq_pop(struct kvmk_vq *vq, struct kvmk_vq_chain *c)
{
	uint16_t avail_idx, head, pending;
	int r;

	if (!vq->ready)
		return 0;
	if (vq->broken)
		return -EIO;
	/* Acquire: the ring entry and descriptors were written before idx. */
	avail_idx = load16_acquire(vq->avail + 2);
	pending = (uint16_t)(avail_idx - vq->last_avail);
	if (!pending)
		return 0;
	if (pending > vq->size)
		return broken(vq, "avail idx %u is %u entries ahead of %u (queue of %u)", avail_idx,
			      pending, vq->last_avail, vq->size);
	head = load16(vq->avail + 4 + 2 * (size_t)(vq->last_avail & (vq->size - 1)));
	if (head >= vq->size)
		return broken(vq, "avail ring entry %u is %u, queue of %u", vq->last_avail, head,
			      vq->size);
	c->nseg = c->nread = 0;
	c->read_len = c->write_len = 0;
	c->head = head;
	c->gen = vq->gen;
	r = walk(vq, c, head);
	if (r)
		return r;
	vq->last_avail++;
	return 1;
}

bool kvmk_vq_push(struct kvmk_vq *vq, const struct kvmk_vq_chain *c, uint32_t written)
{
	uint8_t *elem;
	uint32_t v[2] = { c->head, written };

	if (!vq->ready || c->gen != vq->gen)
		return false;
	elem = vq->used + 4 + 8 * (size_t)(vq->used_idx & (vq->size - 1));
	memcpy(elem, v, sizeof(v));
	vq->used_idx++;
	/* Release: the element is visible before the index that publishes it. */
	store16_release(vq->used + 2, vq->used_idx);
	if (vq->mem->dirty) {
		vq->mem->dirty(vq->mem->ctx, vq->used_gpa + (uint64_t)(elem - vq->used), 8);
		vq->mem->dirty(vq->mem->ctx, vq->used_gpa + 2, 2);
	}
	return true;
}

bool kvmk_vq_need_notify(struct kvmk_vq *vq)
{
	uint16_t old = vq->signalled, now = vq->used_idx, event;
	bool valid = vq->signalled_valid;

	if (!vq->ready)
		return false;
	/* Full barrier: our used idx store before the driver's event read
	 * (otherwise both sides may decide the other will act). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16(vq->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	vq->signalled = now;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	event = load16(vq->avail + 4 + 2 * (size_t)vq->size);
	/* Notify iff used_event lies in [old, now): 2.7.10. */
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

bool kvmk_vq_rearm(struct kvmk_vq *vq)
{
	if (!vq->ready || vq->broken)
		return false;
	if (vq->event_idx) {
		store16(vq->used + 4 + 8 * (size_t)vq->size, vq->last_avail);
		if (vq->mem->dirty)
			vq->mem->dirty(vq->mem->ctx, vq->used_gpa + 4 + 8 * (uint64_t)vq->size, 2);
	}
	/* Our avail_event store before the re-read of idx (see need_notify). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load16_acquire(vq->avail + 2) != vq->last_avail;
}

size_t kvmk_chain_read(const struct kvmk_vq_chain *c, uint64_t off, void *buf, size_t len)
{
	size_t done = 0;

	for (uint32_t i = 0; i < c->nread && done < len; i++) {
		const struct kvmk_vq_seg *s = &c->seg[i];
		size_t n;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off < len - done ? s->len - off : len - done;
		memcpy((uint8_t *)buf + done, (const uint8_t *)s->hva + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t kvmk_chain_write(const struct kvmk_vq_chain *c, const struct kvmk_gmem *mem, uint64_t off,
			const void *buf, size_t len)
{
	size_t done = 0;

	for (uint32_t i = c->nread; i < c->nseg && done < len; i++) {
		const struct kvmk_vq_seg *s = &c->seg[i];
		size_t n;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off < len - done ? s->len - off : len - done;
		memcpy((uint8_t *)s->hva + off, (const uint8_t *)buf + done, n);
		if (mem->dirty)
			mem->dirty(mem->ctx, s->gpa + off, n);
		done += n;
		off = 0;
	}
	return done;
}
