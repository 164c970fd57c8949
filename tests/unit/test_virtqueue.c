// SPDX-License-Identifier: MIT
/*
 * The split-virtqueue walker (src/virtio/virtqueue.c) against a fake guest
 * memory: ordinary chains, indirect tables, EVENT_IDX both ways, index
 * wrap-around, and hostile rings (loops, out-of-range indices and
 * addresses, huge lengths, indirect in indirect, bad orders), each of which
 * must break the queue without consuming anything or touching memory
 * outside guest RAM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "virtio/virtqueue.h"

#define RAM_BASE 0x10000ull
#define RAM_SIZE 0x40000ull
#define QSIZE 8
#define DESC_GPA RAM_BASE
#define AVAIL_GPA (RAM_BASE + 0x1000)
#define USED_GPA (RAM_BASE + 0x2000)
#define BUF_GPA (RAM_BASE + 0x8000)

static uint8_t *ram;
static unsigned int dirty_calls;

static void *fake_map(void *ctx, uint64_t gpa, uint64_t len)
{
	assert_true(len > 0);
	if (gpa < RAM_BASE || gpa - RAM_BASE > RAM_SIZE || len > RAM_SIZE - (gpa - RAM_BASE))
		return NULL;
	return ram + (gpa - RAM_BASE);
}

static void fake_dirty(void *ctx, uint64_t gpa, uint64_t len)
{
	assert_non_null(fake_map(ctx, gpa, len));
	dirty_calls++;
}

static const struct kvmk_gmem mem = { NULL, fake_map, fake_dirty };

static void *g(uint64_t gpa)
{
	return ram + (gpa - RAM_BASE);
}

static void set_desc(uint64_t table, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = g(table + 16 * i);

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, g(gpa), 2);
	return v;
}

static void put16(uint64_t gpa, uint16_t v)
{
	memcpy(g(gpa), &v, 2);
}

/* The driver makes chain @head available. */
static void offer(uint16_t head)
{
	uint16_t idx = get16(AVAIL_GPA + 2);

	put16(AVAIL_GPA + 4 + 2 * (idx % QSIZE), head);
	put16(AVAIL_GPA + 2, (uint16_t)(idx + 1));
}

static struct kvmk_vq vq;
static struct kvmk_vq_seg segs[16];
static struct kvmk_vq_chain chain;

static int setup(void **state)
{
	free(ram); /* a test may start over */
	ram = aligned_alloc(4096, RAM_SIZE);
	assert_non_null(ram);
	memset(ram, 0, RAM_SIZE);
	memset(&vq, 0, sizeof(vq));
	vq.size = QSIZE;
	vq.desc_gpa = DESC_GPA;
	vq.avail_gpa = AVAIL_GPA;
	vq.used_gpa = USED_GPA;
	vq.indirect = true;
	memset(&chain, 0, sizeof(chain));
	chain.seg = segs;
	chain.cap = 16;
	dirty_calls = 0;
	assert_int_equal(kvmk_vq_start(&vq, &mem), 0);
	return 0;
}

static int teardown(void **state)
{
	free(ram);
	ram = NULL;
	return 0;
}

static void test_simple_chain(void **state)
{
	uint32_t used[2];

	set_desc(DESC_GPA, 3, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 5);
	set_desc(DESC_GPA, 5, BUF_GPA + 0x100, 100, VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC_GPA, 1, BUF_GPA + 0x200, 1, VIRTQ_DESC_F_WRITE, 0);
	memcpy(g(BUF_GPA), "0123456789abcdef", 16);
	memset(g(BUF_GPA + 0x100), 'x', 100);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 0);
	offer(3);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.head, 3);
	assert_int_equal(chain.nseg, 3);
	assert_int_equal(chain.nread, 2);
	assert_int_equal(chain.read_len, 116);
	assert_int_equal(chain.write_len, 1);
	assert_ptr_equal(chain.seg[1].hva, g(BUF_GPA + 0x100));
	assert_true(chain.seg[2].write);

	char buf[20];
	assert_int_equal(kvmk_chain_read(&chain, 14, buf, 4), 4);
	assert_memory_equal(buf, "efxx", 4);
	assert_int_equal(kvmk_chain_read(&chain, 110, buf, 20), 6);
	uint8_t status = 0x5a;
	assert_int_equal(kvmk_chain_write(&chain, &mem, 0, &status, 1), 1);
	assert_int_equal(*(uint8_t *)g(BUF_GPA + 0x200), 0x5a);
	assert_int_equal(kvmk_chain_write(&chain, &mem, 1, &status, 1), 0);

	assert_int_equal(kvmk_vq_pop(&vq, &chain), 0);
	kvmk_vq_push(&vq, &chain, 1);
	memcpy(used, g(USED_GPA + 4), 8);
	assert_int_equal(used[0], 3);
	assert_int_equal(used[1], 1);
	assert_int_equal(get16(USED_GPA + 2), 1);
	assert_true(kvmk_vq_need_notify(&vq));
	/* avail.flags NO_INTERRUPT suppresses (no EVENT_IDX). */
	put16(AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_false(kvmk_vq_need_notify(&vq));
	assert_true(dirty_calls > 0);
}

static void test_indirect(void **state)
{
	uint64_t table = RAM_BASE + 0x3000;

	set_desc(table, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	set_desc(table, 2, BUF_GPA + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	set_desc(table, 1, BUF_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	/* The WRITE flag on the descriptor pointing at the table is ignored. */
	set_desc(DESC_GPA, 0, table, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.nseg, 3);
	assert_int_equal(chain.nread, 1);
	assert_int_equal(chain.write_len, 513);
	/* A direct descriptor, then the indirect one ends the chain. */
	set_desc(DESC_GPA, 4, BUF_GPA, 8, VIRTQ_DESC_F_NEXT, 6);
	set_desc(DESC_GPA, 6, table, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(table, 0, BUF_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	offer(4);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.nseg, 3);
}

static void test_event_idx(void **state)
{
	set_desc(DESC_GPA, 0, BUF_GPA, 4, VIRTQ_DESC_F_WRITE, 0);
	kvmk_vq_stop(&vq);
	vq.event_idx = true;
	assert_int_equal(kvmk_vq_start(&vq, &mem), 0);
	/* avail_event: the device asks for a kick at the next entry. */
	assert_false(kvmk_vq_rearm(&vq));
	assert_int_equal(get16(USED_GPA + 4 + 8 * QSIZE), 0);
	offer(0);
	assert_true(kvmk_vq_rearm(&vq)); /* arrived meanwhile */
	for (int i = 0; i < 3; i++) {
		if (i)
			offer(0);
		assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
		kvmk_vq_push(&vq, &chain, 4);
	}
	assert_false(kvmk_vq_rearm(&vq));
	assert_int_equal(get16(USED_GPA + 4 + 8 * QSIZE), 3);
	/* used_event: notify only when used idx passes it. The first
	 * decision always notifies (nothing signalled yet). */
	put16(AVAIL_GPA + 4 + 2 * QSIZE, 0);
	assert_true(kvmk_vq_need_notify(&vq)); /* signalled = 3 */
	offer(0);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
	kvmk_vq_push(&vq, &chain, 4); /* used 4, event 5: not yet */
	put16(AVAIL_GPA + 4 + 2 * QSIZE, 5);
	assert_false(kvmk_vq_need_notify(&vq));
	for (int i = 0; i < 2; i++) {
		offer(0);
		assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
		kvmk_vq_push(&vq, &chain, 4);
	}
	/* used went 4 -> 6, passing event 5. */
	assert_true(kvmk_vq_need_notify(&vq));
	assert_false(kvmk_vq_need_notify(&vq)); /* nothing new */
}

static void test_wrap(void **state)
{
	kvmk_vq_stop(&vq);
	assert_int_equal(kvmk_vq_resume(&vq, &mem, 65534, 65534), 0);
	put16(AVAIL_GPA + 2, 65534);
	set_desc(DESC_GPA, 2, BUF_GPA, 4, 0, 0);
	for (int i = 0; i < 5; i++)
		offer(2);
	assert_int_equal(get16(AVAIL_GPA + 2), 3);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
		kvmk_vq_push(&vq, &chain, 0);
	}
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 0);
	assert_int_equal(vq.last_avail, 3);
	assert_int_equal(get16(USED_GPA + 2), 3);
}

static void test_stale_push(void **state)
{
	set_desc(DESC_GPA, 0, BUF_GPA, 4, 0, 0);
	offer(0);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
	kvmk_vq_stop(&vq); /* a reset while the request was in flight */
	assert_int_equal(kvmk_vq_start(&vq, &mem), 0);
	kvmk_vq_push(&vq, &chain, 4);
	assert_int_equal(get16(USED_GPA + 2), 0);
	assert_int_equal(vq.used_idx, 0);
}

/* Each hostile chain breaks the queue, consumes nothing, and the queue
 * keeps saying so. */
static void expect_broken(const char *what)
{
	uint16_t before = vq.last_avail;

	assert_int_equal(kvmk_vq_pop(&vq, &chain), -EIO);
	assert_true(vq.broken);
	assert_true(vq.why[0] != 0);
	assert_int_equal(vq.last_avail, before);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), -EIO);
	assert_false(kvmk_vq_rearm(&vq));
	(void)what;
}

static void test_loop(void **state)
{
	set_desc(DESC_GPA, 0, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC_GPA, 1, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, 0);
	offer(0);
	expect_broken("loop");
}

static void test_self_loop_indirect(void **state)
{
	uint64_t table = RAM_BASE + 0x3000;

	set_desc(table, 0, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, 0);
	set_desc(DESC_GPA, 0, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect self loop");
}

static void test_next_out_of_range(void **state)
{
	set_desc(DESC_GPA, 0, BUF_GPA, 4, VIRTQ_DESC_F_NEXT, QSIZE);
	offer(0);
	expect_broken("next");
}

static void test_head_out_of_range(void **state)
{
	offer(QSIZE + 100);
	expect_broken("head");
}

static void test_avail_too_far(void **state)
{
	put16(AVAIL_GPA + 2, QSIZE + 1);
	expect_broken("avail idx");
}

static void test_wild_address(void **state)
{
	set_desc(DESC_GPA, 0, 0xfffffffffffffff0ull, 0x20, 0, 0);
	offer(0);
	expect_broken("wrapping address");
}

static void test_huge_length(void **state)
{
	set_desc(DESC_GPA, 0, BUF_GPA, 0xffffffffu, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	expect_broken("huge length");
}

static void test_outside_ram(void **state)
{
	set_desc(DESC_GPA, 0, RAM_BASE + RAM_SIZE - 4, 8, 0, 0);
	offer(0);
	expect_broken("crossing the end of RAM");
}

static void test_indirect_in_indirect(void **state)
{
	uint64_t t1 = RAM_BASE + 0x3000, t2 = RAM_BASE + 0x4000;

	set_desc(t2, 0, BUF_GPA, 4, 0, 0);
	set_desc(t1, 0, t2, 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(DESC_GPA, 0, t1, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect in indirect");
}

static void test_indirect_bad(void **state)
{
	uint64_t t1 = RAM_BASE + 0x3000;

	set_desc(t1, 0, BUF_GPA, 4, 0, 0);
	set_desc(DESC_GPA, 0, t1, 24, VIRTQ_DESC_F_INDIRECT, 0); /* not a multiple of 16 */
	offer(0);
	expect_broken("indirect length");
	setup(state);
	set_desc(DESC_GPA, 0, t1, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	offer(0);
	expect_broken("indirect with next");
	setup(state);
	set_desc(DESC_GPA, 0, t1, 16 * 1024, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect table larger than the chain capacity");
	setup(state);
	vq.indirect = false;
	set_desc(DESC_GPA, 0, t1, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect not negotiated");
	setup(state);
	set_desc(DESC_GPA, 0, 0x1000, 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken("indirect table outside RAM");
}

static void test_order(void **state)
{
	set_desc(DESC_GPA, 0, BUF_GPA, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC_GPA, 1, BUF_GPA, 4, 0, 0);
	offer(0);
	expect_broken("readable after writable");
}

static void test_too_many_segments(void **state)
{
	uint64_t t1 = RAM_BASE + 0x3000;

	/* A 16-entry indirect table fits; 17 entries do not (cap 16). */
	for (unsigned int i = 0; i < 16; i++)
		set_desc(t1, i, BUF_GPA, 1, i < 15 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	set_desc(DESC_GPA, 0, t1, 16 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(0);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.nseg, 16);
	set_desc(DESC_GPA, 1, BUF_GPA, 1, VIRTQ_DESC_F_NEXT, 2);
	set_desc(DESC_GPA, 2, t1, 16 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	offer(1);
	expect_broken("17 segments");
}

static void test_layout(void **state)
{
	kvmk_vq_stop(&vq);
	vq.size = 6;
	assert_int_equal(kvmk_vq_start(&vq, &mem), -EINVAL);
	assert_false(vq.ready);
	vq.size = 0;
	assert_int_equal(kvmk_vq_start(&vq, &mem), -EINVAL);
	vq.size = QSIZE;
	vq.desc_gpa = DESC_GPA + 8;
	assert_int_equal(kvmk_vq_start(&vq, &mem), -EINVAL);
	vq.desc_gpa = DESC_GPA;
	vq.used_gpa = USED_GPA + 2;
	assert_int_equal(kvmk_vq_start(&vq, &mem), -EINVAL);
	vq.used_gpa = RAM_BASE + RAM_SIZE - 16;
	assert_int_equal(kvmk_vq_start(&vq, &mem), -EINVAL);
	vq.used_gpa = USED_GPA;
	vq.avail_gpa = 0xfffffffffffffffeull;
	assert_int_equal(kvmk_vq_start(&vq, &mem), -EINVAL);
	assert_false(vq.ready);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 0);
	/* A stopped queue never notifies nor rearms. */
	assert_false(kvmk_vq_need_notify(&vq));
	assert_false(kvmk_vq_rearm(&vq));
}

/* Zero-length descriptors are allowed (no host address). */
static void test_zero_length(void **state)
{
	set_desc(DESC_GPA, 0, 0, 0, VIRTQ_DESC_F_NEXT, 1);
	set_desc(DESC_GPA, 1, BUF_GPA, 2, VIRTQ_DESC_F_WRITE, 0);
	offer(0);
	assert_int_equal(kvmk_vq_pop(&vq, &chain), 1);
	assert_null(chain.seg[0].hva);
	assert_int_equal(chain.read_len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_simple_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_push, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_loop_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_too_far, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wild_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_in_indirect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_length, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
