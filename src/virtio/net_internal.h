/* SPDX-License-Identifier: MIT */
/*
 * virtio-net's state, shared by net.c (the tap, transmit, vhost, the
 * device's life) and net_rx.c (receive and its backpressure). Everything
 * here runs under the transport's lock unless said otherwise.
 */
#ifndef KVMKIT_VIRTIO_NET_INTERNAL_H
#define KVMKIT_VIRTIO_NET_INTERNAL_H

#include <net/if.h>
#include <sys/uio.h>

#include <kvmkit/virtio_io.h>

#include "virtio/net_hdr.h"
#include "virtio/vhost.h"
#include "virtio/virtio_internal.h"

#define RXQ 0
#define TXQ 1
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

static inline bool kvmk_net_has(const struct kvmk_virtio *t, unsigned int bit)
{
	return t->driver_features & (1ull << bit);
}

/* net.c */
/* The driver's receive offloads reach the tap once it is DRIVER_OK. */
void kvmk_net_ensure_offloads(struct kvmk_virtio *t, struct net *n);
/* Breaks queue @q over chain @head: DEVICE_NEEDS_RESET. */
void kvmk_net_queue_broken(struct kvmk_virtio *t, unsigned int q, const char *why, uint16_t head);

/* net_rx.c */
/* Whether the thread's epoll set reports the tap. */
void kvmk_net_watch_tap(struct net *n, bool on);
/* Forgets the receive chains taken but not used (a reset). */
void kvmk_net_drop_held(struct net *n);
/* Moves packets from the tap to the guest until the tap is empty, the
 * guest has no buffers, or the budget is spent. */
void kvmk_net_rx_work(struct kvmk_virtio *t, struct net *n);

#endif
