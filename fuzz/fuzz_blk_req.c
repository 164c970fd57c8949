// SPDX-License-Identifier: MIT
/*
 * The virtio-blk request parser (src/virtio/blk_req.c) on chains made of
 * the input: segment sizes and directions, their bytes, the disk size and
 * the negotiated features. Whatever it decides must stay inside the chain
 * and the disk.
 */
#include <string.h>

#include "fuzz.h"
#include "virtio/blk_req.h"

#define MAX_SEGS 8
#define SEG_BYTES 4096

static uint8_t mem[MAX_SEGS][SEG_BYTES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmk_vq_seg segs[MAX_SEGS];
	struct kvmk_vq_chain c = { .seg = segs, .cap = MAX_SEGS };
	struct kvmk_blk_limits lim;
	struct kvmk_blk_req req;
	struct iovec iov[MAX_SEGS];
	uint32_t n;
	bool written = false;

	if (size < 2 + 8 + 2 * MAX_SEGS)
		return 0;
	n = data[0] % (MAX_SEGS + 1);
	lim.read_only = data[1] & 1;
	lim.features = (uint64_t)data[1] << 8;
	memcpy(&lim.sectors, data + 2, 8);
	lim.sectors >>= data[1] >> 2; /* small disks too */
	data += 10;
	size -= 10;
	for (uint32_t i = 0; i < n; i++) {
		uint16_t v;

		memcpy(&v, data + 2 * i, 2);
		segs[i].len = v % (SEG_BYTES + 1);
		segs[i].write = (v & 0x8000) || written;
		written = segs[i].write;
		segs[i].hva = segs[i].len ? mem[i] : NULL;
		segs[i].gpa = 0x1000 * (i + 1);
		c.nseg++;
		if (segs[i].write) {
			c.write_len += segs[i].len;
		} else {
			c.nread++;
			c.read_len += segs[i].len;
		}
	}
	data += 2 * MAX_SEGS;
	size -= 2 * MAX_SEGS;
	for (uint32_t i = 0; i < MAX_SEGS && size; i++) {
		size_t k = size < SEG_BYTES ? size : SEG_BYTES;

		memcpy(mem[i], data, k);
		data += k;
		size -= k;
	}
	if (kvmk_blk_parse(&c, &lim, &req)) {
		CHECK(c.write_len == 0);
		return 0;
	}
	CHECK(req.status_off < c.write_len);
	if (req.op == BLK_OP_NONE) {
		CHECK(req.status != VIRTIO_BLK_S_OK);
		return 0;
	}
	if (req.op == BLK_OP_READ || req.op == BLK_OP_WRITE || req.op == BLK_OP_DISCARD ||
	    req.op == BLK_OP_ZEROES) {
		CHECK(req.len % BLK_SECTOR == 0 && req.offset % BLK_SECTOR == 0);
		CHECK(req.offset / BLK_SECTOR <= lim.sectors &&
		      req.len / BLK_SECTOR <= lim.sectors - req.offset / BLK_SECTOR);
		CHECK(req.op == BLK_OP_READ || !lim.read_only);
	}
	if (req.op == BLK_OP_READ || req.op == BLK_OP_WRITE) {
		int k = kvmk_blk_iov(&c, &req, iov, MAX_SEGS);
		uint64_t total = 0;

		CHECK(k >= 0);
		for (int i = 0; i < k; i++) {
			bool inside = false;

			for (uint32_t s = 0; s < c.nseg; s++)
				inside |= segs[s].hva &&
					  (uint8_t *)iov[i].iov_base >= (uint8_t *)segs[s].hva &&
					  (uint8_t *)iov[i].iov_base + iov[i].iov_len <=
						  (uint8_t *)segs[s].hva + segs[s].len &&
					  segs[s].write == (req.op == BLK_OP_READ);
			CHECK(inside);
			total += iov[i].iov_len;
		}
		CHECK(total == req.len);
		/* A read never covers the status byte. */
		CHECK(req.op != BLK_OP_READ || req.len <= req.status_off);
	}
	if (req.op == BLK_OP_GET_ID)
		CHECK(req.len <= VIRTIO_BLK_ID_BYTES && req.len <= req.status_off);
	return 0;
}
