// SPDX-License-Identifier: MIT
/*
 * A console nobody reads: the machine's UART writes into a pipe whose read
 * end no one drains while the uart_flood guest floods THR without waiting
 * for THRE. The guest must see the transmitter held (THRE clear), the run
 * and the stop path must go on regardless (the binary's watchdog catches a
 * hang), and every byte the guest sent is accounted for: written into the
 * pipe, still queued, or dropped.
 */
#include <fcntl.h>
#include <sys/ioctl.h>

#include "kvm_test.h"

/* One page: the pipe is full after 4 KiB, the UART's buffer soon after. */
#define PIPE_BYTES 4096

static struct kvmkit_machine *flood_machine(int out_fd, uint64_t bytes)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;

	guest_config(&cfg, "uart_flood", 1, 64 << 20);
	cfg.console_fd = out_fd;
	m = machine_from(&cfg);
	assert_int_equal(kvmkit_vm_write(kvmkit_machine_vm(m), GUEST_FLOOD_BYTES_ADDR, &bytes, 8),
			 0);
	return m;
}

/* A pipe of one page whose read end the test holds and does not read. */
static void stalled_pipe(int p[2])
{
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES) >= PIPE_BYTES);
}

static int pipe_bytes(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* The stats that say whether the writer moved (held_ns grows while THRE
 * is held, with nothing moving). */
static bool same_stats(const struct kvmkit_uart_stats *a, const struct kvmkit_uart_stats *b)
{
	return a->tx_bytes == b->tx_bytes && a->written == b->written && a->dropped == b->dropped &&
	       a->stalls == b->stalls && a->queued == b->queued && a->out_error == b->out_error;
}

/* The gap between the two snapshots settle() compares. */
#define SETTLE_STEP_MS 10

/*
 * Waits (bounded by the watchdog, not a timing assertion) until the UART's
 * writer has settled: two stats snapshots, SETTLE_STEP_MS apart, identical,
 * with the pipe holding the same number of bytes at both and that number
 * being what the UART counts as written. The writer is then blocked on
 * the full pipe (or done), nothing in flight. One snapshot is not enough:
 * bytes the writer's write() has put into the pipe are counted only once
 * it returns, and between two writes the counts agree too. Returns the
 * pipe's byte count; @st gets the second snapshot.
 */
static int settle(struct kvmkit_uart *u, int rfd, struct kvmkit_uart_stats *st)
{
	struct kvmkit_uart_stats prev = { 0 };
	int prev_pipe = -1, in_pipe = -1;

	for (int i = 0; i < GUEST_WATCHDOG_MS / SETTLE_STEP_MS; i++) {
		kvmkit_uart_stats(u, st);
		in_pipe = pipe_bytes(rfd);
		if (prev_pipe >= 0 && in_pipe == prev_pipe && same_stats(st, &prev) &&
		    st->written == (uint64_t)in_pipe)
			return in_pipe;
		prev = *st;
		prev_pipe = in_pipe;
		usleep(SETTLE_STEP_MS * 1000);
	}
	fail_msg("FAIL: the console's writer never settled: UART wrote %llu bytes (%u queued), "
		 "the pipe holds %d",
		 (unsigned long long)st->written, st->queued, in_pipe);
	return -1;
}

/* The guest floods 64 KiB into a stalled console and powers off: it saw THRE
 * held, and what it sent equals what reached the pipe plus what is queued
 * plus what was dropped. Then destroy returns although the writer is blocked
 * in write() on the full pipe. */
static void test_flood_stalled_console(void **state)
{
	const uint64_t flood = 16 * GUEST_FLOOD_CHUNK;
	struct kvmkit_uart_stats st;
	struct kvmkit_stop_info info;
	uint64_t rep[GUEST_FLOOD_REPORTS], sent;
	char pipe_data[PIPE_BYTES], *log;
	int p[2], in_pipe;
	struct kvmkit_machine *m;
	struct kvmkit_uart *u;

	stalled_pipe(p);
	m = flood_machine(p[1], flood);
	u = kvmkit_machine_uart(m);
	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, GUEST_STATUS_OK);
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(m), rep, GUEST_FLOOD_REPORTS),
			 GUEST_FLOOD_REPORTS);

	/* What the register torture and the probes saw. */
	assert_int_equal(rep[0], 0); /* no impossible IIR/LSR value */
	assert_int_equal(rep[2], 0x1234); /* divisor latch */
	assert_int_equal(rep[3], 0x5a); /* scratch */
	assert_int_equal(rep[4], 0xa5); /* loopback */
	assert_int_equal(rep[5], 0xf0); /* loopback modem lines */
	assert_int_equal(rep[6], 0); /* FCR cleared the receive FIFO */
	sent = rep[7] | rep[8] << 32;
	assert_int_equal(sent, flood);
	/* The guest saw the transmitter held, never TEMT without THRE. */
	assert_true(rep[9] > 0);
	assert_int_equal(rep[10], 0);

	in_pipe = settle(u, p[0], &st);
	/* Up to a page: a write that would not fit whole waits instead. */
	assert_true(in_pipe > 0 && in_pipe <= PIPE_BYTES);
	assert_int_equal(st.written, in_pipe);
	assert_int_equal(st.tx_bytes, rep[1] + sent);
	assert_true(st.stalls >= 1);
	assert_true(st.held_ns > 0);
	assert_true(st.queued <= KVMKIT_UART_TX_BUF);
	/* Every byte the guest sent is in the pipe, queued, or dropped. */
	assert_int_equal(st.dropped, rep[1] + sent - (uint64_t)in_pipe - st.queued);
	assert_true(st.dropped > 0);
	assert_int_equal(st.out_error, 0);
	print_message(
		"guest sent %llu, pipe %d, queued %u, dropped %llu, THRE held: guest saw %llu, "
		"UART %llu times for %llu us\n",
		(unsigned long long)st.tx_bytes, in_pipe, st.queued, (unsigned long long)st.dropped,
		(unsigned long long)rep[9], (unsigned long long)st.stalls,
		(unsigned long long)st.held_ns / 1000);

	/* What reached the pipe is the start of what the guest transmitted. */
	log = malloc(PIPE_BYTES);
	assert_non_null(log);
	assert_int_equal(kvmkit_uart_output(u, log, PIPE_BYTES), PIPE_BYTES);
	assert_int_equal(read(p[0], pipe_data, sizeof(pipe_data)), in_pipe);
	assert_memory_equal(pipe_data, log, in_pipe);
	free(log);

	/* The pipe is full again (the writer refilled it) or being refilled;
	 * destroy must not wait for a reader. */
	kvmkit_machine_destroy(m);
	close(p[0]);
	close(p[1]);
}

/* The guest floods forever into a stalled console: kvmkit_vm_stop() and
 * destroy return, and the guest saw THRE held on the way. */
static void test_flood_stop(void **state)
{
	struct kvmkit_machine *m;
	struct kvmkit_vm *vm;
	struct kvmkit_uart_stats st;
	volatile uint64_t *sent, *held;
	int p[2], i;

	stalled_pipe(p);
	m = flood_machine(p[1], 0);
	vm = kvmkit_machine_vm(m);
	sent = kvmkit_vm_gpa_to_hva(vm, GUEST_FLOOD_SENT_ADDR, 8);
	held = kvmkit_vm_gpa_to_hva(vm, GUEST_FLOOD_HELD_ADDR, 8);
	assert_non_null(sent);
	assert_non_null(held);
	assert_int_equal(kvmkit_vm_start(vm), 0);
	/* Far more than the pipe and the buffer take (bounded wait). */
	for (i = 0; i < GUEST_WATCHDOG_MS; i++) {
		if (__atomic_load_n(sent, __ATOMIC_ACQUIRE) >= 16 * GUEST_FLOOD_CHUNK &&
		    __atomic_load_n(held, __ATOMIC_ACQUIRE) > 0)
			break;
		usleep(1000);
	}
	if (i == GUEST_WATCHDOG_MS)
		fail_msg("the guest got %llu bytes out (THRE held %llu times): its vCPU is stuck",
			 (unsigned long long)*sent, (unsigned long long)*held);
	assert_int_equal(kvmkit_vm_stop(vm), 0);
	assert_int_equal(kvmkit_vm_state(vm), KVMKIT_VM_STOPPED);
	kvmkit_uart_stats(kvmkit_machine_uart(m), &st);
	assert_true(st.stalls >= 1);
	assert_true(st.tx_bytes >= 16 * GUEST_FLOOD_CHUNK);
	assert_int_equal(st.tx_bytes, st.written + st.queued + st.dropped);
	assert_true(st.written <= PIPE_BYTES);
	kvmkit_machine_destroy(m);
	close(p[0]);
	close(p[1]);
}

/* The reader goes away: the run ends with KVMKIT_STOP_HOST_ERROR naming
 * EPIPE, and the process is not killed by SIGPIPE. */
static void test_flood_reader_gone(void **state)
{
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;
	struct kvmkit_uart_stats st;
	int p[2];

	stalled_pipe(p);
	m = flood_machine(p[1], 0);
	close(p[0]);
	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_HOST_ERROR);
	assert_non_null(strstr(info.detail, "EPIPE"));
	kvmkit_uart_stats(kvmkit_machine_uart(m), &st);
	assert_int_equal(st.out_error, EPIPE);
	assert_int_equal(st.written, 0);
	kvmkit_machine_destroy(m);
	close(p[1]);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flood_stalled_console),
		cmocka_unit_test(test_flood_stop),
		cmocka_unit_test(test_flood_reader_gone),
	};

	test_args(argc, argv);
	require_kvm();
	return cmocka_run_group_tests_name("console", tests, NULL, NULL);
}
