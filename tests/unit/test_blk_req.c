// SPDX-License-Identifier: MIT
/*
 * The virtio-blk request parser (src/virtio/blk_req.c) on hand-built
 * chains: every request type, the header and status framings, range and
 * feature checks, read-only disks, and what it must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "virtio/blk_req.h"

#define SECTORS 100

static uint8_t mem[8][8192];
static struct kvmk_vq_seg segs[8];
static struct kvmk_vq_chain c;
static struct kvmk_blk_limits lim;
static struct kvmk_blk_req req;

static int setup(void **state)
{
	memset(mem, 0, sizeof(mem));
	memset(&c, 0, sizeof(c));
	c.seg = segs;
	c.cap = 8;
	lim.sectors = SECTORS;
	lim.read_only = false;
	lim.features = (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_DISCARD) |
		       (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	return 0;
}

/* Appends a segment of @len bytes; readable ones come first. */
static void seg(uint32_t len, bool write)
{
	struct kvmk_vq_seg *s = &segs[c.nseg];

	s->hva = mem[c.nseg];
	s->gpa = 0x1000 * (c.nseg + 1);
	s->len = len;
	s->write = write;
	c.nseg++;
	if (write) {
		c.write_len += len;
	} else {
		c.nread++;
		c.read_len += len;
	}
}

static void header(uint32_t type, uint64_t sector)
{
	uint32_t t[2] = { type, 0 };

	memcpy(mem[0], t, 8);
	memcpy(mem[0] + 8, &sector, 8);
}

static void range(unsigned int s, uint64_t sector, uint32_t num, uint32_t flags)
{
	memcpy(mem[s], &sector, 8);
	memcpy(mem[s] + 8, &num, 4);
	memcpy(mem[s] + 12, &flags, 4);
}

static void expect(enum kvmk_blk_op op, uint8_t status)
{
	assert_int_equal(kvmk_blk_parse(&c, &lim, &req), 0);
	assert_int_equal(req.op, op);
	assert_int_equal(req.status, status);
	assert_int_equal(req.status_off, c.write_len - 1);
}

static void test_read(void **state)
{
	struct iovec iov[4];

	header(VIRTIO_BLK_T_IN, 3);
	seg(16, false);
	seg(1024, true);
	seg(1, true);
	expect(BLK_OP_READ, VIRTIO_BLK_S_OK);
	assert_int_equal(req.offset, 3 * 512);
	assert_int_equal(req.len, 1024);
	assert_int_equal(kvmk_blk_iov(&c, &req, iov, 4), 1);
	assert_ptr_equal(iov[0].iov_base, mem[1]);
	assert_int_equal(iov[0].iov_len, 1024);
	/* Not enough iovecs: refused, not truncated. */
	assert_int_equal(kvmk_blk_iov(&c, &req, iov, 0), -1);
}

/* The device must not assume the framing: data and status may share a
 * descriptor, the header may be split. */
static void test_framing(void **state)
{
	struct iovec iov[4];

	header(VIRTIO_BLK_T_IN, 0);
	seg(16, false);
	seg(512 + 1, true);
	expect(BLK_OP_READ, VIRTIO_BLK_S_OK);
	assert_int_equal(req.len, 512);
	assert_int_equal(kvmk_blk_iov(&c, &req, iov, 4), 1);
	assert_int_equal(iov[0].iov_len, 512);

	setup(state);
	header(VIRTIO_BLK_T_OUT, 1);
	seg(16 + 512, false); /* header and data in one descriptor */
	seg(1, true);
	expect(BLK_OP_WRITE, VIRTIO_BLK_S_OK);
	assert_int_equal(kvmk_blk_iov(&c, &req, iov, 4), 1);
	assert_ptr_equal(iov[0].iov_base, mem[0] + 16);
	assert_int_equal(iov[0].iov_len, 512);

	setup(state);
	seg(8, false);
	seg(8 + 512, false); /* header split over two, data after it */
	seg(1, true);
	memcpy(mem[0], (uint32_t[]){ VIRTIO_BLK_T_OUT, 0 }, 8);
	memset(mem[1], 0, 8); /* sector 0 */
	expect(BLK_OP_WRITE, VIRTIO_BLK_S_OK);
	assert_int_equal(kvmk_blk_iov(&c, &req, iov, 4), 1);
	assert_ptr_equal(iov[0].iov_base, mem[1] + 8);
}

static void test_bad_rw(void **state)
{
	header(VIRTIO_BLK_T_IN, 0);
	seg(16, false);
	seg(100, true); /* not a whole sector */
	seg(1, true);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_IOERR);

	setup(state);
	header(VIRTIO_BLK_T_IN, SECTORS - 1);
	seg(16, false);
	seg(1024, true); /* one sector past the end */
	seg(1, true);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_IOERR);

	setup(state);
	header(VIRTIO_BLK_T_OUT, ~0ull); /* sector * 512 would wrap */
	seg(16 + 512, false);
	seg(1, true);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_IOERR);

	setup(state);
	lim.read_only = true;
	header(VIRTIO_BLK_T_OUT, 0);
	seg(16 + 512, false);
	seg(1, true);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_IOERR);
	/* Reads of a read-only disk are fine. */
	setup(state);
	lim.read_only = true;
	header(VIRTIO_BLK_T_IN, 0);
	seg(16, false);
	seg(513, true);
	expect(BLK_OP_READ, VIRTIO_BLK_S_OK);
}

static void test_header_and_status(void **state)
{
	seg(8, false); /* short header */
	seg(1, true);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_IOERR);
	setup(state);
	header(VIRTIO_BLK_T_IN, 0);
	seg(16, false);
	seg(512, false); /* no writable byte for the status */
	assert_int_equal(kvmk_blk_parse(&c, &lim, &req), -1);
	setup(state);
	header(0x1234, 0);
	seg(16, false);
	seg(1, true);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_UNSUPP);
}

static void test_flush_get_id(void **state)
{
	header(VIRTIO_BLK_T_FLUSH, 0);
	seg(16, false);
	seg(1, true);
	expect(BLK_OP_FLUSH, VIRTIO_BLK_S_OK);
	lim.features = 0;
	expect(BLK_OP_NONE, VIRTIO_BLK_S_UNSUPP);

	setup(state);
	header(VIRTIO_BLK_T_GET_ID, 0);
	seg(16, false);
	seg(21, true);
	expect(BLK_OP_GET_ID, VIRTIO_BLK_S_OK);
	assert_int_equal(req.len, 20);
	setup(state);
	header(VIRTIO_BLK_T_GET_ID, 0);
	seg(16, false);
	seg(6, true);
	expect(BLK_OP_GET_ID, VIRTIO_BLK_S_OK);
	assert_int_equal(req.len, 5);
}

static void test_discard_zeroes(void **state)
{
	header(VIRTIO_BLK_T_DISCARD, 0);
	seg(16, false);
	seg(16, false);
	seg(1, true);
	range(1, 10, 20, 0);
	expect(BLK_OP_DISCARD, VIRTIO_BLK_S_OK);
	assert_int_equal(req.offset, 10 * 512);
	assert_int_equal(req.len, 20 * 512);
	range(1, 10, 20, 1); /* unmap on a discard */
	expect(BLK_OP_NONE, VIRTIO_BLK_S_UNSUPP);
	range(1, 10, 20, 4); /* an unknown flag */
	expect(BLK_OP_NONE, VIRTIO_BLK_S_UNSUPP);
	range(1, SECTORS - 1, 2, 0);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_IOERR);
	range(1, ~0ull, 2, 0);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_IOERR);
	lim.features = 0;
	range(1, 10, 20, 0);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_UNSUPP);

	setup(state);
	header(VIRTIO_BLK_T_WRITE_ZEROES, 0);
	seg(16, false);
	seg(32, false); /* two ranges: one is the limit */
	seg(1, true);
	range(1, 0, 1, 0);
	expect(BLK_OP_NONE, VIRTIO_BLK_S_IOERR);
	setup(state);
	header(VIRTIO_BLK_T_WRITE_ZEROES, 0);
	seg(16, false);
	seg(16, false);
	seg(1, true);
	range(1, 0, 8, 1); /* unmap allowed (the device zeroes anyway) */
	expect(BLK_OP_ZEROES, VIRTIO_BLK_S_OK);
	lim.read_only = true;
	expect(BLK_OP_NONE, VIRTIO_BLK_S_IOERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_read, setup),
		cmocka_unit_test_setup(test_framing, setup),
		cmocka_unit_test_setup(test_bad_rw, setup),
		cmocka_unit_test_setup(test_header_and_status, setup),
		cmocka_unit_test_setup(test_flush_get_id, setup),
		cmocka_unit_test_setup(test_discard_zeroes, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
