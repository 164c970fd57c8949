// SPDX-License-Identifier: MIT
/* Bus registration, overlap rejection, lookup and dispatch. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <kvmkit/kvmkit.h>

struct rec {
	unsigned int reads, writes;
	uint64_t last_off;
	unsigned int last_size;
	uint64_t last_data;
	struct kvmkit_bus *bus; /* for the re-entrant handler */
};

static void rec_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	struct rec *r = opaque;
	uint64_t v = 0x1122334455667788ull + off;

	r->reads++;
	r->last_off = off;
	r->last_size = size;
	memcpy(data, &v, size);
}

static void rec_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct rec *r = opaque;

	r->writes++;
	r->last_off = off;
	r->last_size = size;
	r->last_data = 0;
	memcpy(&r->last_data, data, size);
}

static const struct kvmkit_io_ops rec_ops = { .read = rec_read, .write = rec_write };

static void test_register_and_overlap(void **state)
{
	struct kvmkit_bus *bus;
	struct rec a = { 0 }, b = { 0 };

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_MMIO, &bus), 0);
	assert_int_equal(kvmkit_bus_register(bus, 0x1000, 0x100, "a", &rec_ops, &a), 0);
	/* Overlaps at the start, the end, inside and around are rejected. */
	assert_int_equal(kvmkit_bus_register(bus, 0xf80, 0x100, "b", &rec_ops, &b), -EEXIST);
	assert_non_null(strstr(kvmkit_strerror(), "overlaps"));
	assert_non_null(strstr(kvmkit_strerror(), "a 0x1000"));
	assert_int_equal(kvmkit_bus_register(bus, 0x10ff, 0x10, "b", &rec_ops, &b), -EEXIST);
	assert_int_equal(kvmkit_bus_register(bus, 0x1010, 0x10, "b", &rec_ops, &b), -EEXIST);
	assert_int_equal(kvmkit_bus_register(bus, 0x0, 0x10000, "b", &rec_ops, &b), -EEXIST);
	/* Adjacent ranges are fine. */
	assert_int_equal(kvmkit_bus_register(bus, 0x1100, 0x100, "b", &rec_ops, &b), 0);
	assert_int_equal(kvmkit_bus_register(bus, 0xf00, 0x100, "c", &rec_ops, &b), 0);
	assert_int_equal(kvmkit_bus_count(bus), 3);
	/* Bad parameters. */
	assert_int_equal(kvmkit_bus_register(bus, 0x5000, 0, "z", &rec_ops, &b), -EINVAL);
	assert_int_equal(kvmkit_bus_register(bus, UINT64_MAX - 4, 16, "z", &rec_ops, &b), -EINVAL);
	assert_int_equal(kvmkit_bus_register(bus, 0x5000, 4, "z", NULL, &b), -EINVAL);
	/* The last byte of the address space can be registered. */
	assert_int_equal(kvmkit_bus_register(bus, UINT64_MAX - 15, 16, "top", &rec_ops, &b), 0);
	assert_string_equal(kvmkit_bus_lookup(bus, UINT64_MAX), "top");
	kvmkit_bus_destroy(bus);
}

static void test_pio_limits(void **state)
{
	struct kvmkit_bus *bus;
	struct rec a = { 0 };

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &bus), 0);
	assert_int_equal(kvmkit_bus_register(bus, 0xfff8, 8, "ok", &rec_ops, &a), 0);
	assert_int_equal(kvmkit_bus_register(bus, 0xfffc, 8, "bad", &rec_ops, &a), -EINVAL);
	assert_int_equal(kvmkit_bus_register(bus, 0x10000, 1, "bad", &rec_ops, &a), -EINVAL);
	kvmkit_bus_destroy(bus);
}

static void test_dispatch(void **state)
{
	struct kvmkit_bus *bus;
	struct rec a = { 0 }, b = { 0 };
	uint64_t v;

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_MMIO, &bus), 0);
	assert_int_equal(kvmkit_bus_register(bus, 0xd0000000, 0x1000, "a", &rec_ops, &a), 0);
	assert_int_equal(kvmkit_bus_register(bus, 0xd0001000, 0x10, "b", &rec_ops, &b), 0);

	for (unsigned int size = 1; size <= 8; size *= 2) {
		uint64_t data = 0xa5a5a5a5a5a5a5a5ull;

		assert_true(kvmkit_bus_dispatch(bus, 0xd0000010, &data, size, true));
		assert_int_equal(a.last_off, 0x10);
		assert_int_equal(a.last_size, size);
		assert_int_equal(a.last_data, size == 8 ? data : data & ((1ull << (8 * size)) - 1));
	}
	assert_int_equal(a.writes, 4);
	v = 0;
	assert_true(kvmkit_bus_dispatch(bus, 0xd0001004, &v, 4, false));
	assert_int_equal(b.reads, 1);
	assert_int_equal(b.last_off, 4);
	assert_int_equal(v, (0x1122334455667788ull + 4) & 0xffffffff);

	/* Unclaimed reads give all ones and touch no device. */
	v = 0;
	assert_false(kvmkit_bus_dispatch(bus, 0xc0000000, &v, 4, false));
	assert_int_equal(v, 0xffffffff);
	/* An access crossing the end of a range is not delivered. */
	v = 0;
	assert_false(kvmkit_bus_dispatch(bus, 0xd000100c, &v, 8, false));
	assert_int_equal(v, UINT64_MAX);
	assert_int_equal(b.reads, 1);
	/* Oversized accesses are refused. */
	assert_false(kvmkit_bus_dispatch(bus, 0xd0000000, &v, 16, true));
	assert_int_equal(a.writes, 4);

	assert_string_equal(kvmkit_bus_lookup(bus, 0xd0000fff), "a");
	assert_null(kvmkit_bus_lookup(bus, 0xd0001010));
	kvmkit_bus_destroy(bus);
}

static void test_unregister(void **state)
{
	struct kvmkit_bus *bus;
	struct rec a = { 0 };
	uint32_t v = 1;

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &bus), 0);
	assert_int_equal(kvmkit_bus_register(bus, 0x3f8, 8, "uart", &rec_ops, &a), 0);
	assert_int_equal(kvmkit_bus_unregister(bus, 0x3f9), -ENOENT);
	assert_int_equal(kvmkit_bus_unregister(bus, 0x3f8), 0);
	assert_false(kvmkit_bus_dispatch(bus, 0x3f8, &v, 1, true));
	assert_int_equal(a.writes, 0);
	/* The range can be taken again. */
	assert_int_equal(kvmkit_bus_register(bus, 0x3f8, 8, "uart", &rec_ops, &a), 0);
	kvmkit_bus_destroy(bus);
}

/* A handler that registers a device on its own bus must not deadlock. */
static void reentrant_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct rec *r = opaque;

	r->writes++;
	kvmkit_bus_register(r->bus, 0x900, 4, "late", &rec_ops, r);
}

static const struct kvmkit_io_ops reentrant_ops = { .write = reentrant_write };

static void test_reentrant(void **state)
{
	struct kvmkit_bus *bus;
	struct rec a = { 0 };
	uint8_t v = 0;

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &bus), 0);
	a.bus = bus;
	assert_int_equal(kvmkit_bus_register(bus, 0x800, 4, "ctl", &reentrant_ops, &a), 0);
	assert_true(kvmkit_bus_dispatch(bus, 0x800, &v, 1, true));
	assert_string_equal(kvmkit_bus_lookup(bus, 0x902), "late");
	/* A write-only device reads as all ones. */
	uint32_t w = 0;
	assert_true(kvmkit_bus_dispatch(bus, 0x800, &w, 4, false));
	assert_int_equal(w, 0xffffffff);
	kvmkit_bus_destroy(bus);
}

/* The name is copied at registration (up to 31 characters) and what
 * kvmkit_bus_lookup() returns stays readable until the bus is destroyed,
 * even after the range is unregistered (ASan checks the read). */
static void test_lookup_name_lifetime(void **state)
{
	struct kvmkit_bus *bus;
	struct rec a = { 0 };
	char name[64];
	const char *got;

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_MMIO, &bus), 0);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	assert_int_equal(kvmkit_bus_register(bus, 0x1000, 0x100, name, &rec_ops, &a), 0);
	memset(name, 'x', 8);
	got = kvmkit_bus_lookup(bus, 0x1010);
	assert_non_null(got);
	assert_int_equal(strlen(got), 31);
	assert_int_equal(strspn(got, "n"), 31);
	assert_int_equal(kvmkit_bus_unregister(bus, 0x1000), 0);
	assert_null(kvmkit_bus_lookup(bus, 0x1010));
	assert_int_equal(strspn(got, "n"), 31);
	kvmkit_bus_destroy(bus);
}

/* Many ranges: lookup must find each one (binary search over a sorted table). */
static void test_many(void **state)
{
	struct kvmkit_bus *bus;
	struct rec a = { 0 };

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_MMIO, &bus), 0);
	/* Register in a scrambled order. */
	for (unsigned int i = 0; i < 200; i++) {
		unsigned int k = (i * 73) % 200;

		assert_int_equal(kvmkit_bus_register(bus, 0x10000 + k * 0x100, 0x80, "dev", &rec_ops, &a), 0);
	}
	for (unsigned int k = 0; k < 200; k++) {
		assert_non_null(kvmkit_bus_lookup(bus, 0x10000 + k * 0x100 + 0x7f));
		assert_null(kvmkit_bus_lookup(bus, 0x10000 + k * 0x100 + 0x80));
	}
	kvmkit_bus_destroy(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_and_overlap), cmocka_unit_test(test_pio_limits),
		cmocka_unit_test(test_dispatch),	     cmocka_unit_test(test_unregister),
		cmocka_unit_test(test_reentrant),	     cmocka_unit_test(test_many),
		cmocka_unit_test(test_lookup_name_lifetime),
	};

	return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
