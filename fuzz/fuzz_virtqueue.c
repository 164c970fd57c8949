// SPDX-License-Identifier: MIT
/*
 * The split-virtqueue walker (src/virtio/virtqueue.c) over a guest memory
 * made of the input: rings, descriptors and indirect tables are whatever
 * the fuzzer wrote. Every segment handed out must lie inside that memory,
 * every walk must end, and a broken queue must stay broken.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "virtio/virtqueue.h"

#define RAM_BASE 0x1000u
#define RAM_SIZE 0x4000u

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static const uint8_t pattern[64];

static void *map(void *ctx, uint64_t gpa, uint64_t len)
{
	CHECK(len > 0);
	if (gpa < RAM_BASE || gpa - RAM_BASE > RAM_SIZE || len > RAM_SIZE - (gpa - RAM_BASE))
		return NULL;
	return ram + (gpa - RAM_BASE);
}

static void dirty(void *ctx, uint64_t gpa, uint64_t len)
{
	CHECK(map(ctx, gpa, len) != NULL);
}

static const struct kvmk_gmem mem = { NULL, map, dirty };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmk_vq_seg segs[64];
	struct kvmk_vq_chain c = { .seg = segs, .cap = 64 };
	struct kvmk_vq vq = { 0 };
	uint16_t start;
	uint8_t b;

	if (size < 4)
		return 0;
	b = data[0];
	memcpy(&start, data + 1, 2);
	data += 3;
	size -= 3;
	memset(ram, 0, sizeof(ram));
	memcpy(ram, data, size < sizeof(ram) ? size : sizeof(ram));
	vq.size = (uint16_t)(1u << (b & 7)); /* 1..128 */
	vq.event_idx = b & 0x08;
	vq.indirect = b & 0x10;
	/* Areas at fixed places the input overwrites (or wild ones). */
	vq.desc_gpa = RAM_BASE;
	vq.avail_gpa = RAM_BASE + 0x800 + ((b & 0x20) ? 2 : 0);
	vq.used_gpa = RAM_BASE + 0xa00 + ((b & 0x40) ? 0x3000 : 0);
	if (kvmk_vq_resume(&vq, &mem, start, start))
		return 0;
	for (unsigned int i = 0; i < 300; i++) {
		int r = kvmk_vq_pop(&vq, &c);

		if (r < 0) {
			CHECK(vq.broken && kvmk_vq_pop(&vq, &c) == -EIO);
			break;
		}
		if (r == 0) {
			if (!kvmk_vq_rearm(&vq))
				break;
			continue;
		}
		CHECK(c.nseg <= c.cap && c.nread <= c.nseg);
		for (uint32_t s = 0; s < c.nseg; s++) {
			if (c.seg[s].len) {
				CHECK(map(NULL, c.seg[s].gpa, c.seg[s].len) == c.seg[s].hva);
				((volatile uint8_t *)c.seg[s].hva)[c.seg[s].len - 1] ^= 0;
			}
			CHECK(c.seg[s].write == (s >= c.nread));
		}
		kvmk_chain_write(&c, &mem, 0, pattern, c.write_len < 64 ? c.write_len : 64);
		kvmk_vq_push(&vq, &c, (uint32_t)c.write_len);
		kvmk_vq_need_notify(&vq);
	}
	return 0;
}
