// SPDX-License-Identifier: MIT
/*
 * virtio-net receive (see net.c for the device): the device thread reads
 * one packet from the tap into a buffer of its own, checks its header for
 * the driver (net_hdr.c), takes as many receive chains as it needs (one
 * without MRG_RXBUF, several with it) and copies it in. When the driver has
 * not given enough buffers the packet waits and the tap leaves the epoll
 * set the thread watches, so the kernel queues and then drops; the
 * driver's next notification on the receive queue resumes. Chains taken but
 * not yet used stay held for the next packet.
 */
#include <linux/virtio_net.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "virtio"
#include "virtio/net_internal.h"

#define RX_BUDGET 64

/* Lock held (or before the thread starts). */
void kvmk_net_watch_tap(struct net *n, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.fd = n->tap };

	if (n->tap_watched == on)
		return;
	if (epoll_ctl(n->ep, EPOLL_CTL_MOD, n->tap, &ev) == 0)
		n->tap_watched = on;
}

static void stall(struct net *n)
{
	if (n->tap_watched)
		n->st.rx_stalls++;
	kvmk_net_watch_tap(n, false);
}

void kvmk_net_drop_held(struct net *n)
{
	n->nheld = 0;
	n->npool = 0;
}

static struct kvmk_vq_chain held_chain(struct net *n, unsigned int i)
{
	const struct held *h = &n->held[i];

	return (struct kvmk_vq_chain){ .seg = n->pool + h->seg0,
				       .cap = h->nseg,
				       .nseg = h->nseg,
				       .write_len = n->caps[i],
				       .head = h->head,
				       .gen = h->gen };
}

/* Takes one more receive chain: 1, 0 when the ring is empty, -1 when the
 * queue broke. */
static int take_chain(struct kvmk_virtio *t, struct net *n)
{
	struct kvmk_vq *vq = &t->q[RXQ].vq;
	struct kvmk_vq_chain c = { .seg = n->scratch, .cap = n->qcap };
	int r;

	do {
		r = kvmk_vq_pop(vq, &c);
		if (r < 0) {
			kvmk_virtio_broken(t, RXQ);
			return -1;
		}
	} while (r == 0 && kvmk_vq_rearm(vq));
	if (r == 0)
		return 0;
	/* Receive buffers are device-writable and hold at least the header
	 * (5.1.6.3). */
	if (c.nread) {
		kvmk_net_queue_broken(t, RXQ, "device-readable buffer in a receive chain", c.head);
		return -1;
	}
	if (c.write_len < KVMK_NET_HDR_LEN) {
		kvmk_net_queue_broken(t, RXQ, "receive chain shorter than the virtio-net header",
				      c.head);
		return -1;
	}
	memcpy(n->pool + n->npool, c.seg, c.nseg * sizeof(c.seg[0]));
	n->held[n->nheld] = (struct held){ c.head, c.gen, n->npool, c.nseg };
	n->caps[n->nheld] = c.write_len;
	n->npool += c.nseg;
	n->nheld++;
	return 1;
}

/* Copies the pending packet into the first @k held chains. */
static void place(struct kvmk_virtio *t, struct net *n, unsigned int k)
{
	struct kvmk_vq *vq = &t->q[RXQ].vq;
	size_t off = 0;
	uint32_t used = 0;

	n->pkt[10] = (uint8_t)k; /* num_buffers, le16: k <= qcap <= 32768 */
	n->pkt[11] = (uint8_t)(k >> 8);
	for (unsigned int i = 0; i < k; i++) {
		struct kvmk_vq_chain c = held_chain(n, i);
		size_t len = n->pkt_len - off < n->caps[i] ? n->pkt_len - off : n->caps[i];

		kvmk_chain_write(&c, &t->mem, 0, n->pkt + off, len);
		kvmk_vq_push(vq, &c, (uint32_t)len);
		t->st.chains++;
		off += len;
		used += n->held[i].nseg;
	}
	/* The rest move to the front, their segments with them. */
	memmove(n->pool, n->pool + used, (n->npool - used) * sizeof(n->pool[0]));
	memmove(n->held, n->held + k, (n->nheld - k) * sizeof(n->held[0]));
	memmove(n->caps, n->caps + k, (n->nheld - k) * sizeof(n->caps[0]));
	n->nheld -= k;
	n->npool -= used;
	for (unsigned int i = 0; i < n->nheld; i++)
		n->held[i].seg0 -= used;
	n->st.rx_packets++;
	n->st.rx_bytes += n->pkt_len - KVMK_NET_HDR_LEN;
}

/* Delivers the pending packet: 1 done, 2 dropped, 0 waiting for buffers,
 * -1 queue broken. */
static int deliver(struct kvmk_virtio *t, struct net *n)
{
	struct kvmk_vq *vq = &t->q[RXQ].vq;
	bool mrg = kvmk_net_has(t, VIRTIO_NET_F_MRG_RXBUF);
	unsigned int k;

	if (n->nheld && n->held[0].gen != vq->gen)
		kvmk_net_drop_held(n); /* the queue was stopped since: stale */
	for (;;) {
		int r;

		k = kvmk_net_rx_fit(n->caps, n->nheld, n->pkt_len, mrg);
		if (k)
			break;
		/* Without merging only the first chain counts; with it, a
		 * packet more than every buffer the queue can hold is lost. */
		if ((!mrg && n->nheld) || n->nheld == vq->size ||
		    n->npool + n->qcap > 2 * n->qcap) {
			n->st.rx_dropped++;
			kvmk_virtio_warn(t,
					 "received packet of %zu bytes dropped: larger than the "
					 "receive buffers",
					 n->pkt_len - KVMK_NET_HDR_LEN);
			return 2;
		}
		r = take_chain(t, n);
		if (r <= 0)
			return r;
	}
	place(t, n, k);
	return 1;
}

static bool rx_live(struct kvmk_virtio *t)
{
	return kvmk_virtio_queue_live(t, RXQ) && kvmkit_vm_state(t->vm) == KVMKIT_VM_RUNNING;
}

/* The thread comes back when the budget is spent: its epoll is
 * level-triggered. */
void kvmk_net_rx_work(struct kvmk_virtio *t, struct net *n)
{
	unsigned int done = 0;
	bool pushed = false;

	kvmk_net_ensure_offloads(t, n);
	while (done < RX_BUDGET) {
		int r;

		if (!rx_live(t)) {
			/* Back through the transport's deferred queue work
			 * once the VM runs, or DRIVER_OK's kick. */
			if (kvmk_virtio_queue_live(t, RXQ))
				t->pending |= 1u << RXQ;
			stall(n);
			break;
		}
		if (!n->pkt_pending) {
			ssize_t got = read(n->tap, n->pkt, PKT_BUF);
			const char *why;

			n->st.tap_reads++;
			if (got < 0) {
				if (errno != EAGAIN && errno != EINTR)
					kvmk_virtio_warn(t, "tap %s: read: %s", n->name,
							 strerror(errno));
				kvmk_net_watch_tap(n, true);
				break;
			}
			why = (size_t)got < KVMK_NET_HDR_LEN ?
				      "shorter than its header" :
				      kvmk_net_rx_check(n->pkt, (uint64_t)got - KVMK_NET_HDR_LEN,
							t->driver_features);
			done++;
			if (why) {
				n->st.rx_dropped++;
				kvmk_virtio_warn(t, "packet from tap %s dropped: %s", n->name, why);
				continue;
			}
			n->pkt_len = (size_t)got;
			n->pkt_pending = true;
		}
		r = deliver(t, n);
		if (r < 0)
			break;
		if (r == 0) {
			stall(n);
			break;
		}
		n->pkt_pending = false;
		pushed |= r == 1;
	}
	if (pushed)
		kvmk_virtio_used(t, RXQ);
}
