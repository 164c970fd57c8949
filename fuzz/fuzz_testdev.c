// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: guest accesses of any size to the test device's ports
 * (scratch 0xe0/0xe8, flush 0xe4, IRQ lines 0x2000 + n) and its MMIO
 * scratch, on bare buses with stub hooks whose flush result the input picks
 * (done, not RAM, failed). A model written from the register description
 * in kvmkit/devices.h predicts every read. Traps if:
 *  - a read differs from the model, or touches bytes past its size;
 *  - the flush hook is called other than for a 4-byte write at 0xe4, or
 *    with a value other than its page;
 *  - the IRQ hook is called other than for a 1-byte write at 0x2000 + n,
 *    n < 24, or with another level than "byte != 0";
 *  - the device warns about flushes that did not fail, or more than once
 *    a second (plus one) for those that did, or keeps quiet about them.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include <kvmkit/kvmkit.h>
#include "devices/devices_internal.h"

#define PORTS 0xe0
#define PORTS_LEN 12

static struct {
	/* What the next hook call may be, set before each access. */
	bool flush_ok, irq_ok;
	uint64_t flush_gpa;
	uint32_t irq_line;
	bool irq_level;
	int flush_result;
	unsigned int flushes, irqs, failures;
	unsigned int warnings;
} st;

static int flush_hook(void *ctx, uint64_t gpa)
{
	CHECK(st.flush_ok && gpa == st.flush_gpa);
	st.flushes++;
	if (st.flush_result && st.flush_result != -EFAULT)
		st.failures++;
	return st.flush_result;
}

static void irq_hook(void *ctx, uint32_t line, bool level)
{
	CHECK(st.irq_ok && line == st.irq_line && level == st.irq_level);
	st.irqs++;
}

static void sink(enum kvmkit_log_level level, const char *module, const char *msg, void *opaque)
{
	if (level <= KVMKIT_LOG_WARN && !strcmp(module, "testdev"))
		st.warnings++;
}

/* The model: two scratch registers and the MMIO scratch memory. */
static uint32_t scratch[2];
static uint8_t mem[KVMKIT_TESTDEV_MMIO_LEN];

static void model_port_write(uint64_t off, const uint8_t *b, unsigned int size)
{
	if (off >= 4 && off < 8)
		return; /* the flush port keeps nothing */
	for (unsigned int i = 0; i < size && (off & 3) + i < 4; i++) {
		unsigned int sh = 8 * ((unsigned int)(off & 3) + i);

		scratch[off >= 8] = (scratch[off >= 8] & ~(0xffu << sh)) | (uint32_t)b[i] << sh;
	}
}

static uint8_t model_port_byte(uint64_t off, unsigned int i)
{
	if (off >= 4 && off < 8)
		return 0;
	if ((off & 3) + i >= 4)
		return 0;
	return (uint8_t)(scratch[off >= 8] >> (8 * ((off & 3) + i)));
}

static void port_access(struct kvmkit_bus *pio, uint16_t port, unsigned int size, bool wr,
			const uint8_t *val)
{
	bool in_ports = port >= PORTS && port + size <= PORTS + PORTS_LEN;
	bool in_irq = port >= KVMKIT_TESTDEV_IRQ_PORT &&
		      port + size <= KVMKIT_TESTDEV_IRQ_PORT + KVMKIT_TESTDEV_IRQ_LINES;
	unsigned int flushes = st.flushes, irqs = st.irqs;
	uint8_t buf[16];
	bool taken;

	memset(buf, 0x5a, sizeof(buf));
	if (wr)
		memcpy(buf, val, size);
	st.flush_ok = wr && port == KVMKIT_TESTDEV_FLUSH_PAGE && size == 4;
	if (st.flush_ok) {
		uint32_t v;

		memcpy(&v, val, 4);
		st.flush_gpa = v & ~0xfffull;
	}
	st.irq_ok = wr && in_irq && size == 1;
	st.irq_line = (uint32_t)(port - KVMKIT_TESTDEV_IRQ_PORT);
	st.irq_level = val[0] != 0;
	taken = kvmkit_bus_dispatch(pio, port, buf, size, wr);
	CHECK(taken == (in_ports || in_irq));
	CHECK(st.flushes == flushes + st.flush_ok);
	CHECK(st.irqs == irqs + st.irq_ok);
	for (unsigned int i = size; i < sizeof(buf); i++)
		CHECK(buf[i] == 0x5a);
	if (!taken || wr) {
		if (taken && in_ports)
			model_port_write(port - PORTS, val, size);
		return;
	}
	for (unsigned int i = 0; i < size; i++)
		CHECK(buf[i] == (in_ports ? model_port_byte(port - PORTS, i) : 0));
}

static void mmio_access(struct kvmkit_bus *mmio, uint64_t off, unsigned int size, bool wr,
			const uint8_t *val)
{
	bool inside = off + size <= KVMKIT_TESTDEV_MMIO_LEN;
	uint8_t buf[16];

	memset(buf, 0x5a, sizeof(buf));
	if (wr)
		memcpy(buf, val, size);
	CHECK(kvmkit_bus_dispatch(mmio, KVMKIT_TESTDEV_MMIO + off, buf, size, wr) == inside);
	for (unsigned int i = size; i < sizeof(buf); i++)
		CHECK(buf[i] == 0x5a);
	if (!inside)
		return;
	if (wr)
		memcpy(mem + off, val, size);
	else
		CHECK(memcmp(buf, mem + off, size) == 0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int results[4] = { 0, -EFAULT, -ENOMEM, -EACCES };
	struct kvmk_testdev_hooks hooks = { NULL, irq_hook, flush_hook };
	struct kvmkit_bus *pio, *mmio;
	struct kvmkit_testdev *dev;
	double t0 = now_s();

	if (kvmkit_bus_create(KVMKIT_BUS_PIO, &pio))
		return 0;
	if (kvmkit_bus_create(KVMKIT_BUS_MMIO, &mmio)) {
		kvmkit_bus_destroy(pio);
		return 0;
	}
	memset(&st, 0, sizeof(st));
	memset(scratch, 0, sizeof(scratch));
	memset(mem, 0, sizeof(mem));
	kvmkit_log_set_level(KVMKIT_LOG_WARN);
	kvmkit_log_set_sink(sink, NULL);
	if (kvmk_testdev_create_on(pio, mmio, &hooks, &dev))
		goto out;
	/* Each 12-byte record: op, 2-byte address, 8 value bytes, flush result. */
	while (size >= 12) {
		uint8_t op = data[0];
		uint16_t a = (uint16_t)(data[1] | data[2] << 8);
		bool wr = op & 0x80;
		unsigned int sz = 1u << (op >> 4 & 3); /* 1, 2, 4, 8 */

		st.flush_result = results[data[11] & 3];
		switch (op & 3) {
		case 0: /* around the scratch and flush ports */
			port_access(pio, (uint16_t)(PORTS - 4 + a % 20), sz > 4 ? 4 : sz, wr,
				    data + 3);
			break;
		case 1: /* around the IRQ-line ports */
			port_access(pio, (uint16_t)(KVMKIT_TESTDEV_IRQ_PORT - 4 + a % 32),
				    sz > 4 ? 4 : sz, wr, data + 3);
			break;
		case 2: /* the flush port, 4 bytes, any value */
			port_access(pio, KVMKIT_TESTDEV_FLUSH_PAGE, 4, true, data + 3);
			break;
		default: /* the MMIO scratch and past its end */
			mmio_access(mmio, a % (KVMKIT_TESTDEV_MMIO_LEN + 16), sz, wr, data + 3);
			break;
		}
		data += 12;
		size -= 12;
	}
	/* Failures are reported, at most once a second after the first. */
	CHECK(!st.failures == !st.warnings);
	CHECK(st.warnings <= 1 + (unsigned int)(now_s() - t0));
	kvmkit_testdev_destroy(dev);
	/* ... and the rest when the device goes. */
	CHECK(st.warnings <= 2 + (unsigned int)(now_s() - t0));
	CHECK(kvmkit_bus_count(pio) == 0 && kvmkit_bus_count(mmio) == 0);
out:
	kvmkit_log_set_sink(NULL, NULL);
	kvmkit_bus_destroy(pio);
	kvmkit_bus_destroy(mmio);
	return 0;
}
