// SPDX-License-Identifier: MIT
/* The userspace 8254 model against the 82C54 data sheet's modes, access
 * rules and read-back command, with a fake clock (src/irq/pit.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/pit.h"

struct clk {
	uint64_t ns;
	uint64_t deadline;
	unsigned int arms;
};

static uint64_t clk_now(void *opaque)
{
	return ((struct clk *)opaque)->ns;
}

static void clk_arm(void *opaque, uint64_t deadline)
{
	struct clk *c = opaque;

	c->deadline = deadline;
	c->arms++;
}

/* Nanoseconds of @ticks PIT clocks, rounded up. */
static uint64_t ticks_ns(uint64_t ticks)
{
	return (ticks * 1000000000ull + KVMK_PIT_HZ - 1) / KVMK_PIT_HZ;
}

static struct kvmk_pit *mk(struct clk *c)
{
	struct kvmk_pit_config cfg = { .now_ns = clk_now, .arm = clk_arm, .opaque = c };
	struct kvmk_pit *pit = NULL;

	memset(c, 0, sizeof(*c));
	c->ns = 1000000000ull; /* not at 0: 0 means "no timer" */
	assert_int_equal(kvmk_pit_create(&cfg, &pit), 0);
	return pit;
}

static void wr(struct kvmk_pit *p, unsigned int off, uint8_t v)
{
	kvmk_pit_pio_write(p, off, &v, 1);
}

static uint8_t rd(struct kvmk_pit *p, unsigned int off)
{
	uint8_t v = 0;

	kvmk_pit_pio_read(p, off, &v, 1);
	return v;
}

static uint16_t rd16(struct kvmk_pit *p, unsigned int off)
{
	uint16_t lo = rd(p, off);

	return (uint16_t)(lo | rd(p, off) << 8);
}

/* Mode 2, LSB then MSB: one rising edge per period, counts readable live. */
static void test_mode2_periodic(void **state)
{
	struct clk c;
	struct kvmk_pit *p = mk(&c);
	uint64_t t0;

	wr(p, 3, 0x34); /* counter 0, LSB/MSB, mode 2, binary */
	assert_int_equal(c.deadline, 0); /* no count yet: no timer */
	wr(p, 0, 1193 & 0xff);
	assert_int_equal(c.deadline, 0);
	wr(p, 0, 1193 >> 8);
	t0 = c.ns;
	assert_int_equal(c.deadline, t0 + ticks_ns(1193));
	/* Halfway: the count is about 1193 / 2. */
	c.ns = t0 + ticks_ns(596);
	assert_int_equal(rd16(p, 0), 1193 - 596);
	/* Not yet due: no interrupt. */
	assert_false(kvmk_pit_timer(p));
	c.ns = c.deadline;
	assert_true(kvmk_pit_timer(p));
	assert_int_equal(c.deadline, t0 + ticks_ns(2 * 1193));
	/* Called again at the same instant: the edge was already reported. */
	assert_false(kvmk_pit_timer(p));
	/* Late by three periods: one interrupt, no reinjection. */
	c.ns = t0 + ticks_ns(5 * 1193) + 10;
	assert_true(kvmk_pit_timer(p));
	assert_false(kvmk_pit_timer(p));
	assert_int_equal(c.deadline, t0 + ticks_ns(6 * 1193));
	kvmk_pit_destroy(p);
}

/* Mode 0: OUT low until terminal count, one interrupt, then nothing. */
static void test_mode0_one_shot(void **state)
{
	struct clk c;
	struct kvmk_pit *p = mk(&c);
	uint32_t count;
	bool out;

	wr(p, 3, 0x30); /* counter 0, LSB/MSB, mode 0 */
	assert_int_equal(kvmk_pit_peek(p, 0, &count, &out), 0);
	assert_false(out); /* mode 0: OUT low after the control word */
	wr(p, 0, 100);
	wr(p, 0, 0);
	c.ns += ticks_ns(99);
	assert_int_equal(kvmk_pit_peek(p, 0, &count, &out), 0);
	assert_int_equal(count, 1);
	assert_false(out);
	assert_false(kvmk_pit_timer(p));
	c.ns = c.deadline;
	assert_true(kvmk_pit_timer(p));
	assert_int_equal(c.deadline, 0); /* one shot: no more timer */
	assert_int_equal(kvmk_pit_peek(p, 0, &count, &out), 0);
	assert_true(out);
	/* The counter wraps on: 100 - 101 = 0xffff. */
	c.ns += ticks_ns(1);
	assert_int_equal(kvmk_pit_peek(p, 0, &count, &out), 0);
	assert_int_equal(count, 0xffff);
	c.ns += 1000000000ull;
	assert_false(kvmk_pit_timer(p));
	kvmk_pit_destroy(p);
}

/* Count latch: the value at the latch, however long the reads take; a
 * second latch before the read is ignored. LSB-only and MSB-only modes. */
static void test_latch_and_access_modes(void **state)
{
	struct clk c;
	struct kvmk_pit *p = mk(&c);

	wr(p, 3, 0x74); /* counter 1, LSB/MSB, mode 2 */
	wr(p, 1, 0x00);
	wr(p, 1, 0x10); /* 0x1000 */
	c.ns += ticks_ns(0x10);
	wr(p, 3, 0x40); /* latch counter 1 */
	c.ns += ticks_ns(0x100);
	wr(p, 3, 0x40); /* ignored: already latched */
	assert_int_equal(rd16(p, 1), 0x1000 - 0x10);
	/* Unlatched again: live value. */
	assert_int_equal(rd16(p, 1), 0x1000 - 0x110);
	/* MSB only: a count of 0x2000 from one byte, reads give the MSB. */
	wr(p, 3, 0xa4); /* counter 2, MSB, mode 2 */
	wr(p, 2, 0x20);
	assert_int_equal(rd(p, 2), 0x20); /* gate low: not counting */
	assert_int_equal(rd(p, 2), 0x20);
	/* LSB only. */
	wr(p, 3, 0x54); /* counter 1, LSB, mode 2 */
	wr(p, 1, 0x80);
	c.ns += ticks_ns(0x10);
	assert_int_equal(rd(p, 1), 0x70);
	/* A count of 0 is 65536 (reads as 0 before the first clock). */
	wr(p, 3, 0x34);
	wr(p, 0, 0);
	wr(p, 0, 0);
	assert_int_equal(rd16(p, 0), 0);
	c.ns += ticks_ns(1);
	assert_int_equal(rd16(p, 0), 0xffff);
	kvmk_pit_destroy(p);
}

/* Read-back: status then count of the selected counters. */
static void test_read_back(void **state)
{
	struct clk c;
	struct kvmk_pit *p = mk(&c);

	wr(p, 3, 0x36); /* counter 0, LSB/MSB, mode 3 */
	/* Status before a count: null count set, mode 3, access 3. */
	wr(p, 3, 0xe2); /* read-back status of counter 0 */
	assert_int_equal(rd(p, 0), 0x80 | 0x40 | 0x30 | 0x06);
	wr(p, 0, 0x00);
	wr(p, 0, 0x01); /* 256 */
	c.ns += ticks_ns(10);
	wr(p, 3, 0xc2); /* latch count and status of counter 0 */
	c.ns += ticks_ns(50);
	assert_int_equal(rd(p, 0), 0x80 | 0x30 | 0x06); /* OUT high, loaded */
	assert_int_equal(rd16(p, 0), (256 - 20) & ~1);
	/* Mode 3 square wave: OUT low in the second half. */
	c.ns += ticks_ns(100);
	wr(p, 3, 0xe2);
	assert_int_equal(rd(p, 0) & 0x80, 0);
	/* Modes 6 and 7 are 2 and 3. */
	wr(p, 3, 0x3e);
	wr(p, 3, 0xe2);
	assert_int_equal((rd(p, 0) >> 1) & 7, 3);
	kvmk_pit_destroy(p);
}

/* Port B: counter 2's gate and OUT (the way Linux calibrates the TSC). */
static void test_port_b_counter2(void **state)
{
	struct clk c;
	struct kvmk_pit *p = mk(&c);
	uint8_t v = 0;

	wr(p, 3, 0xb0); /* counter 2, LSB/MSB, mode 0 */
	wr(p, 2, 0xe8);
	wr(p, 2, 0x03); /* 1000 */
	c.ns += ticks_ns(5000);
	kvmk_pit_portb_read(p, 0, &v, 1);
	assert_int_equal(v & 0x21, 0); /* gate low: not counting, OUT low */
	v = 1;
	kvmk_pit_portb_write(p, 0, &v, 1);
	c.ns += ticks_ns(999);
	kvmk_pit_portb_read(p, 0, &v, 1);
	assert_int_equal(v & 0x21, 0x01);
	c.ns += ticks_ns(1);
	kvmk_pit_portb_read(p, 0, &v, 1);
	assert_int_equal(v & 0x21, 0x21);
	/* The refresh bit toggles with time. */
	kvmk_pit_portb_read(p, 0, &v, 1);
	c.ns += 15085;
	{
		uint8_t w = 0;

		kvmk_pit_portb_read(p, 0, &w, 1);
		assert_int_not_equal(v & 0x10, w & 0x10);
	}
	/* Counter 2 never arms the IRQ 0 timer. */
	assert_int_equal(c.deadline, 0);
	kvmk_pit_destroy(p);
}

/* A hostile guest: wrong sizes and offsets are unclaimed cycles, touching
 * no more than @size bytes; a 1 kHz+ storm is clamped to 200 us. */
static void test_hostile_access(void **state)
{
	struct clk c;
	struct kvmk_pit *p = mk(&c);
	uint8_t buf[8];
	uint32_t v32 = 0x34;
	uint64_t last;

	memset(buf, 0x11, sizeof(buf));
	kvmk_pit_pio_read(p, 0, buf, 4);
	assert_memory_equal(buf, "\xff\xff\xff\xff\x11\x11\x11\x11", 8);
	memset(buf, 0x11, sizeof(buf));
	kvmk_pit_pio_read(p, 3, buf, 1); /* control word is write-only */
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0x11);
	kvmk_pit_pio_read(p, 7, buf, 1);
	assert_int_equal(buf[0], 0xff);
	kvmk_pit_pio_write(p, 3, &v32, 4); /* ignored */
	kvmk_pit_pio_write(p, 9, &v32, 1); /* ignored */
	assert_int_equal(c.arms, 0);
	kvmk_pit_portb_read(p, 1, buf, 1);
	assert_int_equal(buf[0], 0xff);
	/* Period 1 in mode 2: interrupts no closer than 200 us. */
	wr(p, 3, 0x34);
	wr(p, 0, 1);
	wr(p, 0, 0);
	c.ns = c.deadline;
	assert_true(kvmk_pit_timer(p));
	last = c.ns;
	assert_true(c.deadline >= last + 200000);
	c.ns = last + 1000;
	assert_false(kvmk_pit_timer(p));
	c.ns = c.deadline;
	assert_true(kvmk_pit_timer(p));
	assert_int_equal(kvmk_pit_peek(p, 3, &v32, &(bool){ false }), -EINVAL);
	kvmk_pit_destroy(p);
}

/* Reprogramming counter 0 with a control word stops its timer. */
static void test_control_word_stops(void **state)
{
	struct clk c;
	struct kvmk_pit *p = mk(&c);

	wr(p, 3, 0x34);
	wr(p, 0, 0x00);
	wr(p, 0, 0x10);
	assert_true(c.deadline != 0);
	wr(p, 3, 0x34);
	assert_int_equal(c.deadline, 0);
	c.ns += 1000000000ull;
	assert_false(kvmk_pit_timer(p));
	kvmk_pit_destroy(p);
}

/* Save on one clock, restore on another: the count goes on from where it
 * was, the next interrupt is one period after the last; bad states are
 * refused. */
static void test_save_restore(void **state)
{
	struct clk c, d;
	struct kvmk_pit *p = mk(&c), *q = mk(&d);
	struct kvmk_pit_state st;
	uint32_t count;
	bool out;

	wr(p, 3, 0x34);
	wr(p, 0, 1000 & 0xff);
	wr(p, 0, 1000 >> 8);
	c.ns += ticks_ns(2300);
	kvmk_pit_save(p, &st);
	assert_int_equal(st.c[0].elapsed, 2300);
	d.ns = 77000000000ull; /* another host's clock */
	assert_int_equal(kvmk_pit_restore(q, &st), 0);
	assert_int_equal(kvmk_pit_peek(q, 0, &count, &out), 0);
	assert_int_equal(count, 1000 - 300);
	/* The next edge is at 3000 clocks of progress: 700 from now. */
	assert_true(d.deadline >= d.ns + ticks_ns(699) && d.deadline <= d.ns + ticks_ns(701));
	/* A latch in progress survives. */
	wr(p, 3, 0x00);
	wr(p, 3, 0x00);
	kvmk_pit_save(p, &st);
	assert_int_equal(kvmk_pit_restore(q, &st), 0);
	c.ns += ticks_ns(100);
	d.ns += ticks_ns(100);
	assert_int_equal(rd16(q, 0), rd16(p, 0));
	st.c[0].mode = 6;
	assert_int_equal(kvmk_pit_restore(q, &st), -EINVAL);
	st.c[0].mode = 2;
	st.c[1].flags &= (uint8_t)~KVMK_PIT_F_GATE; /* counter 1's gate is tied high */
	assert_int_equal(kvmk_pit_restore(q, &st), -EINVAL);
	kvmk_pit_destroy(p);
	kvmk_pit_destroy(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode2_periodic),
		cmocka_unit_test(test_mode0_one_shot),
		cmocka_unit_test(test_latch_and_access_modes),
		cmocka_unit_test(test_read_back),
		cmocka_unit_test(test_port_b_counter2),
		cmocka_unit_test(test_hostile_access),
		cmocka_unit_test(test_control_word_stops),
		cmocka_unit_test(test_save_restore),
	};

	return cmocka_run_group_tests_name("pit", tests, NULL, NULL);
}
