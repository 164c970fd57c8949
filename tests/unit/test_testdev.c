// SPDX-License-Identifier: MIT
/* Test device registers on bare buses, with its IRQ and flush hooks stubbed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <kvmkit/kvmkit.h>
#include "devices/devices_internal.h"

struct rec {
	unsigned int nirq;
	uint32_t lines[64];
	bool levels[64];
	unsigned int nflush;
	uint64_t flushed[8];
	int flush_result; /* what the flush hook returns */
};

static void fake_irq(void *ctx, uint32_t line, bool level)
{
	struct rec *r = ctx;

	r->lines[r->nirq] = line;
	r->levels[r->nirq] = level;
	r->nirq++;
}

static int fake_flush(void *ctx, uint64_t gpa)
{
	struct rec *r = ctx;

	if (r->nflush < 8)
		r->flushed[r->nflush] = gpa;
	r->nflush++;
	return r->flush_result;
}

/* Warnings the device logged, and the first and last of them. */
struct warnings {
	unsigned int n;
	char first[256], last[256];
};

static void count_warning(enum kvmkit_log_level level, const char *module, const char *msg,
			  void *opaque)
{
	struct warnings *w = opaque;

	if (level != KVMKIT_LOG_WARN || strcmp(module, "testdev"))
		return;
	if (!w->n++)
		snprintf(w->first, sizeof(w->first), "%s", msg);
	snprintf(w->last, sizeof(w->last), "%s", msg);
}

struct fx {
	struct kvmkit_bus *pio, *mmio;
	struct kvmkit_testdev *dev;
	struct rec rec;
};

static int setup(void **state)
{
	static struct fx f;
	struct kvmk_testdev_hooks hooks = { &f.rec, fake_irq, fake_flush };

	memset(&f, 0, sizeof(f));
	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &f.pio), 0);
	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_MMIO, &f.mmio), 0);
	assert_int_equal(kvmk_testdev_create_on(f.pio, f.mmio, &hooks, &f.dev), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kvmkit_testdev_destroy(f->dev);
	assert_int_equal(kvmkit_bus_count(f->pio), 0);
	assert_int_equal(kvmkit_bus_count(f->mmio), 0);
	kvmkit_bus_destroy(f->pio);
	kvmkit_bus_destroy(f->mmio);
	return 0;
}

static uint32_t in(struct fx *f, uint16_t port, unsigned int size)
{
	uint32_t v = 0xdeadbeef;

	assert_true(kvmkit_bus_dispatch(f->pio, port, &v, size, false));
	return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

static void out(struct fx *f, uint16_t port, uint32_t v, unsigned int size)
{
	assert_true(kvmkit_bus_dispatch(f->pio, port, &v, size, true));
}

static void test_scratch_lanes(void **state)
{
	struct fx *f = *state;

	assert_int_equal(in(f, 0xe0, 4), 0);
	out(f, 0xe0, 0x11223344, 4);
	assert_int_equal(in(f, 0xe0, 4), 0x11223344);
	assert_int_equal(in(f, 0xe1, 1), 0x33);
	assert_int_equal(in(f, 0xe2, 2), 0x1122);
	out(f, 0xe1, 0xaa, 1); /* byte 1 only */
	assert_int_equal(in(f, 0xe0, 4), 0x1122aa44);
	out(f, 0xe2, 0xbbcc, 2); /* bytes 2 and 3 */
	assert_int_equal(in(f, 0xe0, 4), 0xbbccaa44);
	out(f, 0xe3, 0x55667788, 4); /* byte 3 only; the rest falls off */
	assert_int_equal(in(f, 0xe0, 4), 0x88ccaa44);
	assert_int_equal(in(f, 0xe3, 4), 0x88); /* bytes past 3 read 0 */
	/* The second register is independent. */
	assert_int_equal(in(f, 0xe8, 4), 0);
	out(f, 0xe8, 0xcafef00d, 4);
	out(f, 0xea, 0x12, 1);
	assert_int_equal(in(f, 0xe8, 4), 0xca12f00d);
	assert_int_equal(in(f, 0xe0, 4), 0x88ccaa44);
	assert_int_equal(f->rec.nflush, 0);
}

static void test_flush(void **state)
{
	struct fx *f = *state;

	out(f, 0xe4, 0x00123456, 4);
	assert_int_equal(f->rec.nflush, 1);
	assert_int_equal(f->rec.flushed[0], 0x123000);
	out(f, 0xe4, 0x1, 1); /* only 32-bit writes count */
	out(f, 0xe5, 0x1, 2);
	assert_int_equal(f->rec.nflush, 1);
	assert_int_equal(in(f, 0xe4, 4), 0);
}

/* A guest may flush as fast as it can exit: values outside RAM (-EFAULT)
 * are ignored without a word, and failures give one warning, then at most
 * one line a second, then the total when the device goes. */
static void test_flush_failures_throttled(void **state)
{
	struct fx *f = *state;
	struct warnings w = { 0 };
	struct timespec t0, t1;
	double secs;

	kvmkit_log_set_sink(count_warning, &w);
	f->rec.flush_result = -EFAULT;
	for (unsigned int i = 0; i < 1000; i++)
		out(f, 0xe4, i * 0x1000u, 4);
	assert_int_equal(f->rec.nflush, 1000);
	assert_int_equal(w.n, 0);

	f->rec.flush_result = -ENOMEM;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned int i = 0; i < 10000; i++)
		out(f, 0xe4, 0x400000u + i * 0x1000u, 4);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(f->rec.nflush, 11000);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* The first failure names its page and cause. */
	assert_true(w.n >= 1);
	assert_non_null(strstr(w.first, "page flush of 0x400000 failed"));
	assert_non_null(strstr(w.first, strerror(ENOMEM)));
	/* Then at most one line per second elapsed. */
	assert_true(w.n <= 1 + (unsigned int)secs);
	kvmkit_testdev_destroy(f->dev);
	f->dev = NULL;
	kvmkit_log_set_sink(NULL, NULL);
	/* The last line gives the total. */
	assert_true(w.n <= 2 + (unsigned int)secs);
	assert_non_null(strstr(w.last, "(10000 in all)"));
}

static void test_irq_ports(void **state)
{
	struct fx *f = *state;

	out(f, 0x2000, 1, 1);
	out(f, 0x2000 + 23, 1, 1);
	out(f, 0x2000 + 23, 0, 1);
	out(f, 0x2005, 0x80, 1); /* non-zero raises */
	out(f, 0x2004, 1, 2); /* not a byte write: ignored */
	assert_int_equal(f->rec.nirq, 4);
	assert_int_equal(f->rec.lines[0], 0);
	assert_true(f->rec.levels[0]);
	assert_int_equal(f->rec.lines[1], 23);
	assert_true(f->rec.levels[1]);
	assert_int_equal(f->rec.lines[2], 23);
	assert_false(f->rec.levels[2]);
	assert_int_equal(f->rec.lines[3], 5);
	/* Line 24 is not a port of the device. */
	assert_null(kvmkit_bus_lookup(f->pio, 0x2000 + 24));
	assert_int_equal(in(f, 0x2003, 1), 0);
}

static void test_mmio_scratch(void **state)
{
	struct fx *f = *state;
	uint64_t v = 0x0102030405060708ull, r = 0;
	uint8_t b = 0;

	assert_true(kvmkit_bus_dispatch(f->mmio, KVMKIT_TESTDEV_MMIO, &r, 8, false));
	assert_int_equal(r, 0);
	assert_true(kvmkit_bus_dispatch(f->mmio, KVMKIT_TESTDEV_MMIO + 0x100, &v, 8, true));
	assert_true(kvmkit_bus_dispatch(f->mmio, KVMKIT_TESTDEV_MMIO + 0x101, &b, 1, false));
	assert_int_equal(b, 0x07);
	r = 0;
	assert_true(kvmkit_bus_dispatch(f->mmio, KVMKIT_TESTDEV_MMIO + 0x104, &r, 4, false));
	assert_int_equal(r, 0x01020304);
	/* The last 8 bytes work; an access crossing the end is not taken. */
	assert_true(kvmkit_bus_dispatch(f->mmio, KVMKIT_TESTDEV_MMIO + 0xfff8, &v, 8, true));
	r = 0;
	assert_true(kvmkit_bus_dispatch(f->mmio, KVMKIT_TESTDEV_MMIO + 0xfff8, &r, 8, false));
	assert_int_equal(r, v);
	assert_false(kvmkit_bus_dispatch(f->mmio, KVMKIT_TESTDEV_MMIO + 0xfffc, &v, 8, true));
	assert_false(kvmkit_bus_dispatch(f->mmio, KVMKIT_TESTDEV_MMIO + 0x10000, &v, 1, true));
}

static void test_no_hooks(void **state)
{
	struct kvmkit_bus *pio, *mmio;
	struct kvmkit_testdev *dev;
	uint32_t v = 1;

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &pio), 0);
	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_MMIO, &mmio), 0);
	assert_int_equal(kvmk_testdev_create_on(pio, mmio, NULL, &dev), 0);
	assert_true(kvmkit_bus_dispatch(pio, 0x2001, &v, 1, true));
	assert_true(kvmkit_bus_dispatch(pio, 0xe4, &v, 4, true));
	kvmkit_testdev_destroy(dev);
	assert_int_equal(kvmkit_bus_count(pio), 0);
	kvmkit_bus_destroy(pio);
	kvmkit_bus_destroy(mmio);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scratch_lanes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_failures_throttled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq_ports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio_scratch, setup, teardown),
		cmocka_unit_test(test_no_hooks),
	};

	return cmocka_run_group_tests_name("testdev", tests, NULL, NULL);
}
