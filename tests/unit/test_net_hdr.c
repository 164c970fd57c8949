// SPDX-License-Identifier: MIT
/*
 * The virtio-net header rules (src/virtio/net_hdr.c): what a driver may
 * send (every lie refused: lengths, checksum positions, offloads it did not
 * negotiate, the device's own flags), how a tap's header is tidied for the
 * driver, the tap offloads each feature set gets, the transmit iovecs past
 * a header split over descriptors, and receive placement with and without
 * merged buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "virtio/net_hdr.h"

#define F(b) (1ull << (b))
#define ALL_HOST                                                                        \
	(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) | \
	 F(VIRTIO_NET_F_HOST_ECN))

static uint8_t raw[KVMK_NET_HDR_LEN], out[KVMK_NET_HDR_LEN];

static void hdr(uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size, uint16_t start,
		uint16_t off)
{
	struct kvmk_net_hdr h = { flags, gso, hdr_len, gso_size, start, off, 0x5555 };

	kvmk_net_hdr_encode(&h, raw);
}

static const char *tx(uint64_t len, uint64_t features)
{
	return kvmk_net_tx_check(raw, len, features, out);
}

static void test_encode(void **state)
{
	struct kvmk_net_hdr h;

	hdr(1, 0x81, 0x1234, 0x5678, 0x9abc, 0xdef0);
	assert_int_equal(raw[2], 0x34);
	assert_int_equal(raw[3], 0x12);
	kvmk_net_hdr_decode(raw, &h);
	assert_int_equal(h.flags, 1);
	assert_int_equal(h.gso_type, 0x81);
	assert_int_equal(h.hdr_len, 0x1234);
	assert_int_equal(h.gso_size, 0x5678);
	assert_int_equal(h.csum_start, 0x9abc);
	assert_int_equal(h.csum_offset, 0xdef0);
	assert_int_equal(h.num_buffers, 0x5555);
}

static void test_tx_plain(void **state)
{
	struct kvmk_net_hdr h;

	/* Without GSO, hdr_len and gso_size mean nothing: the tap gets 0. */
	hdr(0, 0, 9999, 77, 0, 0);
	assert_null(tx(60, 0));
	kvmk_net_hdr_decode(out, &h);
	assert_int_equal(h.hdr_len, 0);
	assert_int_equal(h.gso_size, 0);
	assert_int_equal(h.num_buffers, 0);
	assert_null(tx(KVMK_NET_ETH_HLEN, 0));
	assert_non_null(tx(KVMK_NET_ETH_HLEN - 1, 0));
	assert_null(tx(KVMK_NET_MAX_FRAME, 0));
	assert_non_null(tx(KVMK_NET_MAX_FRAME + 1, 0));
	assert_non_null(tx(UINT64_MAX, 0));
}

static void test_tx_flags(void **state)
{
	hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0, 0);
	assert_non_null(tx(100, ALL_HOST));
	hdr(VIRTIO_NET_HDR_F_RSC_INFO, 0, 0, 0, 0, 0);
	assert_non_null(tx(100, ALL_HOST));
	/* A partial checksum needs VIRTIO_NET_F_CSUM and a field inside the
	 * frame: the last two bytes are the last place it fits. */
	hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16);
	assert_non_null(tx(100, 0));
	assert_null(tx(100, F(VIRTIO_NET_F_CSUM)));
	assert_null(tx(52, F(VIRTIO_NET_F_CSUM)));
	assert_non_null(tx(51, F(VIRTIO_NET_F_CSUM)));
	hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 0xffff, 0xffff);
	assert_non_null(tx(KVMK_NET_MAX_FRAME, F(VIRTIO_NET_F_CSUM)));
}

static void test_tx_gso(void **state)
{
	const uint8_t csum = VIRTIO_NET_HDR_F_NEEDS_CSUM;

	hdr(csum, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
	assert_null(tx(3000, ALL_HOST));
	assert_non_null(tx(3000, ALL_HOST & ~F(VIRTIO_NET_F_HOST_TSO4)));
	/* The header length lie: past the frame. */
	hdr(csum, VIRTIO_NET_HDR_GSO_TCPV4, 5000, 1448, 34, 16);
	assert_non_null(tx(3000, ALL_HOST));
	hdr(csum, VIRTIO_NET_HDR_GSO_TCPV4, 3000, 1448, 34, 16);
	assert_null(tx(3000, ALL_HOST));
	/* No segment size; no partial checksum; ECN rules; unknown types. */
	hdr(csum, VIRTIO_NET_HDR_GSO_TCPV4, 54, 0, 34, 16);
	assert_non_null(tx(3000, ALL_HOST));
	hdr(0, VIRTIO_NET_HDR_GSO_TCPV4, 54, 1448, 34, 16);
	assert_non_null(tx(3000, ALL_HOST));
	hdr(csum, VIRTIO_NET_HDR_GSO_TCPV6 | VIRTIO_NET_HDR_GSO_ECN, 74, 1428, 54, 16);
	assert_null(tx(3000, ALL_HOST));
	assert_non_null(tx(3000, ALL_HOST & ~F(VIRTIO_NET_F_HOST_ECN)));
	hdr(csum, VIRTIO_NET_HDR_GSO_ECN, 0, 0, 34, 16);
	assert_non_null(tx(3000, ALL_HOST));
	hdr(csum, 2, 54, 1448, 34, 16);
	assert_non_null(tx(3000, ALL_HOST));
	hdr(csum, VIRTIO_NET_HDR_GSO_UDP, 42, 1000, 34, 6);
	assert_non_null(tx(3000, ALL_HOST)); /* UFO is not offered */
}

static void test_rx(void **state)
{
	uint64_t gc = F(VIRTIO_NET_F_GUEST_CSUM);
	struct kvmk_net_hdr h;

	hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16);
	assert_non_null(kvmk_net_rx_check(raw, 100, 0));
	assert_null(kvmk_net_rx_check(raw, 100, gc));
	/* DATA_VALID only for a driver that negotiated GUEST_CSUM. */
	hdr(VIRTIO_NET_HDR_F_DATA_VALID | VIRTIO_NET_HDR_F_RSC_INFO, 0, 5, 6, 0, 0);
	assert_null(kvmk_net_rx_check(raw, 100, 0));
	kvmk_net_hdr_decode(raw, &h);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.hdr_len, 0);
	hdr(VIRTIO_NET_HDR_F_DATA_VALID, 0, 0, 0, 0, 0);
	assert_null(kvmk_net_rx_check(raw, 100, gc));
	kvmk_net_hdr_decode(raw, &h);
	assert_int_equal(h.flags, VIRTIO_NET_HDR_F_DATA_VALID);
	/* GSO the driver cannot take; a header length hint past the frame. */
	hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV6, 74, 1428, 54, 16);
	assert_non_null(kvmk_net_rx_check(raw, 5000, gc | F(VIRTIO_NET_F_GUEST_TSO4)));
	hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 9000, 1448, 34, 16);
	assert_null(kvmk_net_rx_check(raw, 5000, gc | F(VIRTIO_NET_F_GUEST_TSO4)));
	kvmk_net_hdr_decode(raw, &h);
	assert_int_equal(h.hdr_len, 0);
	assert_non_null(kvmk_net_rx_check(raw, 10, gc));
}

static void test_offloads(void **state)
{
	uint64_t gc = F(VIRTIO_NET_F_GUEST_CSUM);

	assert_int_equal(kvmk_net_tap_offloads(0), 0);
	assert_int_equal(kvmk_net_tap_offloads(F(VIRTIO_NET_F_GUEST_TSO4)), 0);
	assert_int_equal(kvmk_net_tap_offloads(gc), TUN_F_CSUM);
	assert_int_equal(kvmk_net_tap_offloads(gc | F(VIRTIO_NET_F_GUEST_ECN)), TUN_F_CSUM);
	assert_int_equal(kvmk_net_tap_offloads(gc | F(VIRTIO_NET_F_GUEST_TSO4) |
					       F(VIRTIO_NET_F_GUEST_TSO6) |
					       F(VIRTIO_NET_F_GUEST_ECN)),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
	/* Host-side features do not touch the tap's receive offloads. */
	assert_int_equal(kvmk_net_tap_offloads(ALL_HOST), 0);
}

static void test_tx_iov(void **state)
{
	static uint8_t m[3][200];
	struct kvmk_vq_seg s[3] = { { m[0], 0x1000, 5, false },
				    { m[1], 0x2000, 10, false },
				    { m[2], 0x3000, 100, false } };
	struct kvmk_vq_chain c = { .seg = s, .cap = 3, .nseg = 3, .nread = 3, .read_len = 115 };
	struct iovec iov[4];
	uint8_t h[KVMK_NET_HDR_LEN] = { 0 };

	/* The guest's header spans the first two segments. */
	assert_int_equal(kvmk_net_tx_iov(&c, h, iov, 4), 3);
	assert_ptr_equal(iov[0].iov_base, h);
	assert_int_equal(iov[0].iov_len, KVMK_NET_HDR_LEN);
	assert_ptr_equal(iov[1].iov_base, m[1] + 7);
	assert_int_equal(iov[1].iov_len, 3);
	assert_ptr_equal(iov[2].iov_base, m[2]);
	assert_int_equal(iov[2].iov_len, 100);
	assert_int_equal(kvmk_net_tx_iov(&c, h, iov, 2), -1);
	/* A header alone in its descriptor. */
	s[0].len = KVMK_NET_HDR_LEN;
	assert_int_equal(kvmk_net_tx_iov(&c, h, iov, 4), 3);
	assert_ptr_equal(iov[1].iov_base, m[1]);
	assert_int_equal(iov[1].iov_len, 10);
}

static void test_rx_fit(void **state)
{
	uint64_t caps[4] = { 256, 256, 256, 256 };

	assert_int_equal(kvmk_net_rx_fit(caps, 4, 256, false), 1);
	assert_int_equal(kvmk_net_rx_fit(caps, 4, 257, false), 0);
	assert_int_equal(kvmk_net_rx_fit(caps, 0, 20, false), 0);
	assert_int_equal(kvmk_net_rx_fit(caps, 4, 257, true), 2);
	assert_int_equal(kvmk_net_rx_fit(caps, 4, 1024, true), 4);
	assert_int_equal(kvmk_net_rx_fit(caps, 4, 1025, true), 0);
	assert_int_equal(kvmk_net_rx_fit(caps, 3, 1024, true), 0);
	caps[0] = 8; /* the header must fit the first buffer */
	assert_int_equal(kvmk_net_rx_fit(caps, 4, 100, true), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode),	 cmocka_unit_test(test_tx_plain),
		cmocka_unit_test(test_tx_flags), cmocka_unit_test(test_tx_gso),
		cmocka_unit_test(test_rx),	 cmocka_unit_test(test_offloads),
		cmocka_unit_test(test_tx_iov),	 cmocka_unit_test(test_rx_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
