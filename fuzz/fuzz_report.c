// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: guest port accesses to the report device (values at
 * +0, power-off at +4, count at +8) of any size (0 to 9 bytes) at any port
 * around its 16 bytes, through the PIO bus, with bursts that run past
 * KVMKIT_REPORT_MAX values. Traps if:
 *  - an access touches bytes past its size;
 *  - a read returns other than a reference model says: the low bytes of
 *    the count at +8, 0 elsewhere in the device, all ones for an access the
 *    bus gives nobody;
 *  - a power-off is seen other than for a 4-byte write at +4, or with
 *    another status;
 *  - kvmkit_report_values disagrees with the model (count, kept values,
 *    nothing copied past the caller's @max).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "devices/devices_internal.h"
#include <kvmkit/kvmkit.h>

#define PORT KVMKIT_REPORT_PORT

struct seen {
	unsigned int power_offs;
	uint32_t status;
};

static void power_off(void *ctx, uint32_t status)
{
	struct seen *s = ctx;

	s->power_offs++;
	s->status = status;
}

static uint64_t values[KVMKIT_REPORT_MAX + 2];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t kept[KVMKIT_REPORT_MAX];
	struct fuzz_in in = { data, size };
	struct seen seen = { 0 };
	struct kvmk_report_hooks hooks = { &seen, power_off };
	struct kvmkit_report *rep = NULL;
	struct kvmkit_bus *bus = NULL;
	size_t count = 0, max, n;

	CHECK(kvmkit_bus_create(KVMKIT_BUS_PIO, &bus) == 0);
	CHECK(kvmk_report_create_on(bus, PORT, &hooks, &rep) == 0);
	while (in.n) {
		uint8_t op = (uint8_t)fuzz_take(&in, 1);
		unsigned int sz = op & 0xf;
		uint64_t port = PORT - 4 + ((op >> 4) & 3) * 4 + (fuzz_take(&in, 1) % 16);
		bool claimed =
			sz >= 1 && sz <= 8 && port >= PORT && port + sz <= PORT + KVMKIT_REPORT_LEN;
		uint64_t off = port - PORT;
		uint8_t buf[16], want[16];

		if (sz > 9)
			sz = 9;
		memset(buf, 0xa5, sizeof(buf));
		if (op & 0x80) {
			uint64_t v = fuzz_take(&in, 8);
			unsigned int times = 1, before = seen.power_offs;

			/* Bursts of one value, to run past the kept maximum. */
			if ((op & 0x40) && claimed && off == 0)
				times = (unsigned int)fuzz_take(&in, 2) % (2 * KVMKIT_REPORT_MAX);
			memcpy(buf, &v, 8);
			for (unsigned int t = 0; t < times; t++)
				kvmkit_bus_dispatch(bus, port, buf, sz, true);
			if (claimed && off == 0 && (sz == 4 || sz == 8)) {
				uint64_t kv = sz == 4 ? (uint32_t)v : v;

				for (unsigned int t = 0; t < times; t++, count++)
					if (count < KVMKIT_REPORT_MAX)
						kept[count] = kv;
			}
			if (claimed && off == 4 && sz == 4) {
				CHECK(seen.power_offs == before + 1);
				CHECK(seen.status == (uint32_t)v);
			} else {
				CHECK(seen.power_offs == before);
			}
			continue;
		}
		memset(want, 0xa5, sizeof(want));
		if (!claimed) {
			memset(want, 0xff, sz > 8 ? 8 : sz);
		} else {
			uint64_t c = off == 8 ? count : 0;

			memcpy(want, &c, sz);
		}
		kvmkit_bus_dispatch(bus, port, buf, sz, false);
		CHECK(!memcmp(buf, want, sizeof(buf)));
	}
	/* Reading the values back, into a buffer with a guard past @max. */
	max = count % (KVMKIT_REPORT_MAX + 1);
	memset(values, 0xa5, sizeof(values));
	n = kvmkit_report_values(rep, values, max);
	CHECK(n == count);
	for (size_t i = 0; i < max && i < count && i < KVMKIT_REPORT_MAX; i++)
		CHECK(values[i] == kept[i]);
	for (size_t i = (max < count ? max : count); i < KVMKIT_REPORT_MAX + 2; i++)
		CHECK(values[i] == 0xa5a5a5a5a5a5a5a5ull);
	kvmkit_report_destroy(rep);
	CHECK(kvmkit_bus_count(bus) == 0);
	kvmkit_bus_destroy(bus);
	return 0;
}
