// SPDX-License-Identifier: MIT
/*
 * virtio-net header checks (see net_hdr.h). The rules follow the spec's
 * device requirements for transmission (5.1.6.2.2) and what the kernel's
 * tap will accept, so that a packet refused here is one the guest had no
 * right to send, and a packet passed here is never refused for its header.
 */
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <string.h>

#include "virtio/net_hdr.h"

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void kvmk_net_hdr_decode(const uint8_t raw[KVMK_NET_HDR_LEN], struct kvmk_net_hdr *h)
{
	h->flags = raw[0];
	h->gso_type = raw[1];
	h->hdr_len = le16(raw + 2);
	h->gso_size = le16(raw + 4);
	h->csum_start = le16(raw + 6);
	h->csum_offset = le16(raw + 8);
	h->num_buffers = le16(raw + 10);
}

void kvmk_net_hdr_encode(const struct kvmk_net_hdr *h, uint8_t raw[KVMK_NET_HDR_LEN])
{
	raw[0] = h->flags;
	raw[1] = h->gso_type;
	put16(raw + 2, h->hdr_len);
	put16(raw + 4, h->gso_size);
	put16(raw + 6, h->csum_start);
	put16(raw + 8, h->csum_offset);
	put16(raw + 10, h->num_buffers);
}

static bool has(uint64_t features, unsigned int bit)
{
	return features & (1ull << bit);
}

/* The feature that allows GSO type @gso (ECN bit excluded) on the send
 * (@host) or receive side; -1 for an unknown type. */
static int gso_feature(uint8_t gso, bool host)
{
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return host ? VIRTIO_NET_F_HOST_TSO4 : VIRTIO_NET_F_GUEST_TSO4;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return host ? VIRTIO_NET_F_HOST_TSO6 : VIRTIO_NET_F_GUEST_TSO6;
	case VIRTIO_NET_HDR_GSO_UDP:
		return host ? VIRTIO_NET_F_HOST_UFO : VIRTIO_NET_F_GUEST_UFO;
	}
	return -1;
}

/* The GSO type's rules on either side; NULL if allowed. */
static const char *check_gso(const struct kvmk_net_hdr *h, uint64_t features, bool host)
{
	uint8_t base = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	int f;

	if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return NULL;
	if (base == VIRTIO_NET_HDR_GSO_NONE)
		return "ECN bit without a GSO type";
	f = gso_feature(base, host);
	if (f < 0)
		return "unknown GSO type";
	if (!has(features, (unsigned int)f))
		return "GSO type not negotiated";
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    !has(features, host ? VIRTIO_NET_F_HOST_ECN : VIRTIO_NET_F_GUEST_ECN))
		return "GSO with ECN not negotiated";
	if (!h->gso_size)
		return "GSO with a segment size of 0";
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return "GSO without a partial checksum";
	return NULL;
}

static const char *check_csum(const struct kvmk_net_hdr *h, uint64_t frame_len)
{
	if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return NULL;
	/* The checksum field (2 bytes) lies inside the frame. */
	if ((uint64_t)h->csum_start + h->csum_offset + 2 > frame_len)
		return "checksum position past the frame";
	return NULL;
}

const char *kvmk_net_tx_check(const uint8_t raw[KVMK_NET_HDR_LEN], uint64_t frame_len,
			      uint64_t features, uint8_t out[KVMK_NET_HDR_LEN])
{
	struct kvmk_net_hdr h;
	const char *why;

	kvmk_net_hdr_decode(raw, &h);
	if (frame_len < KVMK_NET_ETH_HLEN)
		return "frame shorter than an Ethernet header";
	if (frame_len > KVMK_NET_MAX_FRAME)
		return "frame longer than 65550 bytes";
	/* DATA_VALID and RSC_INFO are the device's to set (5.1.6.2.1). */
	if (h.flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return "flags the driver may not set";
	if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !has(features, VIRTIO_NET_F_CSUM))
		return "partial checksum without VIRTIO_NET_F_CSUM";
	why = check_csum(&h, frame_len);
	if (!why)
		why = check_gso(&h, features, true);
	if (why)
		return why;
	if (h.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
		/* Meaningless without GSO: the tap gets zeros. */
		h.hdr_len = 0;
		h.gso_size = 0;
	} else if (h.hdr_len > frame_len) {
		return "header length past the frame";
	}
	h.num_buffers = 0;
	kvmk_net_hdr_encode(&h, out);
	return NULL;
}

const char *kvmk_net_rx_check(uint8_t raw[KVMK_NET_HDR_LEN], uint64_t frame_len, uint64_t features)
{
	struct kvmk_net_hdr h;
	const char *why;
	bool csum = has(features, VIRTIO_NET_F_GUEST_CSUM);

	kvmk_net_hdr_decode(raw, &h);
	if (frame_len < KVMK_NET_ETH_HLEN)
		return "frame shorter than an Ethernet header";
	if (frame_len > KVMK_NET_MAX_FRAME)
		return "frame longer than 65550 bytes";
	if ((h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !csum)
		return "partial checksum for a driver without GUEST_CSUM";
	h.flags &= csum ? VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID : 0;
	why = check_csum(&h, frame_len);
	if (!why)
		why = check_gso(&h, features, false);
	if (why)
		return why;
	if (h.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
		h.hdr_len = 0;
		h.gso_size = 0;
	} else if (h.hdr_len > frame_len) {
		h.hdr_len = 0; /* a hint only: none is better than a wrong one */
	}
	kvmk_net_hdr_encode(&h, raw);
	return NULL;
}

unsigned int kvmk_net_tap_offloads(uint64_t f)
{
	unsigned int o = 0;

	if (!has(f, VIRTIO_NET_F_GUEST_CSUM))
		return 0;
	o |= TUN_F_CSUM;
	if (has(f, VIRTIO_NET_F_GUEST_TSO4))
		o |= TUN_F_TSO4;
	if (has(f, VIRTIO_NET_F_GUEST_TSO6))
		o |= TUN_F_TSO6;
	if ((o & (TUN_F_TSO4 | TUN_F_TSO6)) && has(f, VIRTIO_NET_F_GUEST_ECN))
		o |= TUN_F_TSO_ECN;
	return o;
}

int kvmk_net_tx_iov(const struct kvmk_vq_chain *c, const uint8_t *hdr, struct iovec *iov, int max)
{
	uint64_t skip = KVMK_NET_HDR_LEN;
	int n = 0;

	if (max < 1)
		return -1;
	iov[n++] = (struct iovec){ (void *)hdr, KVMK_NET_HDR_LEN };
	for (uint32_t i = 0; i < c->nread; i++) {
		const struct kvmk_vq_seg *s = &c->seg[i];

		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		if (n == max)
			return -1;
		iov[n++] = (struct iovec){ (uint8_t *)s->hva + skip, s->len - skip };
		skip = 0;
	}
	return n;
}

unsigned int kvmk_net_rx_fit(const uint64_t *cap, unsigned int n, uint64_t len, bool mrg)
{
	uint64_t have = 0;

	if (!mrg)
		return n && cap[0] >= len ? 1 : 0;
	for (unsigned int i = 0; i < n; i++) {
		/* Every buffer of a merged packet carries at least one byte,
		 * and the first holds the whole header. */
		if (!cap[i] || (i == 0 && cap[i] < KVMK_NET_HDR_LEN))
			return 0;
		have += cap[i];
		if (have >= len)
			return i + 1;
	}
	return 0;
}
