/* SPDX-License-Identifier: MIT */
/*
 * virtio-net header and frame rules (virtio 1.x 5.1.6), pure code shared by
 * the device (net.c), its unit test and fuzz target.
 *
 * With VIRTIO_F_VERSION_1 every packet in either direction starts with the
 * 12-byte struct virtio_net_hdr_v1 (le fields: flags, gso_type, hdr_len,
 * gso_size, csum_start, csum_offset, num_buffers); the tap is opened with
 * the same header size, so the header passes between the guest and the tap
 * as is once checked. A header the guest wrote is a claim: the device
 * copies it out once, checks it against the frame's real length and the
 * negotiated features, and hands the tap only the checked copy. A header
 * that lies (a checksum or header length past the frame, an offload that
 * was not negotiated) costs that packet only: it is dropped and counted.
 */
#ifndef KVMKIT_VIRTIO_NET_HDR_H
#define KVMKIT_VIRTIO_NET_HDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/virtqueue.h"

#define KVMK_NET_HDR_LEN 12
#define KVMK_NET_ETH_HLEN 14
/* The largest frame either way: an IP packet of 64 KiB after an Ethernet
 * and a VLAN header (the spec's 65562-byte receive buffer less the
 * header). */
#define KVMK_NET_MAX_FRAME 65550
/* iovecs of one TX packet: the header and the chain's readable segments. */
#define KVMK_NET_MAX_IOV 1024

struct kvmk_net_hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
};

void kvmk_net_hdr_decode(const uint8_t raw[KVMK_NET_HDR_LEN], struct kvmk_net_hdr *h);
void kvmk_net_hdr_encode(const struct kvmk_net_hdr *h, uint8_t raw[KVMK_NET_HDR_LEN]);

/* A packet the driver sent: @raw is the copy of its header, @frame_len the
 * bytes after it. NULL when it may go to the tap, with the header to send
 * in @out; else why it is dropped. */
const char *kvmk_net_tx_check(const uint8_t raw[KVMK_NET_HDR_LEN], uint64_t frame_len,
			      uint64_t features, uint8_t out[KVMK_NET_HDR_LEN]);
/* A packet the tap gave: checks and tidies its header in place for a
 * driver with @features (flags it did not negotiate cleared, GSO fields of
 * a non-GSO packet zeroed; num_buffers is the caller's). NULL when it may
 * go to the guest, else why it is dropped. */
const char *kvmk_net_rx_check(uint8_t raw[KVMK_NET_HDR_LEN], uint64_t frame_len, uint64_t features);
/* TUN_F_* offloads for the tap from the driver's features: what the
 * driver can take on its receive side, and only coherent sets (TSO needs
 * checksum offload, ECN needs TSO). */
unsigned int kvmk_net_tap_offloads(uint64_t features);
/* The iovecs that send a TX chain to the tap: @hdr (the checked copy),
 * then the chain's readable bytes past the guest's header. Returns the
 * count, or -1 past @max. */
int kvmk_net_tx_iov(const struct kvmk_vq_chain *c, const uint8_t *hdr, struct iovec *iov, int max);

/* Receive placement: how many of the @n chains of capacity @cap[i] (in
 * order) a packet of @len bytes (header included) takes: one chain
 * without MRG_RXBUF (the first must hold it all), as many as needed with
 * it. 0 when they do not hold it. */
unsigned int kvmk_net_rx_fit(const uint64_t *cap, unsigned int n, uint64_t len, bool mrg);

#endif
