// SPDX-License-Identifier: MIT
/*
 * virtio-console (virtio 1.x 5.3), one port without MULTIPORT: receiveq 0
 * carries input to the guest, transmitq 1 its output. Output is written to
 * the caller's fd with the device lock released (the chain counted in
 * flight, so a reset waits for it), a piece at a time when poll() says the
 * fd takes it, and dropped after 100 ms without progress: a reader that
 * stalls costs the guest its output, never a stuck device. Input waits in
 * a 4 KiB buffer until the driver gives receive buffers.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvmkit/virtio_io.h>

#define KVMK_LOG_MODULE "virtio"
#include "virtio/virtio_internal.h"

#define RXQ 0
#define TXQ 1
#define BUDGET 256
#define IN_BUF 4096
#define OUT_CHUNK 4096
#define STALL_MS 100

struct con {
	int out_fd;
	uint32_t qcap;
	struct kvmk_vq_seg *scratch;
	uint8_t in[IN_BUF]; /* a ring: in_len bytes from in_head */
	size_t in_head, in_len;
	struct kvmkit_virtio_console_stats st;
};

/* Without the lock. Returns the bytes that got out. */
static size_t write_out(int fd, const uint8_t *p, size_t len)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		size_t k = len - done < OUT_CHUNK ? len - done : OUT_CHUNK;
		ssize_t w;

		if (poll(&pfd, 1, STALL_MS) <= 0 || (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)))
			break;
		w = write(fd, p + done, k);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	return done;
}

static void tx_work(struct kvmk_virtio *t, struct con *c)
{
	struct kvmk_vq *vq = &t->q[TXQ].vq;
	struct kvmk_vq_chain ch = { .seg = c->scratch, .cap = c->qcap };
	unsigned int n = 0;

	/* Live again after every unlocked stretch: a reset may have come. */
	while (n < BUDGET && kvmk_virtio_queue_live(t, TXQ)) {
		int r = kvmk_vq_pop(vq, &ch);
		size_t out = 0;

		if (r < 0) {
			kvmk_virtio_broken(t, TXQ);
			return;
		}
		if (r == 0) {
			if (kvmk_vq_rearm(vq))
				continue;
			break;
		}
		if (ch.nseg != ch.nread) {
			snprintf(vq->why, sizeof(vq->why),
				 "chain %u: device-writable buffer in a transmit chain", ch.head);
			vq->broken = true;
			kvmk_virtio_broken(t, TXQ);
			return;
		}
		n++;
		kvmk_virtio_inflight_get(t);
		pthread_mutex_unlock(&t->lock);
		for (uint32_t i = 0; i < ch.nread && c->out_fd >= 0; i++) {
			size_t k = ch.seg[i].len ?
					   write_out(c->out_fd, ch.seg[i].hva, ch.seg[i].len) :
					   0;

			out += k;
			if (k < ch.seg[i].len)
				break;
		}
		pthread_mutex_lock(&t->lock);
		c->st.out_bytes += out;
		c->st.out_dropped += ch.read_len - out;
		if (kvmk_vq_push(vq, &ch, 0)) {
			t->st.chains++;
			kvmk_virtio_used(t, TXQ);
		}
		kvmk_virtio_inflight_put(t);
	}
	if (n == BUDGET)
		kvmk_virtio_kick(t);
}

static void rx_work(struct kvmk_virtio *t, struct con *c)
{
	struct kvmk_vq *vq = &t->q[RXQ].vq;
	struct kvmk_vq_chain ch = { .seg = c->scratch, .cap = c->qcap };
	bool pushed = false;

	while (c->in_len) {
		int r = kvmk_vq_pop(vq, &ch);
		size_t want, first;

		if (r < 0) {
			kvmk_virtio_broken(t, RXQ);
			break;
		}
		if (r == 0) {
			if (kvmk_vq_rearm(vq))
				continue;
			break; /* the input waits for buffers */
		}
		if (ch.nread) {
			snprintf(vq->why, sizeof(vq->why),
				 "chain %u: device-readable buffer in a receive chain", ch.head);
			vq->broken = true;
			kvmk_virtio_broken(t, RXQ);
			break;
		}
		want = c->in_len < ch.write_len ? c->in_len : (size_t)ch.write_len;
		first = IN_BUF - c->in_head < want ? IN_BUF - c->in_head : want;
		kvmk_chain_write(&ch, &t->mem, 0, c->in + c->in_head, first);
		kvmk_chain_write(&ch, &t->mem, first, c->in, want - first);
		c->in_head = (c->in_head + want) % IN_BUF;
		c->in_len -= want;
		c->st.in_bytes += want;
		kvmk_vq_push(vq, &ch, (uint32_t)want);
		t->st.chains++;
		pushed = true;
	}
	if (pushed)
		kvmk_virtio_used(t, RXQ);
}

static void con_queue(struct kvmk_virtio *t, unsigned int q)
{
	struct con *c = t->priv;

	if (q == TXQ)
		tx_work(t, c);
	else
		rx_work(t, c);
}

static void free_con(struct con *c)
{
	if (c)
		free(c->scratch);
	free(c);
}

static void con_destroy(struct kvmk_virtio *t)
{
	free_con(t->priv);
}

static const struct kvmk_virtio_ops con_ops = {
	.name = "virtio-console",
	.device_id = KVMKIT_VIRTIO_ID_CONSOLE,
	.nqueues = 2,
	.queue = con_queue,
	.destroy = con_destroy,
};

int kvmkit_virtio_console_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
				 const struct kvmkit_virtio_console_config *cc,
				 struct kvmkit_virtio **out)
{
	const char *op = "kvmkit_virtio_console_create";
	uint32_t qcap = cfg && cfg->queue_size ? cfg->queue_size : KVMK_VIRTIO_DEFAULT_QSIZE;
	struct kvmk_virtio *t = NULL;
	struct con *c;
	int r;

	if (qcap > KVMK_VQ_MAX_SIZE)
		return kvmk_err_param(op, "queue_size", "a power of two up to 32768", "%u", qcap);
	c = calloc(1, sizeof(*c));
	if (c)
		c->scratch = calloc(qcap, sizeof(*c->scratch));
	if (!c || !c->scratch) {
		free_con(c);
		return kvmk_err_resource(op, ENOMEM, NULL);
	}
	c->qcap = qcap;
	c->out_fd = cc ? cc->out_fd : -1;
	r = kvmk_virtio_create(vm, cfg, &con_ops, c, &t);
	if (r) {
		if (t)
			kvmkit_virtio_destroy(kvmk_virtio_dev(t));
		else
			free_con(c);
		return r;
	}
	*out = kvmk_virtio_dev(t);
	return 0;
}

size_t kvmkit_virtio_console_feed(struct kvmkit_virtio *dev, const void *buf, size_t len)
{
	struct kvmk_virtio *t = &dev->t;
	struct con *c = t->priv;
	size_t took = 0;

	if (t->ops != &con_ops)
		return 0;
	pthread_mutex_lock(&t->lock);
	while (took < len && c->in_len < IN_BUF) {
		c->in[(c->in_head + c->in_len) % IN_BUF] = ((const uint8_t *)buf)[took++];
		c->in_len++;
	}
	pthread_mutex_unlock(&t->lock);
	if (took)
		kvmk_virtio_kick(t);
	return took;
}

int kvmkit_virtio_console_stats(struct kvmkit_virtio *dev, struct kvmkit_virtio_console_stats *out)
{
	struct kvmk_virtio *t = &dev->t;
	struct con *c = t->priv;

	if (t->ops != &con_ops)
		return kvmk_err_param("kvmkit_virtio_console_stats", "dev",
				      "a virtio-console device", "%s", t->ops->name);
	pthread_mutex_lock(&t->lock);
	*out = c->st;
	pthread_mutex_unlock(&t->lock);
	return 0;
}
