// SPDX-License-Identifier: MIT
/* libFuzzer target: register/unregister/dispatch sequences on a bus. Each
 * device checks that it is only ever called inside its own range. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <kvmkit/kvmkit.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct dev {
	uint64_t len;
};

static void dev_read(void *opaque, uint64_t off, void *buf, unsigned int sz)
{
	const struct dev *d = opaque;

	if (off + sz > d->len || sz == 0 || sz > 8)
		__builtin_trap();
	memset(buf, 0, sz);
}

static void dev_write(void *opaque, uint64_t off, const void *buf, unsigned int sz)
{
	const struct dev *d = opaque;

	if (off + sz > d->len || sz == 0 || sz > 8)
		__builtin_trap();
}

static const struct kvmkit_io_ops ops = { dev_read, dev_write };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmkit_bus *bus;
	struct dev devs[64]; /* one per registration, never changed afterwards */
	unsigned int ndev = 0;
	size_t i = 0;

	if (kvmkit_bus_create(KVMKIT_BUS_MMIO, &bus))
		return 0;
	/* Each 12-byte record: op, size, 2 pad, 8-byte address (small space). */
	while (i + 12 <= size) {
		uint8_t op = data[i], sz = data[i + 1];
		uint64_t addr;
		uint8_t buf[16];

		memcpy(&addr, data + i + 4, 8);
		addr &= 0xffff;
		i += 12;
		switch (op % 4) {
		case 0: {
			struct dev *d;

			if (ndev == 64)
				break;
			d = &devs[ndev];
			d->len = (uint64_t)(sz % 64) + 1;
			if (kvmkit_bus_register(bus, addr, d->len, "f", &ops, d) == 0)
				ndev++;
			break;
		}
		case 1:
			kvmkit_bus_unregister(bus, addr);
			break;
		default:
			kvmkit_bus_dispatch(bus, addr, buf, sz % 10, op & 4);
			break;
		}
	}
	kvmkit_bus_destroy(bus);
	return 0;
}
