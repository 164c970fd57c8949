// SPDX-License-Identifier: MIT
/*
 * The 16550 UART's output path on a bare bus (no KVM): flow control through
 * THRE while the console is behind, the THR-empty interrupt when it catches
 * up, EPIPE, and a destroy that never waits for a reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <kvmkit/error.h>

#include "devices/devices_internal.h"

#define PORT 0x3f8
#define THR 0
#define IER 1
#define IIR 2
#define LSR 5
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

struct fx {
	struct kvmkit_bus *bus;
	struct kvmkit_uart *u;
	int p[2];
	int errors;
	char detail[160];
};

static void noop(int sig)
{
	(void)sig;
}

static int kick_signal(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = noop; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN + 3, &sa, NULL);
	return SIGRTMIN + 3;
}

static void host_error(void *ctx, const char *detail)
{
	struct fx *f = ctx;

	snprintf(f->detail, sizeof(f->detail), "%s", detail);
	__atomic_fetch_add(&f->errors, 1, __ATOMIC_SEQ_CST); /* after detail */
}

/* A UART whose out_fd is a one-page pipe the test reads when it wants. */
static void setup(struct fx *f, int flush_ms)
{
	struct kvmk_uart_hooks hooks = {
		.ctx = f,
		.host_error = host_error,
		.kick_signal = kick_signal(),
		.flush_ms = flush_ms,
	};

	memset(f, 0, sizeof(*f));
	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &f->bus), 0);
	assert_int_equal(pipe2(f->p, O_CLOEXEC), 0);
	assert_true(fcntl(f->p[1], F_SETPIPE_SZ, 4096) >= 4096);
	assert_int_equal(fcntl(f->p[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(kvmk_uart_create_on(f->bus, PORT, f->p[1], &hooks, &f->u), 0);
}

static void teardown(struct fx *f)
{
	kvmkit_uart_destroy(f->u);
	if (f->p[0] >= 0)
		close(f->p[0]);
	close(f->p[1]);
	kvmkit_bus_destroy(f->bus);
}

static void out(struct fx *f, unsigned int reg, uint8_t v)
{
	kvmkit_bus_dispatch(f->bus, PORT + reg, &v, 1, true);
}

static uint8_t in(struct fx *f, unsigned int reg)
{
	uint8_t v = 0;

	kvmkit_bus_dispatch(f->bus, PORT + reg, &v, 1, false);
	return v;
}

static size_t drain(struct fx *f)
{
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	while ((n = read(f->p[0], buf, sizeof(buf))) > 0)
		total += (size_t)n;
	return total;
}

/* Fills the pipe first (so the writer can take nothing out of the buffer),
 * then floods THR until the transmitter is held. */
static unsigned int fill(struct fx *f)
{
	char page[4096];
	unsigned int n;

	memset(page, '.', sizeof(page));
	assert_int_equal(write(f->p[1], page, sizeof(page)), sizeof(page));
	for (n = 0; n < 4 * KVMKIT_UART_TX_BUF && (in(f, LSR) & LSR_THRE); n++)
		out(f, THR, (uint8_t)('a' + n % 26));
	return n;
}

static void test_thre_held_then_interrupt(void **state)
{
	struct kvmkit_uart_stats st;
	struct fx f;
	uint8_t lsr = 0;
	size_t got = 0;
	int i;

	setup(&f, 0);
	out(&f, IER, 0x02);
	assert_int_equal(in(&f, IIR) & 0x0f, 0x02); /* enabling with THR empty */
	fill(&f);
	lsr = in(&f, LSR);
	assert_int_equal(lsr & (LSR_THRE | LSR_TEMT), 0);
	assert_int_equal(in(&f, IIR) & 0x0f, 0x01); /* nothing while held */
	/* A byte written now overwrites the full THR: dropped, counted. */
	kvmkit_uart_stats(f.u, &st);
	out(&f, THR, 'x');
	{
		struct kvmkit_uart_stats st2;

		kvmkit_uart_stats(f.u, &st2);
		assert_int_equal(st2.dropped, st.dropped + 1);
		assert_true(st2.stalls >= 1);
		assert_true(st2.queued > KVMKIT_UART_TX_BUF - 16);
	}
	/* The reader catches up (bounded): THRE comes back, with its
	 * interrupt. */
	for (i = 0; i < 5000 && !(lsr & LSR_THRE); i++) {
		got += drain(&f);
		kvmkit_uart_flush(f.u, 1);
		lsr = in(&f, LSR);
	}
	assert_true(lsr & LSR_THRE);
	assert_true(lsr & LSR_TEMT);
	assert_int_equal(in(&f, IIR) & 0x0f, 0x02);
	assert_int_equal(in(&f, IIR) & 0x0f, 0x01); /* acknowledged */
	/* Everything not dropped gets out while someone reads (bounded). */
	for (i = 0; i < 5000 && kvmkit_uart_flush(f.u, 1); i++)
		got += drain(&f);
	assert_int_equal(kvmkit_uart_flush(f.u, 0), 0);
	got += drain(&f);
	kvmkit_uart_stats(f.u, &st);
	assert_int_equal(st.written, got - 4096); /* fill()'s own page */
	assert_int_equal(st.tx_bytes, st.written + st.dropped);
	assert_int_equal(st.queued, 0);
	teardown(&f);
}

/* The pipe is full and the writer sits in write(): destroy still returns,
 * after its drain gave up (100 ms without progress). */
static void test_destroy_blocked_writer(void **state)
{
	struct kvmkit_uart_stats st;
	struct fx f;

	setup(&f, 1000);
	fill(&f);
	kvmkit_uart_stats(f.u, &st);
	assert_true(st.queued > 0);
	assert_true(kvmkit_uart_flush(f.u, 50) > 0); /* nobody reads */
	teardown(&f);
}

/* The reader leaves: EPIPE reported once, no SIGPIPE, later bytes dropped
 * and the transmitter never held again. */
static void test_reader_gone(void **state)
{
	struct kvmkit_uart_stats st;
	struct fx f;

	setup(&f, 1000);
	close(f.p[0]);
	f.p[0] = -1;
	out(&f, THR, 'a');
	kvmkit_uart_flush(f.u, 5000);
	kvmkit_uart_stats(f.u, &st);
	assert_int_equal(st.out_error, EPIPE);
	/* The writer reports it just after recording it (bounded wait). */
	for (int i = 0; i < 5000 && !__atomic_load_n(&f.errors, __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	assert_int_equal(__atomic_load_n(&f.errors, __ATOMIC_SEQ_CST), 1);
	assert_string_equal(f.detail, "console output closed (EPIPE)");
	for (int i = 0; i < 2 * KVMKIT_UART_TX_BUF; i++)
		out(&f, THR, 'b');
	assert_true(in(&f, LSR) & LSR_THRE);
	kvmkit_uart_stats(f.u, &st);
	assert_int_equal(st.written, 0);
	assert_int_equal(st.dropped, st.tx_bytes);
	assert_int_equal(st.tx_bytes, 1 + 2 * KVMKIT_UART_TX_BUF);
	assert_int_equal(f.errors, 1);
	teardown(&f);
}

/* Resident memory means nothing under valgrind (its own allocator). */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif
/* ASan allocates from its heap (redzones); TSan's shadow memory grows
 * with every byte written: neither build's resident set says anything. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SAN_BUILD 1
#endif
#endif

/* This process's resident anonymous memory in KiB (RssAnon: not the
 * code pages a first call faults in). */
static long anon_kib(void)
{
	char line[128];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
			break;
	fclose(f);
	assert_true(kib >= 0);
	return kib;
}

/* A UART's buffers (the output log, the transmit ring: 84 KiB) take
 * memory only as the guest fills them: eight idle UARTs add far less to
 * the resident set than their buffers' size. (Skipped in sanitizer
 * builds, see SAN_BUILD, and under valgrind, which replaces the
 * allocator.) */
static void test_buffers_on_demand(void **state)
{
	enum { N = 8 };
	struct kvmk_uart_hooks hooks = { 0 };
	struct kvmkit_uart *u[N];
	struct kvmkit_bus *bus;
	long before, grown;

#ifdef SAN_BUILD
	skip();
#endif
	if (RUNNING_ON_VALGRIND)
		skip();
	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &bus), 0);
	before = anon_kib();
	for (int i = 0; i < N; i++)
		assert_int_equal(kvmk_uart_create_on(bus, PORT + 8 * i, -1, &hooks, &u[i]), 0);
	grown = anon_kib() - before;
	printf("%d UARTs: %ld KiB more resident\n", N, grown);
	assert_true(grown < N * 12);
	for (int i = 0; i < N; i++)
		kvmkit_uart_destroy(u[i]);
	kvmkit_bus_destroy(bus);
}

/* Without out_fd: no thread, THRE always set, output only in memory. */
static void test_no_out_fd(void **state)
{
	struct kvmk_uart_hooks hooks = { 0 };
	struct kvmkit_uart_stats st;
	struct kvmkit_bus *bus;
	struct kvmkit_uart *u;
	char log[4];

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &bus), 0);
	assert_int_equal(kvmk_uart_create_on(bus, PORT, -1, &hooks, &u), 0);
	for (int i = 0; i < 2 * KVMKIT_UART_TX_BUF; i++) {
		uint8_t v = 'z', lsr = 0;

		kvmkit_bus_dispatch(bus, PORT + THR, &v, 1, true);
		kvmkit_bus_dispatch(bus, PORT + LSR, &lsr, 1, false);
		assert_true(lsr & LSR_THRE);
	}
	kvmkit_uart_stats(u, &st);
	assert_int_equal(st.tx_bytes, 2 * KVMKIT_UART_TX_BUF);
	assert_int_equal(st.written + st.dropped + st.queued + st.stalls, 0);
	assert_int_equal(kvmkit_uart_flush(u, 0), 0);
	assert_int_equal(kvmkit_uart_output(u, log, sizeof(log)), sizeof(log));
	assert_memory_equal(log, "zzzz", 4);
	kvmkit_uart_destroy(u);
	kvmkit_bus_destroy(bus);
}

/* Misuse is refused with a parameter error, nothing leaked. */
static void test_bad_setup(void **state)
{
	struct kvmk_uart_hooks hooks = { .kick_signal = kick_signal() };
	struct kvmkit_bus *bus;
	struct kvmkit_uart *u;
	struct sigaction sa;
	int p[2];

	assert_int_equal(kvmkit_bus_create(KVMKIT_BUS_PIO, &bus), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	/* A closed fd. */
	assert_int_equal(kvmk_uart_create_on(bus, PORT, p[0], &hooks, &u), -EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	/* A kick that would restart the write instead of ending it. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = noop;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGRTMIN + 4, &sa, NULL);
	hooks.kick_signal = SIGRTMIN + 4;
	assert_int_equal(kvmk_uart_create_on(bus, PORT, p[1], &hooks, &u), -EINVAL);
	/* A signal whose default action would kill the process. */
	hooks.kick_signal = SIGRTMIN + 5;
	assert_int_equal(kvmk_uart_create_on(bus, PORT, p[1], &hooks, &u), -EINVAL);
	/* Port taken: the writer thread started for it is stopped again. */
	hooks.kick_signal = kick_signal();
	assert_int_equal(kvmk_uart_create_on(bus, PORT, p[1], &hooks, &u), 0);
	{
		struct kvmkit_uart *dup;

		assert_int_equal(kvmk_uart_create_on(bus, PORT, p[1], &hooks, &dup), -EEXIST);
	}
	kvmkit_uart_destroy(u);
	close(p[1]);
	kvmkit_bus_destroy(bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thre_held_then_interrupt),
		cmocka_unit_test(test_destroy_blocked_writer),
		cmocka_unit_test(test_reader_gone),
		cmocka_unit_test(test_no_out_fd),
		cmocka_unit_test(test_buffers_on_demand),
		cmocka_unit_test(test_bad_setup),
	};

	return cmocka_run_group_tests_name("uart", tests, NULL, NULL);
}
