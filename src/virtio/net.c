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
 * checked header copy. Receive, with its backpressure: net_rx.c.
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
#include "virtio/net_internal.h"

#define TX_BUDGET 256

static void set_offloads(struct kvmk_virtio *t, struct net *n, unsigned int o)
{
	if (ioctl(n->tap, TUNSETOFFLOAD, o) < 0) {
		kvmk_virtio_warn(t, "tap %s: TUNSETOFFLOAD 0x%x: %s", n->name, o, strerror(errno));
		o = 0;
		ioctl(n->tap, TUNSETOFFLOAD, 0);
	}
	n->st.offloads = o;
}

void kvmk_net_ensure_offloads(struct kvmk_virtio *t, struct net *n)
{
	if (n->offloads_set || !(t->status & VIRTIO_STATUS_DRIVER_OK))
		return;
	set_offloads(t, n, kvmk_net_tap_offloads(t->driver_features));
	n->offloads_set = true;
}

void kvmk_net_queue_broken(struct kvmk_virtio *t, unsigned int q, const char *why, uint16_t head)
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
			kvmk_net_queue_broken(t, TXQ, "device-writable buffer in a transmit chain",
					      c.head);
			break;
		}
		if (c.read_len < KVMK_NET_HDR_LEN) {
			kvmk_net_queue_broken(t, TXQ,
					      "transmit chain shorter than the virtio-net header",
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
	kvmk_net_ensure_offloads(t, n);
	/* From here the kernel reads the tap. */
	kvmk_net_watch_tap(n, false);
	if (n->pkt_pending)
		n->st.rx_dropped++;
	n->pkt_pending = false;
	kvmk_net_drop_held(n);
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
	return n->use_vhost && kvmk_net_has(t, VIRTIO_NET_F_MRG_RXBUF);
}

static void net_queue(struct kvmk_virtio *t, unsigned int q)
{
	struct net *n = t->priv;

	if (kernel_path(t, n))
		vhost_try_start(t, n);
	else if (q == TXQ)
		tx_work(t, n);
	else
		kvmk_net_rx_work(t, n); /* buffers came: a waiting packet goes now */
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
		kvmk_net_rx_work(t, n);
	pthread_mutex_unlock(&t->lock);
}

static void net_reset(struct kvmk_virtio *t)
{
	struct net *n = t->priv;

	vhost_stop(t, n);
	if (n->pkt_pending)
		n->st.rx_dropped++;
	n->pkt_pending = false;
	kvmk_net_drop_held(n);
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
		kvmk_net_watch_tap(n, false);
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
