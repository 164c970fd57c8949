// SPDX-License-Identifier: MIT
/* fw_cfg legacy I/O protocol on a bare PIO bus (no KVM). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <kvmkit/kvmkit.h>
#include "devices/devices_internal.h"

struct fx {
	struct kvmkit_bus *bus;
	struct kvmkit_fwcfg *dev;
};

static int setup(void **state)
{
	static struct fx f;
	struct kvmkit_fwcfg_config cfg = { .ram_size = 5ull << 30, .nb_cpus = 3, .max_cpus = 8 };

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &f.bus), 0);
	assert_int_equal(kvmk_fwcfg_create_on(f.bus, &cfg, &f.dev), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	kvmkit_fwcfg_destroy(f->dev);
	assert_int_equal(kvmkit_bus_count(f->bus), 0);
	kvmkit_bus_destroy(f->bus);
	return 0;
}

static void sel(struct fx *f, uint16_t key)
{
	assert_true(kvmkit_bus_dispatch(f->bus, 0x510, &key, 2, true));
}

static uint8_t rd(struct fx *f)
{
	uint8_t v = 0xaa;

	assert_true(kvmkit_bus_dispatch(f->bus, 0x511, &v, 1, false));
	return v;
}

static uint64_t rd_n(struct fx *f, unsigned int n)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)rd(f) << (8 * i);
	return v;
}

static void test_signature_and_id(void **state)
{
	struct fx *f = *state;
	char sig[5] = "";

	sel(f, 0x0000);
	for (int i = 0; i < 4; i++)
		sig[i] = (char)rd(f);
	assert_string_equal(sig, "QEMU");
	/* Past the end: zeros, for as long as the guest reads. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(rd(f), 0);
	/* Re-selecting starts over. */
	sel(f, 0x0000);
	assert_int_equal(rd(f), 'Q');
	sel(f, 0x0001);
	assert_int_equal(rd_n(f, 4), 1);
	assert_int_equal(rd(f), 0);
}

static void test_values(void **state)
{
	struct fx *f = *state;

	sel(f, KVMKIT_FWCFG_RAM_SIZE);
	assert_int_equal(rd_n(f, 8), 5ull << 30);
	sel(f, KVMKIT_FWCFG_NB_CPUS);
	assert_int_equal(rd_n(f, 2), 3);
	assert_int_equal(rd(f), 0);
	sel(f, KVMKIT_FWCFG_MAX_CPUS);
	assert_int_equal(rd_n(f, 2), 8);
	sel(f, KVMKIT_FWCFG_MAX_RAM);
	assert_int_equal(rd_n(f, 8), (1ull << 32) + (2ull << 30));
}

static void test_unknown_and_sizes(void **state)
{
	struct fx *f = *state;
	uint32_t v32 = KVMKIT_FWCFG_NB_CPUS;
	uint8_t v8 = KVMKIT_FWCFG_SIGNATURE;
	uint16_t v16 = 0;

	sel(f, 0x0002); /* UUID: not provided */
	assert_int_equal(rd_n(f, 8), 0);
	sel(f, 0x4000 | KVMKIT_FWCFG_SIGNATURE); /* write channel: nothing */
	assert_int_equal(rd(f), 0);
	sel(f, 0x8000);
	assert_int_equal(rd(f), 0);

	/* A 1-byte selector write is ignored: NB_CPUS stays selected. */
	sel(f, KVMKIT_FWCFG_NB_CPUS);
	assert_true(kvmkit_bus_dispatch(f->bus, 0x510, &v8, 1, true));
	assert_int_equal(rd(f), 3);
	/* A 4-byte write at 0x510 does not fit the 2-port range. */
	sel(f, KVMKIT_FWCFG_SIGNATURE);
	assert_false(kvmkit_bus_dispatch(f->bus, 0x510, &v32, 4, true));
	assert_int_equal(rd(f), 'Q');
	/* Data-port writes are dropped and do not advance the offset. */
	assert_true(kvmkit_bus_dispatch(f->bus, 0x511, &v8, 1, true));
	assert_int_equal(rd(f), 'E');
	/* A 2-byte read at 0x510 reads 0 and does not step. */
	v16 = 0xffff;
	assert_true(kvmkit_bus_dispatch(f->bus, 0x510, &v16, 2, false));
	assert_int_equal(v16, 0);
	assert_int_equal(rd(f), 'M');
}

static void test_defaults(void **state)
{
	struct kvmkit_bus *bus;
	struct kvmkit_fwcfg *dev, *dup;
	struct kvmkit_fwcfg_config cfg = { .ram_size = 1ull << 30, .nb_cpus = 2 };
	struct fx f;

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &bus), 0);
	assert_int_equal(kvmk_fwcfg_create_on(bus, &cfg, &dev), 0);
	assert_int_equal(kvmk_fwcfg_create_on(bus, &cfg, &dup), -EEXIST);
	f.bus = bus;
	f.dev = dev;
	sel(&f, KVMKIT_FWCFG_MAX_CPUS);
	assert_int_equal(rd_n(&f, 2), 2);
	sel(&f, KVMKIT_FWCFG_MAX_RAM);
	assert_int_equal(rd_n(&f, 8), 1ull << 30);
	kvmkit_fwcfg_destroy(dev);
	kvmkit_bus_destroy(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signature_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_and_sizes, setup, teardown),
		cmocka_unit_test(test_defaults),
	};

	return cmocka_run_group_tests_name("fwcfg", tests, NULL, NULL);
}
