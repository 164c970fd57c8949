// SPDX-License-Identifier: MIT
/*
 * Guest programs run under kvmkit: each test asserts what the guest itself
 * observed and reported (values, counts, exit status).
 */
#include <pthread.h>

#include "kvm_test.h"

static void test_hello(void **state)
{
	struct kvmkit_machine *m = machine_for("hello", 1, 64 << 20);
	struct kvmkit_stop_info info;
	uint64_t vals[4];
	char out[256] = "";

	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, GUEST_STATUS_OK);
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(m), vals, 4), 1);
	assert_int_equal(vals[0], GUEST_HELLO_REPORT);
	kvmkit_uart_output(kvmkit_machine_uart(m), out, sizeof(out) - 1);
	assert_non_null(strstr(out, GUEST_HELLO_TEXT));
	assert_int_equal(kvmkit_vm_state(kvmkit_machine_vm(m)), KVMKIT_VM_STOPPED);
	kvmkit_machine_destroy(m);
}

static void test_demo(void **state)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;
	char out[512] = "";

	kvmkit_machine_config_init(&cfg);
	cfg.kernel = kvmkit_demo_guest(&cfg.kernel_len);
	assert_int_equal(kvmkit_machine_create(&cfg, &m), 0);
	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, 0);
	kvmkit_uart_output(kvmkit_machine_uart(m), out, sizeof(out) - 1);
	assert_non_null(strstr(out, GUEST_DEMO_BANNER));
	kvmkit_machine_destroy(m);
}

static void check_smp(unsigned int n)
{
	struct kvmkit_machine *m = machine_for("smp_id", n, 64 << 20);
	struct kvmkit_stop_info info;
	uint64_t vals[64];
	unsigned int seen[16] = { 0 };
	size_t cnt;

	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, GUEST_STATUS_OK);
	cnt = kvmkit_report_values(kvmkit_machine_report(m), vals, 64);
	assert_int_equal(cnt, n);
	for (size_t i = 0; i < cnt; i++) {
		assert_true(vals[i] >= GUEST_SMP_ID_BASE && vals[i] < GUEST_SMP_ID_BASE + n);
		seen[vals[i] - GUEST_SMP_ID_BASE]++;
	}
	/* Every vCPU reported its own id exactly once. */
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(seen[i], 1);
	kvmkit_machine_destroy(m);
}

static void test_smp_2(void **state)
{
	check_smp(2);
}

static void test_smp_4(void **state)
{
	check_smp(4);
}

/*
 * Every vCPU powers off at once: the first stop request wins while the
 * others' requests (each kicking every vCPU) race with the joining of the
 * vCPU threads. Repeated because the window is narrow; under the TSan build
 * (tests/README.md) a kick aimed at a joined thread is reported.
 */
#define SMP_EXIT_VCPUS 8
#define SMP_EXIT_ROUNDS 10

static void test_smp_all_exit(void **state)
{
	for (int round = 0; round < SMP_EXIT_ROUNDS; round++) {
		struct kvmkit_machine *m = machine_for("smp_exit", SMP_EXIT_VCPUS, 64 << 20);
		struct kvmkit_stop_info info;
		uint64_t vals[64];
		unsigned int seen[SMP_EXIT_VCPUS] = { 0 };
		size_t cnt;

		run_to_stop(m, &info);
		assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
		/* One of the vCPUs' statuses, not a mix or a later one. */
		assert_in_range(info.status, GUEST_SMP_EXIT_STATUS(0),
				GUEST_SMP_EXIT_STATUS(SMP_EXIT_VCPUS - 1));
		/* The barrier ran after every report, so all of them are in. */
		cnt = kvmkit_report_values(kvmkit_machine_report(m), vals, 64);
		assert_int_equal(cnt, SMP_EXIT_VCPUS);
		for (size_t i = 0; i < cnt; i++) {
			assert_in_range(vals[i], GUEST_SMP_ID_BASE,
					GUEST_SMP_ID_BASE + SMP_EXIT_VCPUS - 1);
			seen[vals[i] - GUEST_SMP_ID_BASE]++;
		}
		for (unsigned int i = 0; i < SMP_EXIT_VCPUS; i++)
			assert_int_equal(seen[i], 1);
		assert_int_equal(kvmkit_vm_state(kvmkit_machine_vm(m)), KVMKIT_VM_STOPPED);
		kvmkit_machine_destroy(m);
	}
}

/*
 * vCPU statistics read from another thread while the vCPU thread counts
 * exits: every counter only grows between reads, and the totals match what
 * the guest did. Under the TSan build an unsynchronised read is reported.
 */
#define STATS_ITERS 2000

static void check_stats_grow(const struct kvmkit_vcpu_stats *a, const struct kvmkit_vcpu_stats *b)
{
	assert_true(b->runs >= a->runs);
	assert_true(b->exits_io >= a->exits_io);
	assert_true(b->exits_mmio >= a->exits_mmio);
	assert_true(b->exits_hlt >= a->exits_hlt);
	assert_true(b->exits_intr >= a->exits_intr);
	assert_true(b->exits_other >= a->exits_other);
}

static void test_stats_while_running(void **state)
{
	struct kvmkit_machine *m = machine_for("exits_bench", 1, 64 << 20);
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct kvmkit_vcpu *v = kvmkit_vm_vcpu(vm, 0);
	struct kvmkit_vcpu_stats prev = { 0 }, cur;
	struct kvmkit_stop_info info;
	uint64_t n = STATS_ITERS, rep[2];
	int r = -ETIMEDOUT;

	assert_int_equal(kvmkit_vm_write(vm, GUEST_BENCH_ITERS_ADDR, &n, sizeof(n)), 0);
	assert_int_equal(kvmkit_vm_start(vm), 0);
	for (int i = 0; r == -ETIMEDOUT && i < GUEST_WATCHDOG_MS; i++) {
		kvmkit_vcpu_get_stats(v, &cur);
		check_stats_grow(&prev, &cur);
		prev = cur;
		r = kvmkit_vm_wait(vm, 1, &info);
	}
	assert_int_equal(r, 0);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, GUEST_STATUS_OK);
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(m), rep, 2), 1);
	assert_int_equal(rep[0], n);
	kvmkit_vcpu_get_stats(v, &cur);
	check_stats_grow(&prev, &cur);
	/* Unclaimed accesses still exit: N MMIO, N port writes plus the report
	 * and the power-off. */
	assert_true(cur.exits_mmio >= n);
	assert_true(cur.exits_io >= n + 2);
	assert_true(cur.runs >= cur.exits_mmio + cur.exits_io);
	kvmkit_machine_destroy(m);
}

/* A device whose handler is slow, and which notices being called after its
 * owner was told it is gone. Call number @hold_at waits inside the handler
 * until the device has left the bus's table: the unregistration then
 * happens while that call is in flight, with the guest's loop mid-way. */
#define SLOW_HOLD_MS 20000

struct slow_dev {
	struct kvmkit_bus *bus;
	unsigned int calls, hold_at;
	bool held; /* call @hold_at is waiting */
	bool saw_unregistered; /* ... and saw the device leave the table */
	bool gone;
	unsigned int after_gone; /* calls that started or ran on after "gone" */
};

static void slow_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct slow_dev *d = opaque;
	unsigned int call = __atomic_add_fetch(&d->calls, 1, __ATOMIC_SEQ_CST);

	if (__atomic_load_n(&d->gone, __ATOMIC_SEQ_CST))
		__atomic_add_fetch(&d->after_gone, 1, __ATOMIC_SEQ_CST);
	if (call == d->hold_at) {
		/* Bounded (the test asserts what this saw), and well inside
		 * the binary's watchdog. */
		uint64_t end = now_ms() + SLOW_HOLD_MS;

		__atomic_store_n(&d->held, true, __ATOMIC_SEQ_CST);
		while (kvmkit_bus_lookup(d->bus, GUEST_TEST_MMIO) && now_ms() < end)
			usleep(100);
		if (!kvmkit_bus_lookup(d->bus, GUEST_TEST_MMIO))
			__atomic_store_n(&d->saw_unregistered, true, __ATOMIC_SEQ_CST);
	}
	usleep(300); /* a handler that takes its time: the race window */
	if (__atomic_load_n(&d->gone, __ATOMIC_SEQ_CST))
		__atomic_add_fetch(&d->after_gone, 1, __ATOMIC_SEQ_CST);
}

static void slow_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	memset(data, 0, size);
}

static const struct kvmkit_io_ops slow_ops = { .read = slow_read, .write = slow_write };

/*
 * Unregistering a device from a running VM returns only once no vCPU is
 * still inside its handler, so the owner may free it at once: the guest
 * hammers the device's MMIO range from CPL3 while the host unregisters it.
 * Its 20th call is held until the device has left the table, so the
 * unregistration overlaps a call in flight however the threads are
 * scheduled (one emulated CPU runs them all in the emulated host), and
 * the device sees exactly 20 of the guest's 400 writes: the rest go
 * unclaimed.
 */
static void test_unregister_while_running(void **state)
{
	struct kvmkit_machine *m = machine_for("exits_bench", 1, 64 << 20);
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct kvmkit_bus *mmio = kvmkit_vm_mmio_bus(vm);
	struct kvmkit_stop_info info;
	struct slow_dev d = { .bus = mmio, .hold_at = 20 };
	uint64_t n = 400;

	assert_int_equal(kvmkit_vm_write(vm, GUEST_BENCH_ITERS_ADDR, &n, sizeof(n)), 0);
	assert_int_equal(kvmkit_bus_register(mmio, GUEST_TEST_MMIO, 8, "slow", &slow_ops, &d), 0);
	assert_int_equal(kvmkit_vm_start(vm), 0);
	for (int i = 0; i < GUEST_WATCHDOG_MS * 10 && !__atomic_load_n(&d.held, __ATOMIC_SEQ_CST);
	     i++)
		usleep(100);
	if (!__atomic_load_n(&d.held, __ATOMIC_SEQ_CST))
		fail_msg("FAIL: the guest made %u of its writes, never the %uth", d.calls,
			 d.hold_at);
	assert_int_equal(kvmkit_bus_unregister(mmio, GUEST_TEST_MMIO), 0);
	/* From here the device would be freed. */
	__atomic_store_n(&d.gone, true, __ATOMIC_SEQ_CST);
	assert_int_equal(kvmkit_vm_wait(vm, GUEST_WATCHDOG_MS, &info), 0);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, GUEST_STATUS_OK);
	/* The held call saw the device leave the table, and unregister
	 * returned only after that call had left the handler. */
	if (!d.saw_unregistered)
		fail_msg("FAIL: the device's %uth call waited %d ms inside its handler, and "
			 "kvmkit_bus_unregister() never took it off the bus",
			 d.hold_at, SLOW_HOLD_MS);
	if (d.after_gone)
		fail_msg("FAIL: %u handler calls ran on after kvmkit_bus_unregister() returned",
			 d.after_gone);
	/* The guest went on writing (unclaimed now) and finished: the device
	 * saw none of the writes after the held one. */
	if (d.calls != d.hold_at)
		fail_msg("FAIL: the device saw %u of the guest's %llu writes, %u before and during "
			 "its unregistration",
			 d.calls, (unsigned long long)n, d.hold_at);
	kvmkit_machine_destroy(m);
}

/*
 * Two vCPUs that each unregister a range from inside an exit handler at the
 * same moment: each one's grace period waits for the other to leave its
 * handler, which it cannot while it waits in turn. The smp_id guest's two
 * vCPUs both report a value; the test's stand-in for the report device
 * holds each until both are inside, then each unregisters a dummy range.
 */
struct cross_dev {
	struct kvmkit_vm *vm;
	unsigned int arrived, inside_together;
	int unregistered[2];
};

#define CROSS_DUMMY_PORT 0x7f0

static void cross_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct cross_dev *d = opaque;
	uint32_t v = 0;
	unsigned int me;

	memcpy(&v, data, size < 4 ? size : 4);
	if (off == GUEST_REPORT_POWER_OFF - GUEST_REPORT_PORT) {
		kvmkit_vm_request_stop(d->vm, KVMKIT_STOP_GUEST_EXIT, (int)v, "power-off");
		return;
	}
	me = __atomic_fetch_add(&d->arrived, 1, __ATOMIC_SEQ_CST);
	if (me >= 2)
		return;
	/* Bounded: the assertion below says whether the two met. */
	for (int i = 0; i < GUEST_WATCHDOG_MS && __atomic_load_n(&d->arrived, __ATOMIC_SEQ_CST) < 2;
	     i++)
		usleep(1000);
	if (__atomic_load_n(&d->arrived, __ATOMIC_SEQ_CST) >= 2)
		__atomic_add_fetch(&d->inside_together, 1, __ATOMIC_SEQ_CST);
	d->unregistered[me] =
		kvmkit_bus_unregister(kvmkit_vm_pio_bus(d->vm), CROSS_DUMMY_PORT + me);
}

static void cross_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	memset(data, 0, size);
}

static const struct kvmkit_io_ops cross_ops = { .read = cross_read, .write = cross_write };

static void test_unregister_from_two_handlers(void **state)
{
	struct kvmkit_machine *m = machine_for("smp_id", 2, 64 << 20);
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct kvmkit_bus *pio = kvmkit_vm_pio_bus(vm);
	struct cross_dev d = { .vm = vm, .unregistered = { 1, 1 } };
	struct kvmkit_stop_info info;

	assert_int_equal(kvmkit_bus_unregister(pio, KVMKIT_REPORT_PORT), 0);
	assert_int_equal(kvmkit_bus_register(pio, KVMKIT_REPORT_PORT, KVMKIT_REPORT_LEN, "cross",
					     &cross_ops, &d),
			 0);
	for (unsigned int i = 0; i < 2; i++)
		assert_int_equal(
			kvmkit_bus_register(pio, CROSS_DUMMY_PORT + i, 1, "dummy", &cross_ops, &d),
			0);
	/* A deadlock never returns here: the binary's watchdog fails it. */
	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, GUEST_STATUS_OK);
	assert_int_equal(d.inside_together, 2);
	assert_int_equal(d.unregistered[0], 0);
	assert_int_equal(d.unregistered[1], 0);
	assert_null(kvmkit_bus_lookup(pio, CROSS_DUMMY_PORT));
	assert_null(kvmkit_bus_lookup(pio, CROSS_DUMMY_PORT + 1));
	kvmkit_machine_destroy(m);
}

static uint64_t counter(struct kvmkit_vm *vm)
{
	uint64_t v;

	assert_int_equal(kvmkit_vm_read(vm, GUEST_PAUSE_COUNTER_ADDR, &v, 8), 0);
	return v;
}

static void test_pause_resume(void **state)
{
	struct kvmkit_machine *m = machine_for("pause_loop", 1, 64 << 20);
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct kvmkit_stop_info info;
	uint64_t c1, c2, c3;
	int i;

	/* Invalid transitions before start. */
	assert_int_equal(kvmkit_vm_pause(vm), -EBUSY);
	assert_string_equal(kvmkit_last_error()->value, "created");
	assert_int_equal(kvmkit_vm_resume(vm), -EBUSY);

	assert_int_equal(kvmkit_vm_start(vm), 0);
	assert_int_equal(kvmkit_vm_start(vm), -EBUSY);
	assert_int_equal(kvmkit_vm_resume(vm), -EBUSY);
	assert_string_equal(kvmkit_last_error()->value, "running");
	assert_int_equal(wait_for_u64(vm, GUEST_PAUSE_MAGIC_ADDR, GUEST_PAUSE_MAGIC), 0);

	for (int round = 0; round < 3; round++) {
		assert_int_equal(kvmkit_vm_pause(vm), 0);
		assert_int_equal(kvmkit_vm_state(vm), KVMKIT_VM_PAUSED);
		assert_int_equal(kvmkit_vm_pause(vm), -EBUSY);
		/* Paused means out of KVM_RUN: the counter cannot move. */
		c1 = counter(vm);
		usleep(50000);
		c2 = counter(vm);
		assert_true(c1 == c2);
		assert_int_equal(kvmkit_vm_resume(vm), 0);
		assert_int_equal(kvmkit_vm_state(vm), KVMKIT_VM_RUNNING);
		/* It moves again after resume (bounded wait). */
		for (i = 0, c3 = c2; c3 == c2 && i < GUEST_WATCHDOG_MS; i++) {
			usleep(1000);
			c3 = counter(vm);
		}
		assert_true(c3 > c2);
	}
	/* Stop from paused, then every transition is refused. */
	assert_int_equal(kvmkit_vm_pause(vm), 0);
	assert_int_equal(kvmkit_vm_stop(vm), 0);
	assert_int_equal(kvmkit_vm_state(vm), KVMKIT_VM_STOPPED);
	assert_int_equal(kvmkit_vm_wait(vm, 0, &info), 0);
	assert_int_equal(info.reason, KVMKIT_STOP_REQUESTED);
	assert_int_equal(kvmkit_vm_resume(vm), -EBUSY);
	assert_int_equal(kvmkit_vm_start(vm), -EBUSY);
	assert_int_equal(kvmkit_vm_stop(vm), -EBUSY);
	assert_string_equal(kvmkit_last_error()->value, "stopped");
	c1 = counter(vm);
	usleep(20000);
	assert_true(counter(vm) == c1);
	kvmkit_machine_destroy(m);
}

/* Records every access the guest makes to the test port and MMIO window. */
struct access {
	bool mmio, write;
	uint64_t off;
	unsigned int size;
	uint64_t val;
};

struct recorder {
	pthread_mutex_t lock;
	unsigned int n;
	struct access a[32];
};

/* What reads return: a fixed pattern, so the guest's report is checkable. */
#define READ_PATTERN 0x0123456789abcdefull

static void rec(struct recorder *r, bool mmio, bool write, uint64_t off, const void *data,
		unsigned int size)
{
	pthread_mutex_lock(&r->lock);
	if (r->n < 32) {
		struct access *a = &r->a[r->n++];

		*a = (struct access){ mmio, write, off, size, 0 };
		memcpy(&a->val, data, size);
	}
	pthread_mutex_unlock(&r->lock);
}

static void pio_read(void *o, uint64_t off, void *data, unsigned int size)
{
	uint64_t v = READ_PATTERN;

	memcpy(data, &v, size);
	rec(o, false, false, off, data, size);
}

static void pio_write(void *o, uint64_t off, const void *data, unsigned int size)
{
	rec(o, false, true, off, data, size);
}

static void mmio_read(void *o, uint64_t off, void *data, unsigned int size)
{
	uint64_t v = READ_PATTERN;

	memcpy(data, &v, size);
	rec(o, true, false, off, data, size);
}

static void mmio_write(void *o, uint64_t off, const void *data, unsigned int size)
{
	rec(o, true, true, off, data, size);
}

static const struct kvmkit_io_ops pio_ops = { pio_read, pio_write };
static const struct kvmkit_io_ops mmio_ops = { mmio_read, mmio_write };

static void test_io_sizes(void **state)
{
	struct kvmkit_machine *m = machine_for("io_sizes", 1, 64 << 20);
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct recorder r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct kvmkit_stop_info info;
	uint64_t rep[16];
	static const struct access want[] = {
		{ false, true, 0, 1, GUEST_IO_PIO_W8 },
		{ false, true, 0, 2, GUEST_IO_PIO_W16 },
		{ false, true, 0, 4, GUEST_IO_PIO_W32 },
		{ false, false, 0, 1, READ_PATTERN & 0xff },
		{ false, false, 0, 2, READ_PATTERN & 0xffff },
		{ false, false, 0, 4, READ_PATTERN & 0xffffffff },
		{ true, true, 0, 1, GUEST_IO_MMIO_W8 },
		{ true, true, 0, 2, GUEST_IO_MMIO_W16 },
		{ true, true, 0, 4, GUEST_IO_MMIO_W32 },
		{ true, true, 0, 8, GUEST_IO_MMIO_W64 },
		{ true, false, 0, 1, READ_PATTERN & 0xff },
		{ true, false, 0, 2, READ_PATTERN & 0xffff },
		{ true, false, 0, 4, READ_PATTERN & 0xffffffff },
		{ true, false, 0, 8, READ_PATTERN },
	};

	assert_int_equal(kvmkit_bus_register(kvmkit_vm_pio_bus(vm), GUEST_TEST_PORT, 4, "test-pio",
					     &pio_ops, &r),
			 0);
	assert_int_equal(kvmkit_bus_register(kvmkit_vm_mmio_bus(vm), GUEST_TEST_MMIO, 8,
					     "test-mmio", &mmio_ops, &r),
			 0);
	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, GUEST_STATUS_OK);

	/* The host saw exactly these accesses, in order. */
	assert_int_equal(r.n, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < r.n; i++) {
		if (r.a[i].mmio != want[i].mmio || r.a[i].write != want[i].write ||
		    r.a[i].off != want[i].off || r.a[i].size != want[i].size ||
		    r.a[i].val != want[i].val)
			fail_msg("access %u: got %s %s off %llu size %u val 0x%llx", i,
				 r.a[i].mmio ? "mmio" : "pio", r.a[i].write ? "write" : "read",
				 (unsigned long long)r.a[i].off, r.a[i].size,
				 (unsigned long long)r.a[i].val);
	}
	/* And the guest saw what the device returned. */
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(m), rep, 16), GUEST_IO_REPORTS);
	assert_int_equal(rep[0], READ_PATTERN & 0xff);
	assert_int_equal(rep[1], READ_PATTERN & 0xffff);
	assert_int_equal(rep[2], READ_PATTERN & 0xffffffff);
	assert_int_equal(rep[3], READ_PATTERN & 0xff);
	assert_int_equal(rep[4], READ_PATTERN & 0xffff);
	assert_int_equal(rep[5], READ_PATTERN & 0xffffffff);
	assert_int_equal(rep[6], READ_PATTERN & 0xffffffff);
	assert_int_equal(rep[7], READ_PATTERN >> 32);
	kvmkit_machine_destroy(m);
}

static void test_triple_fault(void **state)
{
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;
	uint64_t rep[4];

	host_quirk(host_is_kvm_pvm(), PVM_NO_TRIPLE_FAULT);
	m = machine_for("triple_fault", 1, 64 << 20);

	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_SHUTDOWN);
	assert_int_equal(info.vcpu, 0);
	/* The stop record carries a register dump. */
	assert_non_null(strstr(info.detail, "rip="));
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(m), rep, 4), 0);
	assert_int_equal(kvmkit_vm_state(kvmkit_machine_vm(m)), KVMKIT_VM_STOPPED);
	kvmkit_machine_destroy(m);
}

static void test_exception_report(void **state)
{
	struct kvmkit_machine *m = machine_for("exception", 1, 64 << 20);
	struct kvmkit_stop_info info;
	uint64_t rep[8];

	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, GUEST_STATUS_EXCEPTION(GUEST_EXC_UD));
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(m), rep, 8),
			 1 + GUEST_EXC_REPORTS);
	assert_int_equal(rep[1], GUEST_EXC_UD);
	assert_int_equal(rep[2], rep[0]); /* RIP is the ud2 the guest announced */
	assert_int_equal(rep[3], 0);
	assert_int_equal(rep[4], 0);
	kvmkit_machine_destroy(m);
}

static void cpu_probe(const char *flags, uint64_t rep[4])
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;

	guest_config(&cfg, "cpuid_probe", 1, 64 << 20);
	cfg.vm.cpu_flags = flags;
	m = machine_from(&cfg);
	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, 0);
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(m), rep, 4), 4);
	kvmkit_machine_destroy(m);
}

/* What CPUID the guest sees: kvmkit's model, then --cpu flags. */
static void test_cpu_model(void **state)
{
	uint64_t rep[4];

	cpu_probe(NULL, rep);
	assert_true(rep[0] & (1u << 31)); /* hypervisor */
	assert_true(rep[0] & (1u << 21)); /* x2apic */
	assert_false(rep[0] & (1u << 3)); /* no monitor/mwait */
	assert_false(rep[0] & (1u << 5)); /* no vmx */
	assert_int_equal(rep[1] >> 24, 0); /* APIC id of vCPU 0 */
	assert_int_equal(rep[3], 0); /* no PMU */
	cpu_probe("-x2apic,-hypervisor", rep);
	assert_false(rep[0] & (1u << 21));
	assert_false(rep[0] & (1u << 31));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_demo),
		cmocka_unit_test(test_smp_2),
		cmocka_unit_test(test_smp_4),
		cmocka_unit_test(test_smp_all_exit),
		cmocka_unit_test(test_stats_while_running),
		cmocka_unit_test(test_unregister_while_running),
		cmocka_unit_test(test_unregister_from_two_handlers),
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_io_sizes),
		cmocka_unit_test(test_triple_fault),
		cmocka_unit_test(test_exception_report),
		cmocka_unit_test(test_cpu_model),
	};

	test_args(argc, argv);
	require_kvm();
	return cmocka_run_group_tests_name("guests", tests, NULL, NULL);
}
