// SPDX-License-Identifier: MIT
/*
 * The virtio-net header rules (src/virtio/net_hdr.c) on headers, frame
 * lengths, features and chains made of the input: a header passed for the
 * tap must be one the rules allow; a tidied receive header must hold only
 * what the driver negotiated; transmit iovecs must stay inside the chain
 * and cover exactly the frame; receive placement must be exact.
 */
#include <linux/virtio_net.h>
#include <string.h>

#include "fuzz.h"
#include "virtio/net_hdr.h"

#define MAX_SEGS 8
#define SEG_BYTES 256

static uint8_t mem[MAX_SEGS][SEG_BYTES];

static bool gso_ok(const struct kvmk_net_hdr *h, uint64_t f, bool host)
{
	uint8_t base = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
	unsigned int t4 = host ? VIRTIO_NET_F_HOST_TSO4 : VIRTIO_NET_F_GUEST_TSO4;
	unsigned int t6 = host ? VIRTIO_NET_F_HOST_TSO6 : VIRTIO_NET_F_GUEST_TSO6;
	unsigned int ufo = host ? VIRTIO_NET_F_HOST_UFO : VIRTIO_NET_F_GUEST_UFO;
	unsigned int ecn = host ? VIRTIO_NET_F_HOST_ECN : VIRTIO_NET_F_GUEST_ECN;

	if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE)
		return true;
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) && !(f & (1ull << ecn)))
		return false;
	if (!h->gso_size || !(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
		return false;
	return (base == VIRTIO_NET_HDR_GSO_TCPV4 && (f & (1ull << t4))) ||
	       (base == VIRTIO_NET_HDR_GSO_TCPV6 && (f & (1ull << t6))) ||
	       (base == VIRTIO_NET_HDR_GSO_UDP && (f & (1ull << ufo)));
}

static void check_hdrs(const uint8_t *data, uint64_t features, uint64_t len)
{
	uint8_t raw[KVMK_NET_HDR_LEN], out[KVMK_NET_HDR_LEN];
	struct kvmk_net_hdr h;

	memcpy(raw, data, KVMK_NET_HDR_LEN);
	if (!kvmk_net_tx_check(raw, len, features, out)) {
		kvmk_net_hdr_decode(out, &h);
		CHECK(len >= KVMK_NET_ETH_HLEN && len <= KVMK_NET_MAX_FRAME);
		CHECK(!(h.flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM));
		CHECK(!(h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) ||
		      ((features & (1ull << VIRTIO_NET_F_CSUM)) &&
		       (uint64_t)h.csum_start + h.csum_offset + 2 <= len));
		CHECK(gso_ok(&h, features, true));
		CHECK(h.hdr_len <= len && h.num_buffers == 0);
		CHECK(h.gso_type != VIRTIO_NET_HDR_GSO_NONE || (!h.hdr_len && !h.gso_size));
	}
	if (!kvmk_net_rx_check(raw, len, features)) {
		kvmk_net_hdr_decode(raw, &h);
		CHECK(len >= KVMK_NET_ETH_HLEN && len <= KVMK_NET_MAX_FRAME);
		CHECK(!h.flags || (features & (1ull << VIRTIO_NET_F_GUEST_CSUM)));
		CHECK(!(h.flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)));
		CHECK(gso_ok(&h, features, false));
		CHECK(h.hdr_len <= len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmk_vq_seg segs[MAX_SEGS];
	struct kvmk_vq_chain c = { .seg = segs, .cap = MAX_SEGS };
	struct iovec iov[MAX_SEGS + 1];
	uint8_t h[KVMK_NET_HDR_LEN] = { 0 };
	uint64_t features, len, caps[MAX_SEGS], sum = 0;
	unsigned int n, k, max;
	int niov;

	if (size < KVMK_NET_HDR_LEN + 8 + 4 + 2 + 2 * MAX_SEGS)
		return 0;
	memcpy(&features, data + KVMK_NET_HDR_LEN, 8);
	len = (uint64_t)data[20] | (uint64_t)data[21] << 8 | (uint64_t)(data[22] & 3) << 16;
	check_hdrs(data, features, len);
	n = data[24] % (MAX_SEGS + 1);
	max = data[25] % (MAX_SEGS + 2);
	data += 26;
	for (unsigned int i = 0; i < n; i++) {
		segs[i] = (struct kvmk_vq_seg){ mem[i], 0x1000 * (i + 1u),
						data[i] % (SEG_BYTES + 1), false };
		caps[i] = data[MAX_SEGS + i] * 7u;
		c.read_len += segs[i].len;
	}
	c.nseg = c.nread = n;
	/* Transmit iovecs: the header copy, then exactly the frame. */
	niov = kvmk_net_tx_iov(&c, h, iov, (int)max);
	if (niov >= 0 && c.read_len >= KVMK_NET_HDR_LEN) {
		uint64_t total = 0;

		CHECK(niov >= 1 && iov[0].iov_base == h);
		for (int i = 1; i < niov; i++) {
			bool inside = false;

			for (unsigned int s = 0; s < n; s++)
				inside |= (uint8_t *)iov[i].iov_base >= mem[s] &&
					  (uint8_t *)iov[i].iov_base + iov[i].iov_len <=
						  mem[s] + segs[s].len;
			CHECK(inside && iov[i].iov_len > 0);
			total += iov[i].iov_len;
		}
		CHECK(total == c.read_len - KVMK_NET_HDR_LEN);
	}
	/* Receive placement: the fewest chains that hold it, or none. */
	k = kvmk_net_rx_fit(caps, n, len, data[0] & 1);
	CHECK(k <= n);
	for (unsigned int i = 0; i < k; i++)
		sum += caps[i];
	CHECK(!k || sum >= len);
	CHECK(!k || k == 1 || sum - caps[k - 1] < len);
	return 0;
}
