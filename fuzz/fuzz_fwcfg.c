// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: guest port accesses to fw_cfg (selector 0x510, data
 * 0x511) of any size (0 to 9 bytes) at any port around it, through the PIO
 * bus, with a configuration from the input. Traps if:
 *  - an access touches bytes past its size;
 *  - a read returns other than a reference model of the device says: the
 *    selected item's next byte (0 past its end or for an unknown key) for
 *    a one-byte data read, 0 for any other claimed read, all ones for an
 *    access the bus gives nobody (outside 0x510-0x511 or across its end);
 *  - the model and the device disagree on the items (signature, ID, RAM
 *    size, CPU counts, maximum RAM derived from the RAM size).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "devices/devices_internal.h"
#include <kvmkit/kvmkit.h>

/* The reference: items as bytes, the selection, the offset. */
struct model {
	uint8_t item[0x20][8];
	uint8_t len[0x20];
	int cur; /* -1: none or unknown */
	uint32_t off;
};

static void item(struct model *m, uint16_t key, uint64_t v, uint8_t len)
{
	for (uint8_t i = 0; i < len; i++)
		m->item[key][i] = (uint8_t)(v >> (8 * i));
	m->len[key] = len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct kvmkit_fwcfg_config cfg;
	struct model m = { .cur = -1 };
	struct kvmkit_fwcfg *fw = NULL;
	struct kvmkit_bus *bus = NULL;
	uint64_t max_ram;

	memset(&cfg, 0, sizeof(cfg));
	cfg.ram_size = fuzz_take(&in, 8);
	cfg.nb_cpus = (uint16_t)fuzz_take(&in, 2);
	cfg.max_cpus = (uint16_t)fuzz_take(&in, 2);
	cfg.max_ram = fuzz_take(&in, 1) & 1 ? fuzz_take(&in, 8) : 0;
	max_ram = cfg.max_ram;
	if (!max_ram)
		max_ram = cfg.ram_size <= KVMKIT_X86_MMIO_HOLE ?
				  cfg.ram_size :
				  (1ull << 32) + (cfg.ram_size - KVMKIT_X86_MMIO_HOLE);
	item(&m, KVMKIT_FWCFG_SIGNATURE, 0x554d4551, 4);
	item(&m, KVMKIT_FWCFG_ID, 1, 4);
	item(&m, KVMKIT_FWCFG_RAM_SIZE, cfg.ram_size, 8);
	item(&m, KVMKIT_FWCFG_NB_CPUS, cfg.nb_cpus, 2);
	item(&m, KVMKIT_FWCFG_MAX_CPUS, cfg.max_cpus ? cfg.max_cpus : cfg.nb_cpus, 2);
	item(&m, KVMKIT_FWCFG_MAX_RAM, max_ram, 8);

	CHECK(kvmkit_bus_create(KVMKIT_BUS_PIO, &bus) == 0);
	CHECK(kvmk_fwcfg_create_on(bus, &cfg, &fw) == 0);
	while (in.n) {
		uint8_t op = (uint8_t)fuzz_take(&in, 1);
		unsigned int sz = op & 0xf; /* 0..15; the bus refuses 0 and > 8 */
		uint64_t port = KVMKIT_FWCFG_PORT - 2 + ((op >> 4) & 7);
		bool write = op & 0x80;
		bool claimed = sz >= 1 && sz <= 2 && port >= KVMKIT_FWCFG_PORT &&
			       port + sz <= KVMKIT_FWCFG_PORT + KVMKIT_FWCFG_LEN;
		uint64_t off = port - KVMKIT_FWCFG_PORT;
		uint8_t buf[16], want[16];

		if (sz > 9)
			sz = 9;
		memset(buf, 0xa5, sizeof(buf));
		if (write) {
			uint64_t v = fuzz_take(&in, 8);

			/* Keys the device knows, mostly. */
			if (!(op & 8))
				v %= 0x20;
			memcpy(buf, &v, 8);
			kvmkit_bus_dispatch(bus, port, buf, sz, true);
			if (claimed && off == 0 && sz == 2) {
				uint16_t key = (uint16_t)v;

				m.cur = key < 0x20 && m.len[key] ? key : -1;
				m.off = 0;
			}
			continue;
		}
		memset(want, 0xa5, sizeof(want));
		if (!claimed) {
			memset(want, 0xff, sz > 8 ? 8 : sz);
		} else {
			memset(want, 0, sz);
			if (off == 1 && sz == 1 && m.cur >= 0) {
				if (m.off < m.len[m.cur])
					want[0] = m.item[m.cur][m.off];
				if (m.off <= m.len[m.cur])
					m.off++;
			}
		}
		kvmkit_bus_dispatch(bus, port, buf, sz, false);
		CHECK(!memcmp(buf, want, sizeof(buf)));
	}
	kvmkit_fwcfg_destroy(fw);
	CHECK(kvmkit_bus_count(bus) == 0);
	kvmkit_bus_destroy(bus);
	return 0;
}
