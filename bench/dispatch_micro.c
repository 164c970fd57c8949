// SPDX-License-Identifier: MIT
/*
 * The CPU cost of the pieces of kvmkit's exit path that need no KVM, so it
 * runs anywhere (also where /dev/kvm is missing):
 *
 *   bus_pio_ns   kvmkit_bus_dispatch() of a 4-byte port write to a no-op
 *                device on a bus laid out like `kvmkit run`'s (UART,
 *                debug-exit, report device, the benchmark's test port);
 *   bus_mmio_ns  the same for a 4-byte MMIO write on the MMIO bus;
 *   clock_ns     one clock_gettime(CLOCK_MONOTONIC), of which kvmkit's vCPU
 *                loop does two per exit for its user_ns statistic;
 *   lock_ns      one uncontended pthread mutex lock + unlock, which the vCPU
 *                loop also takes once per exit (the VM lifecycle lock).
 *
 * usage: bench-dispatch [ITERATIONS]   (default 10,000,000)
 * prints: RESULT micro kvmkit bus_pio_ns=.. bus_mmio_ns=.. clock_ns=..
 *         lock_ns=..
 */
#include <pthread.h>

#include <kvmkit/kvmkit.h>

#include "bench_util.h"
#include "guest_abi.h"

static void noop_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	(*(volatile uint64_t *)opaque)++;
}

static void noop_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	memset(data, 0, size);
}

static const struct kvmkit_io_ops noop_ops = { .read = noop_read, .write = noop_write };

static void reg(struct kvmkit_bus *bus, uint64_t base, uint64_t len, const char *name,
		uint64_t *count)
{
	if (kvmkit_bus_register(bus, base, len, name, &noop_ops, count)) {
		fprintf(stderr, "bench-dispatch: %s: %s\n", name, kvmkit_strerror());
		exit(1);
	}
}

static double time_dispatch(struct kvmkit_bus *bus, uint64_t addr, uint64_t iters)
{
	uint32_t v = 0;
	uint64_t t0 = bench_now_ns();

	for (uint64_t i = 0; i < iters; i++) {
		v = (uint32_t)i;
		kvmkit_bus_dispatch(bus, addr, &v, 4, true);
	}
	return (double)(bench_now_ns() - t0) / (double)iters;
}

int main(int argc, char **argv)
{
	uint64_t iters = 10000000, count = 0, sink = 0, t0;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct kvmkit_bus *pio, *mmio;
	double pio_ns, mmio_ns, clock_ns, lock_ns;

	if (argc > 1)
		iters = bench_parse_u64("ITERATIONS", argv[1]);
	if (!iters)
		iters = 1;
	if (kvmkit_bus_create(KVMKIT_BUS_PIO, &pio) || kvmkit_bus_create(KVMKIT_BUS_MMIO, &mmio)) {
		fprintf(stderr, "bench-dispatch: %s\n", kvmkit_strerror());
		return 1;
	}
	reg(pio, KVMKIT_DEBUG_EXIT_PORT, 1, "debug-exit", &count);
	reg(pio, KVMKIT_UART_COM1, 8, "uart", &count);
	reg(pio, KVMKIT_REPORT_PORT, KVMKIT_REPORT_LEN, "report", &count);
	reg(pio, GUEST_TEST_PORT, 4, "bench-pio", &count);
	reg(mmio, GUEST_TEST_MMIO, 8, "bench-mmio", &count);

	pio_ns = time_dispatch(pio, GUEST_TEST_PORT, iters);
	mmio_ns = time_dispatch(mmio, GUEST_TEST_MMIO, iters);

	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		sink += bench_now_ns();
	clock_ns = (double)(bench_now_ns() - t0) / (double)iters;

	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		pthread_mutex_lock(&lock);
		sink++;
		pthread_mutex_unlock(&lock);
	}
	lock_ns = (double)(bench_now_ns() - t0) / (double)iters;

	if (count != 2 * iters) {
		fprintf(stderr, "bench-dispatch: %llu of %llu dispatches reached the device\n",
			(unsigned long long)count, (unsigned long long)(2 * iters));
		return 1;
	}
	printf("RESULT micro kvmkit iters=%llu bus_pio_ns=%.1f bus_mmio_ns=%.1f clock_ns=%.1f lock_ns=%.1f sink=%llu\n",
	       (unsigned long long)iters, pio_ns, mmio_ns, clock_ns, lock_ns,
	       (unsigned long long)(sink & 1));
	kvmkit_bus_destroy(pio);
	kvmkit_bus_destroy(mmio);
	return 0;
}
