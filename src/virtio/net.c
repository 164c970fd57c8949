// SPDX-License-Identifier: MIT
/*
 * virtio-net (virtio 1.x 5.1) over a tap: receiveq 0, transmitq 1, no
 * control queue. The tap is opened IFF_TAP | IFF_NO_PI | IFF_VNET_HDR with
 * the 12-byte header VERSION_1 uses, so headers pass between guest and tap
 * once checked (net_hdr.c); its offloads (TUNSETOFFLOAD) follow what the
 * driver negotiated for its receive side, set when it reaches DRIVER_OK
 * and cleared by a reset.
 *
 * Transmit: each chain's header is copied out and checked, then the frame
 * goes to the tap with one writev() straight from guest memory after the
 * checked header copy. Receive: the device thread reads one packet from
 * the tap into a buffer of its own, checks the header, takes as many
 * receive chains as it needs (one without MRG_RXBUF, several with it) and
 * copies it in. When the driver has not given enough buffers, the packet
 * waits and the tap is left unread (taken out of the epoll set the thread
 * watches), so the kernel queues and then drops; the driver's next
 * notification on the receive queue resumes. Chains taken but not yet
 * used stay held for the next packet.
 *
 * With vhost the kernel's vhost-net does both directions (vhost.c); this
 * file then only hands the queues over at DRIVER_OK and takes them back at
 * a reset (a driver without MRG_RXBUF keeps kvmkit's path: kernel_path()).
 */
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <linux/vhost.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "virtio"
#include <kvmkit/virtio_io.h>

#include "virtio/net_hdr.h"
#include "virtio/vhost.h"
#include "virtio/virtio_internal.h"

#define RXQ 0
#define TXQ 1
#define RX_BUDGET 64
#define TX_BUDGET 256
#define PKT_BUF (KVMK_NET_HDR_LEN + KVMK_NET_MAX_FRAME + 64)

/* A receive chain taken from the ring, not used yet: its writable
 * segments are pool[seg0 .. seg0 + nseg). */
struct held {
	uint16_t head;
	uint32_t gen;
	uint32_t seg0, nseg;
};

struct net {
	int tap, ep; /* ep: an epoll set holding the tap, watched by the thread */
	bool tap_watched;
	char name[IFNAMSIZ];
	uint32_t qcap; /* QueueNumMax: the most segments a chain may have */
	struct kvmk_vq_seg *scratch; /* qcap: a chain as popped */
	struct iovec *iov; /* KVMK_NET_MAX_IOV */
	uint8_t *pkt; /* PKT_BUF: the packet read from the tap */
	size_t pkt_len;
	bool pkt_pending;
	struct held *held; /* qcap */
	uint64_t *caps; /* qcap: each held chain's writable bytes */
	unsigned int nheld;
	struct kvmk_vq_seg *pool; /* 2 * qcap */
	uint32_t npool;
	bool offloads_set;
	bool use_vhost;
	struct kvmk_vhost vhost;
	struct kvmkit_virtio_net_stats st;
};

static bool has(const struct kvmk_virtio *t, unsigned int bit)
{
	return t->driver_features & (1ull << bit);
}

/* Lock held (or before the thread starts). */
static void watch_tap(struct net *n, bool on)
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
	watch_tap(n, false);
}

static void set_offloads(struct kvmk_virtio *t, struct net *n, unsigned int o)
{
	if (ioctl(n->tap, TUNSETOFFLOAD, o) < 0) {
		kvmk_virtio_warn(t, "tap %s: TUNSETOFFLOAD 0x%x: %s", n->name, o, strerror(errno));
		o = 0;
		ioctl(n->tap, TUNSETOFFLOAD, 0);
	}
	n->st.offloads = o;
}

/* The driver's receive offloads reach the tap once it is DRIVER_OK. */
static void ensure_offloads(struct kvmk_virtio *t, struct net *n)
{
	if (n->offloads_set || !(t->status & VIRTIO_STATUS_DRIVER_OK))
		return;
	set_offloads(t, n, kvmk_net_tap_offloads(t->driver_features));
	n->offloads_set = true;
}

static void queue_broken(struct kvmk_virtio *t, unsigned int q, const char *why, uint16_t head)
{
	struct kvmk_vq *vq = &t->q[q].vq;

	snprintf(vq->why, sizeof(vq->why), "chain %u: %s", head, why);
	vq->broken = true;
	kvmk_virtio_broken(t, q);
}

/* ---- transmit ---------------------------------------------------------- */

static void tx_one(struct kvmk_virtio *t, struct net *n, const struct kvmk_vq_chain *c)
{
	uint8_t raw[KVMK_NET_HDR_LEN], hdr[KVMK_NET_HDR_LEN];
	uint64_t frame = c->read_len - KVMK_NET_HDR_LEN;
	const char *why;
	ssize_t w;
	int niov;

	/* One copy of the header: the guest may change its own meanwhile. */
	kvmk_chain_read(c, 0, raw, sizeof(raw));
	why = kvmk_net_tx_check(raw, frame, t->driver_features, hdr);
	if (why) {
		n->st.tx_dropped++;
		kvmk_virtio_warn(t, "transmit chain %u dropped: %s", c->head, why);
		return;
	}
	niov = kvmk_net_tx_iov(c, hdr, n->iov, KVMK_NET_MAX_IOV);
	if (niov < 0) {
		n->st.tx_dropped++;
		kvmk_virtio_warn(t, "transmit chain %u dropped: more than %d segments", c->head,
				 KVMK_NET_MAX_IOV - 1);
		return;
	}
	w = writev(n->tap, n->iov, niov);
	if (w != (ssize_t)(frame + KVMK_NET_HDR_LEN)) {
		n->st.tx_dropped++;
		/* EIO: the interface is down, the guest's frames go nowhere. */
		if (w < 0 && errno != EAGAIN && errno != EIO)
			kvmk_virtio_warn(t, "tap %s: write: %s", n->name, strerror(errno));
		return;
	}
	n->st.tx_packets++;
	n->st.tx_bytes += frame;
}

static void tx_work(struct kvmk_virtio *t, struct net *n)
{
	struct kvmk_vq *vq = &t->q[TXQ].vq;
	struct kvmk_vq_chain c = { .seg = n->scratch, .cap = n->qcap };
	unsigned int done = 0;

	while (done < TX_BUDGET) {
		int r = kvmk_vq_pop(vq, &c);

		if (r < 0) {
			kvmk_virtio_broken(t, TXQ);
			break;
		}
		if (r == 0) {
			if (kvmk_vq_rearm(vq))
				continue;
			break;
		}
		/* A transmit chain is all device-readable (5.1.6.2). */
		if (c.nseg != c.nread) {
			queue_broken(t, TXQ, "device-writable buffer in a transmit chain", c.head);
			break;
		}
		if (c.read_len < KVMK_NET_HDR_LEN) {
			queue_broken(t, TXQ, "transmit chain shorter than the virtio-net header",
				     c.head);
			break;
		}
		tx_one(t, n, &c);
		kvmk_vq_push(vq, &c, 0);
		t->st.chains++;
		done++;
	}
	if (done == TX_BUDGET)
		kvmk_virtio_kick(t);
	if (done)
		kvmk_virtio_used(t, TXQ);
}

/* ---- receive ----------------------------------------------------------- */

static void drop_held(struct net *n)
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
		queue_broken(t, RXQ, "device-readable buffer in a receive chain", c.head);
		return -1;
	}
	if (c.write_len < KVMK_NET_HDR_LEN) {
		queue_broken(t, RXQ, "receive chain shorter than the virtio-net header", c.head);
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
	bool mrg = has(t, VIRTIO_NET_F_MRG_RXBUF);
	unsigned int k;

	if (n->nheld && n->held[0].gen != vq->gen)
		drop_held(n); /* the queue was stopped since: stale */
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

/* Moves packets from the tap to the guest until the tap is empty, the
 * guest has no buffers, or the budget is spent (the thread comes back:
 * its epoll is level-triggered). Lock held. */
static void rx_work(struct kvmk_virtio *t, struct net *n)
{
	unsigned int done = 0;
	bool pushed = false;

	ensure_offloads(t, n);
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
				watch_tap(n, true);
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

/* ---- vhost ------------------------------------------------------------- */

static int set_backend(struct net *n, int fd)
{
	for (unsigned int i = 0; i < 2; i++) {
		struct vhost_vring_file b = { i, fd };

		if (ioctl(n->vhost.fd, VHOST_NET_SET_BACKEND, &b) < 0)
			return kvmk_err_ioctl("vhost-net", errno, "VHOST_NET_SET_BACKEND %u", i);
	}
	return 0;
}

static void vhost_try_start(struct kvmk_virtio *t, struct net *n)
{
	int r;

	if (n->vhost.running || !kvmk_virtio_queue_live(t, RXQ) || !kvmk_virtio_queue_live(t, TXQ))
		return;
	ensure_offloads(t, n);
	/* From here the kernel reads the tap. */
	watch_tap(n, false);
	if (n->pkt_pending)
		n->st.rx_dropped++;
	n->pkt_pending = false;
	drop_held(n);
	r = kvmk_vhost_start(&n->vhost, t);
	if (!r) {
		r = set_backend(n, n->tap);
		if (r) {
			set_backend(n, -1);
			kvmk_vhost_stop(&n->vhost, t);
		}
	}
	if (!r)
		kvmk_vhost_kick(&n->vhost, t);
	if (r) {
		/* The driver learns through NEEDS_RESET; the log says why. */
		snprintf(t->q[RXQ].vq.why, sizeof(t->q[RXQ].vq.why), "vhost-net: %s",
			 kvmkit_strerror());
		t->q[RXQ].vq.broken = true;
		kvmk_virtio_broken(t, RXQ);
		return;
	}
	n->st.vhost_running = true;
}

static void vhost_stop(struct kvmk_virtio *t, struct net *n)
{
	if (!n->vhost.running)
		return;
	set_backend(n, -1);
	kvmk_vhost_stop(&n->vhost, t);
	n->st.vhost_running = false;
}

/* ---- device ops -------------------------------------------------------- */

/* vhost-net before Linux 6.14 (commit a3b9c053, "vhost/net: Set
 * num_buffers for virtio 1.0") leaves num_buffers unwritten without
 * MRG_RXBUF, where the spec wants 1: such a driver gets kvmkit's own data
 * path instead. Linux's driver always takes MRG_RXBUF. */
static bool kernel_path(const struct kvmk_virtio *t, const struct net *n)
{
	return n->use_vhost && has(t, VIRTIO_NET_F_MRG_RXBUF);
}

static void net_queue(struct kvmk_virtio *t, unsigned int q)
{
	struct net *n = t->priv;

	if (kernel_path(t, n))
		vhost_try_start(t, n);
	else if (q == TXQ)
		tx_work(t, n);
	else
		rx_work(t, n); /* buffers came: a waiting packet goes now */
}

static int net_poll_fd(struct kvmk_virtio *t)
{
	struct net *n = t->priv;

	return n->ep;
}

static void net_poll(struct kvmk_virtio *t)
{
	struct net *n = t->priv;
	struct epoll_event ev[2];
	int k = epoll_wait(n->ep, ev, 2, 0);

	for (int i = 0; i < k; i++)
		if (ev[i].data.fd == n->vhost.err_fd)
			kvmk_vhost_error(&n->vhost, t);
	pthread_mutex_lock(&t->lock);
	n->st.tap_wakeups++;
	if (!n->vhost.running)
		rx_work(t, n);
	pthread_mutex_unlock(&t->lock);
}

static void net_reset(struct kvmk_virtio *t)
{
	struct net *n = t->priv;

	vhost_stop(t, n);
	if (n->pkt_pending)
		n->st.rx_dropped++;
	n->pkt_pending = false;
	drop_held(n);
	/* Until the next driver negotiates, nothing it may not take. */
	if (n->offloads_set)
		set_offloads(t, n, 0);
	n->offloads_set = false;
}

static void free_net(struct net *n)
{
	if (!n)
		return;
	if (n->use_vhost)
		kvmk_vhost_close(&n->vhost);
	if (n->tap >= 0)
		close(n->tap);
	if (n->ep >= 0)
		close(n->ep);
	free(n->scratch);
	free(n->iov);
	free(n->pkt);
	free(n->held);
	free(n->caps);
	free(n->pool);
	free(n);
}

static void net_destroy(struct kvmk_virtio *t)
{
	struct net *n = t->priv;

	/* The thread is gone; the kernel may still own the rings. */
	if (n->vhost.running) {
		set_backend(n, -1);
		kvmk_vhost_stop(&n->vhost, t);
	}
	free_net(n);
}

#define NET_FEATURES                                                            \
	((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |      \
	 (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_GUEST_TSO4) |       \
	 (1ull << VIRTIO_NET_F_GUEST_TSO6) | (1ull << VIRTIO_NET_F_GUEST_ECN) | \
	 (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |  \
	 (1ull << VIRTIO_NET_F_HOST_ECN) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |   \
	 (1ull << VIRTIO_NET_F_STATUS))

static const struct kvmk_virtio_ops net_ops = {
	.name = "virtio-net",
	.device_id = KVMKIT_VIRTIO_ID_NET,
	.features = NET_FEATURES,
	.nqueues = 2,
	.queue = net_queue,
	.reset = net_reset,
	.poll_fd = net_poll_fd,
	.poll = net_poll,
	.destroy = net_destroy,
};

/* What vhost-net must do for the features every driver here gets. */
#define VHOST_NEEDED                                                   \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) | \
	 (1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_NET_F_MRG_RXBUF))

static int open_tap(struct net *n, const char *name)
{
	const char *op = "kvmkit_virtio_net_create";
	struct ifreq ifr = { 0 };
	int hdr = KVMK_NET_HDR_LEN;

	n->tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (n->tap < 0)
		return kvmk_err_sys(op, errno, "tap %s: /dev/net/tun", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(n->tap, TUNSETIFF, &ifr) < 0)
		return kvmk_err_sys(op, errno, "tap %s", name);
	if (ioctl(n->tap, TUNSETVNETHDRSZ, &hdr) < 0)
		return kvmk_err_ioctl(op, errno, "tap %s: TUNSETVNETHDRSZ", name);
	if (ioctl(n->tap, TUNSETOFFLOAD, 0) < 0)
		return kvmk_err_ioctl(op, errno, "tap %s: TUNSETOFFLOAD", name);
	return 0;
}

static int alloc_net(struct net *n, uint32_t qcap)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = n->tap };

	n->qcap = qcap;
	n->scratch = calloc(qcap, sizeof(*n->scratch));
	n->iov = calloc(KVMK_NET_MAX_IOV, sizeof(*n->iov));
	n->pkt = malloc(PKT_BUF);
	n->held = calloc(qcap, sizeof(*n->held));
	n->caps = calloc(qcap, sizeof(*n->caps));
	n->pool = calloc(2 * (size_t)qcap, sizeof(*n->pool));
	if (!n->scratch || !n->iov || !n->pkt || !n->held || !n->caps || !n->pool)
		return kvmk_err_resource("kvmkit_virtio_net_create", ENOMEM, NULL);
	n->ep = epoll_create1(EPOLL_CLOEXEC);
	if (n->ep < 0 || epoll_ctl(n->ep, EPOLL_CTL_ADD, n->tap, &ev) < 0)
		return kvmk_err_sys("kvmkit_virtio_net_create", errno, "epoll");
	n->tap_watched = true;
	return 0;
}

static int open_vhost(struct net *n, const char *path)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int r = kvmk_vhost_open(&n->vhost, path ? path : "/dev/vhost-net", 2);

	if (!r && (n->vhost.features & VHOST_NEEDED) != VHOST_NEEDED)
		r = kvmk_err_unsupported("kvmkit_virtio_net_create", ENOTSUP,
					 "vhost-net features 0x%llx lack 0x%llx",
					 (unsigned long long)n->vhost.features,
					 (unsigned long long)(VHOST_NEEDED & ~n->vhost.features));
	ev.data.fd = n->vhost.err_fd;
	if (!r && epoll_ctl(n->ep, EPOLL_CTL_ADD, n->vhost.err_fd, &ev) < 0)
		r = kvmk_err_sys("kvmkit_virtio_net_create", errno, "epoll");
	/* Until a driver says which path it gets, nobody reads the tap. */
	if (!r)
		watch_tap(n, false);
	return r;
}

/* The configuration space (5.1.4): mac, then status (link up). */
static void fill_config(struct kvmk_virtio *t, const struct kvmkit_virtio_net_config *nc)
{
	static const uint8_t zero[6];
	uint8_t *c = t->config;

	memset(c, 0, KVMK_VIRTIO_CONFIG_MAX);
	memcpy(c, nc->mac, 6);
	if (!memcmp(nc->mac, zero, 6)) {
		uint32_t h = 2166136261u; /* FNV-1a of the tap's name */

		for (const char *p = nc->tap; *p; p++)
			h = (h ^ (uint8_t)*p) * 16777619u;
		c[0] = 0x02; /* locally administered, unicast */
		c[1] = 0x6b;
		memcpy(c + 2, &h, 4);
	}
	c[6] = VIRTIO_NET_S_LINK_UP;
	t->config_len = 8;
}

int kvmkit_virtio_net_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
			     const struct kvmkit_virtio_net_config *nc, struct kvmkit_virtio **out)
{
	const char *op = "kvmkit_virtio_net_create";
	uint32_t qcap = cfg && cfg->queue_size ? cfg->queue_size : KVMK_VIRTIO_DEFAULT_QSIZE;
	struct kvmk_virtio *t = NULL;
	struct net *n;
	int r;

	if (!nc || !nc->tap || !nc->tap[0] || strlen(nc->tap) >= IFNAMSIZ)
		return kvmk_err_param(op, "tap", "an interface name of 1 to 15 bytes", "%s",
				      nc && nc->tap ? nc->tap : "(none)");
	if (qcap > KVMK_VQ_MAX_SIZE)
		return kvmk_err_param(op, "queue_size", "a power of two up to 32768", "%u", qcap);
	n = calloc(1, sizeof(*n));
	if (!n)
		return kvmk_err_resource(op, ENOMEM, NULL);
	n->ep = -1;
	n->vhost.fd = n->vhost.err_fd = -1;
	n->use_vhost = nc->vhost;
	snprintf(n->name, sizeof(n->name), "%s", nc->tap);
	r = open_tap(n, nc->tap);
	if (!r)
		r = alloc_net(n, qcap);
	if (!r && nc->vhost)
		r = open_vhost(n, nc->vhost_path);
	if (r) {
		free_net(n);
		return r;
	}
	r = kvmk_virtio_create(vm, cfg, &net_ops, n, &t);
	if (r) {
		if (t)
			kvmkit_virtio_destroy(kvmk_virtio_dev(t));
		else
			free_net(n);
		return r;
	}
	pthread_mutex_lock(&t->lock);
	fill_config(t, nc);
	pthread_mutex_unlock(&t->lock);
	*out = kvmk_virtio_dev(t);
	return 0;
}

int kvmkit_virtio_net_stats(struct kvmkit_virtio *dev, struct kvmkit_virtio_net_stats *out)
{
	struct kvmk_virtio *t = &dev->t;
	struct net *n = t->priv;

	if (t->ops != &net_ops)
		return kvmk_err_param("kvmkit_virtio_net_stats", "dev", "a virtio-net device", "%s",
				      t->ops->name);
	pthread_mutex_lock(&t->lock);
	*out = n->st;
	pthread_mutex_unlock(&t->lock);
	return 0;
}
