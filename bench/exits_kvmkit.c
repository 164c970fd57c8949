// SPDX-License-Identifier: MIT
/*
 * Exit round trip through kvmkit: the guest exits_bench.elf does, at CPL3,
 * N 4-byte MMIO writes to GUEST_TEST_MMIO and then N 4-byte port writes to
 * GUEST_TEST_PORT. Both land on a no-op device registered on kvmkit's buses;
 * the VM is a standard machine run by kvmkit's own vCPU thread, exactly as
 * `kvmkit run` would run it.
 *
 * The no-op device only counts and, on three accesses (the first MMIO write,
 * the first port write, the last port write), reads the clock and snapshots
 * the vCPU's stats. Timing between those points covers the guest loops only:
 * no VM creation, thread start or teardown.
 *
 * With --run-once the vCPU is driven from this thread by calling
 * kvmkit_vcpu_run_once() in a loop instead (same exit handling and bus
 * dispatch, but without the vCPU thread's per-exit lifecycle locking); a
 * diagnostic variant that separates the cost of that loop from dispatch.
 *
 * usage: bench-exits-kvmkit [--run-once] GUEST_ELF N
 * prints: RESULT exits kvmkit|kvmkit-run-once n=.. mmio_ns=.. pio_ns=..
 *         exit_ns=.. user_ns=.. wall_ms=..
 */
#include <kvmkit/kvmkit.h>

#include "bench_util.h"
#include "guest_abi.h"

#define BENCH_MEM (16ull << 20)
#define BENCH_TIMEOUT_MS (20 * 60 * 1000)

struct noop_dev {
	struct kvmkit_vcpu *vcpu;
	uint64_t n;
	uint64_t n_mmio, n_pio;
	uint64_t t_mmio0, t_pio0, t_pio_last;
	struct kvmkit_vcpu_stats s0, s1;
};

static void noop_mmio_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct noop_dev *d = opaque;

	if (d->n_mmio++ == 0) {
		d->t_mmio0 = bench_now_ns();
		/* Handlers run on the vCPU thread: its stats are stable here. */
		kvmkit_vcpu_get_stats(d->vcpu, &d->s0);
	}
}

static void noop_pio_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct noop_dev *d = opaque;
	uint64_t i = d->n_pio++;

	if (i == 0) {
		d->t_pio0 = bench_now_ns();
	} else if (i + 1 == d->n) {
		d->t_pio_last = bench_now_ns();
		kvmkit_vcpu_get_stats(d->vcpu, &d->s1);
	}
}

static const struct kvmkit_io_ops noop_mmio_ops = { .write = noop_mmio_write };
static const struct kvmkit_io_ops noop_pio_ops = { .write = noop_pio_write };

static void die(const char *what)
{
	fprintf(stderr, "bench-exits-kvmkit: %s: %s\n", what, kvmkit_strerror());
	exit(1);
}

int main(int argc, char **argv)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m;
	struct kvmkit_vm *vm;
	struct kvmkit_stop_info info;
	struct noop_dev d = { 0 };
	uint64_t rep[2], t0, t1, exits, runs;
	void *image;
	size_t len;
	int once = 0, split = 0;

	for (; argc > 1 && argv[1][0] == '-'; argv++, argc--) {
		if (!strcmp(argv[1], "--run-once"))
			once = 1;
		else if (!strcmp(argv[1], "--split"))
			split = 1; /* split irqchip: vCPU 0 checks kvmkit's PIC per run */
		else
			break;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: bench-exits-kvmkit [--run-once] [--split] GUEST_ELF N\n");
		return 2;
	}
	d.n = bench_parse_u64("N", argv[2]);
	if (d.n < 2 || d.n > 0xffffffffull) {
		fprintf(stderr, "bench-exits-kvmkit: N must be 2 .. 2^32-1\n");
		return 2;
	}
	image = bench_read_file(argv[1], &len);

	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = 1;
	cfg.vm.mem_size = BENCH_MEM;
	/* user_ns is what this benchmark reports; the ratio includes its cost. */
	cfg.vm.exit_timing = true;
	cfg.kernel = image;
	cfg.kernel_len = len;
	if (split)
		cfg.irqchip_mode = KVMKIT_IRQCHIP_SPLIT;
	if (kvmkit_machine_create(&cfg, &m))
		die("machine");
	free(image);
	vm = kvmkit_machine_vm(m);
	d.vcpu = kvmkit_vm_vcpu(vm, 0);
	if (kvmkit_bus_register(kvmkit_vm_mmio_bus(vm), GUEST_TEST_MMIO, 8, "bench-mmio",
				&noop_mmio_ops, &d) ||
	    kvmkit_bus_register(kvmkit_vm_pio_bus(vm), GUEST_TEST_PORT, 4, "bench-pio",
				&noop_pio_ops, &d))
		die("registering the no-op device");
	if (kvmkit_vm_write(vm, GUEST_BENCH_ITERS_ADDR, &d.n, sizeof(d.n)))
		die("writing the iteration count");

	t0 = bench_now_ns();
	if (once) {
		/* Until the last test-port write; the report and power-off that
		 * follow are not part of the window. */
		while (d.n_pio < d.n) {
			int r = kvmkit_vcpu_run_once(d.vcpu);

			if (r < 0)
				die("run_once");
			if (r != KVM_EXIT_IO && r != KVM_EXIT_MMIO) {
				fprintf(stderr, "bench-exits-kvmkit: unexpected exit %d\n", r);
				return 1;
			}
		}
		info.reason = KVMKIT_STOP_GUEST_EXIT;
		info.status = GUEST_STATUS_OK;
	} else if (kvmkit_machine_run(m, BENCH_TIMEOUT_MS, &info)) {
		die("run");
	}
	t1 = bench_now_ns();

	if (info.reason != KVMKIT_STOP_GUEST_EXIT || info.status != GUEST_STATUS_OK) {
		fprintf(stderr, "bench-exits-kvmkit: guest stopped: %s (status %d): %s\n",
			kvmkit_stop_reason_name(info.reason), info.status, info.detail);
		return 1;
	}
	if ((!once && (kvmkit_report_values(kvmkit_machine_report(m), rep, 2) != 1 ||
		       rep[0] != (uint32_t)d.n)) ||
	    d.n_mmio != d.n || d.n_pio != d.n) {
		fprintf(stderr, "bench-exits-kvmkit: expected %llu accesses of each kind, saw %llu MMIO, %llu PIO\n",
			(unsigned long long)d.n, (unsigned long long)d.n_mmio,
			(unsigned long long)d.n_pio);
		return 1;
	}

	/* Between the two snapshots the vCPU took exits MMIO #1 .. PIO #N-1
	 * (2N - 1 KVM_RUN calls) and user_ns grew by the userspace time of
	 * exits MMIO #0 .. PIO #N-2: the same count. */
	exits = (d.s1.exits_io + d.s1.exits_mmio) - (d.s0.exits_io + d.s0.exits_mmio);
	runs = d.s1.runs - d.s0.runs;
	if (exits != 2 * d.n - 1 || runs != exits) {
		fprintf(stderr, "bench-exits-kvmkit: %llu exits / %llu runs in the window, expected %llu\n",
			(unsigned long long)exits, (unsigned long long)runs,
			(unsigned long long)(2 * d.n - 1));
		return 1;
	}
	printf("RESULT exits %s n=%llu mmio_ns=%.1f pio_ns=%.1f exit_ns=%.1f user_ns=%.1f wall_ms=%.1f\n",
	       once ? "kvmkit-run-once" : "kvmkit", (unsigned long long)d.n, (double)(d.t_pio0 - d.t_mmio0) / (double)d.n,
	       (double)(d.t_pio_last - d.t_pio0) / (double)(d.n - 1),
	       (double)(d.t_pio_last - d.t_mmio0) / (double)(2 * d.n - 1),
	       (double)(d.s1.user_ns - d.s0.user_ns) / (double)runs, (double)(t1 - t0) / 1e6);
	kvmkit_machine_destroy(m);
	return 0;
}
