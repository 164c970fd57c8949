// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the 16550 UART's register interface (reads and writes
 * of any register, DLAB, loopback and FIFO settings included; bursts to THR;
 * received bytes), with out_fd the write end of a one-page pipe the target
 * drains, lets fill up, or closes. Traps if:
 *  - the transmit buffer holds more than KVMKIT_UART_TX_BUF bytes, or the
 *    counters stop adding up (tx_bytes == written + queued + dropped), or
 *    tx_bytes differs from the THR writes made with DLAB and loopback off;
 *  - LSR shows THRE set while the buffer cannot take a FIFO load, shows
 *    TEMT and THRE apart, or bit 7; IIR shows a value no 16550 can, FIFO
 *    bits that disagree with FCR, or THRE while LSR does not; or, with
 *    IER.THRE on, IIR shows nothing pending after THRE came back;
 *  - what comes out of the pipe is not the start of what the guest sent;
 *  - out_fd failing is reported other than once, with EPIPE;
 *  - destroy hangs (libFuzzer's -timeout) or leaks (ASan).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "devices/devices_internal.h"
#include "fuzz.h"

#define PORT 0x3f8
#define LOG_MAX 65536

struct fz {
	int host_errors; /* atomic: called from the writer thread */
	char detail[160];
	uint8_t lcr, mcr, fcr, ier;
	bool saw_held; /* LSR showed THRE clear; no THR/IER write since */
	bool expect_thre; /* THRE came back: its interrupt must be pending */
	uint64_t tx; /* THR writes that transmit */
	size_t got; /* bytes read back from the pipe */
	bool read_closed;
};

static uint8_t got_buf[LOG_MAX];
static char log_buf[LOG_MAX];

static void noop(int sig)
{
	(void)sig;
}

static int kick_signal(void)
{
	static int sig;

	if (!sig) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = noop; /* no SA_RESTART: it must end a write() */
		sigemptyset(&sa.sa_mask);
		sig = SIGRTMIN + 3;
		sigaction(sig, &sa, NULL);
	}
	return sig;
}

static void host_error(void *ctx, const char *detail)
{
	struct fz *f = ctx;

	if (__atomic_fetch_add(&f->host_errors, 1, __ATOMIC_SEQ_CST) == 0)
		strncpy(f->detail, detail, sizeof(f->detail) - 1);
}

static uint8_t reg_in(struct kvmkit_bus *bus, unsigned int reg)
{
	uint8_t v[4] = { 0 };

	kvmkit_bus_dispatch(bus, PORT + reg, v, 1, false);
	return v[0];
}

static void reg_out(struct fz *f, struct kvmkit_bus *bus, unsigned int reg, uint8_t v)
{
	if (reg == 0 && !(f->lcr & 0x80) && !(f->mcr & 0x10))
		f->tx++;
	if (reg == 0 || reg == 1)
		f->saw_held = f->expect_thre = false;
	if (reg == 1 && !(f->lcr & 0x80))
		f->ier = v;
	else if (reg == 2)
		f->fcr = v;
	else if (reg == 3)
		f->lcr = v;
	else if (reg == 4)
		f->mcr = v & 0x1f;
	kvmkit_bus_dispatch(bus, PORT + reg, &v, 1, true);
}

static void check_stats(struct fz *f, struct kvmkit_uart *u)
{
	struct kvmkit_uart_stats st;

	kvmkit_uart_stats(u, &st);
	CHECK(st.queued <= KVMKIT_UART_TX_BUF);
	CHECK(st.tx_bytes == st.written + st.queued + st.dropped);
	CHECK(st.tx_bytes == f->tx);
	CHECK(st.out_error == 0 || st.out_error == EPIPE);
}

static void check_lsr(struct fz *f, struct kvmkit_uart *u, uint8_t lsr)
{
	struct kvmkit_uart_stats st;

	if (lsr & 0x20) {
		/* Released by the writer: that raises a THR-empty interrupt. */
		if (f->saw_held && (f->ier & 0x02))
			f->expect_thre = true;
		f->saw_held = false;
	} else {
		f->saw_held = true;
	}
	CHECK(!(lsr & 0x80));
	CHECK(!!(lsr & 0x20) == !!(lsr & 0x40));
	kvmkit_uart_stats(u, &st); /* the writer only shrinks the queue */
	if (lsr & 0x20)
		CHECK(st.queued <= KVMKIT_UART_TX_BUF - 16);
	else
		CHECK(st.stalls > 0);
}

static void check_iir(struct fz *f, struct kvmkit_bus *bus, uint8_t v)
{
	uint8_t id = v & 0x0f;

	CHECK(!(v & 0x30));
	CHECK((v & 0xc0) == ((f->fcr & 1) ? 0xc0 : 0));
	CHECK(id == 0x01 || id == 0x02 || id == 0x04 || id == 0x06);
	/* THRE, or a source that outranks it (it stays latched behind). */
	if (f->expect_thre)
		CHECK(id != 0x01);
	if (id == 0x02 || id == 0x01)
		f->expect_thre = false;
	/* This read may have taken an interrupt of a release it cannot see. */
	f->saw_held = false;
	/* A THR-empty interrupt means THR is empty; the writer never takes
	 * THRE away, and only this thread writes THR. */
	if (id == 0x02)
		CHECK(reg_in(bus, 5) & 0x20);
}

static void drain(struct fz *f, int fd, size_t max)
{
	while (max && !f->read_closed) {
		uint8_t buf[512];
		size_t want = max < sizeof(buf) ? max : sizeof(buf);
		ssize_t n = read(fd, buf, want);

		if (n <= 0)
			return;
		for (ssize_t i = 0; i < n; i++, f->got++)
			if (f->got < LOG_MAX)
				got_buf[f->got] = buf[i];
		max -= (size_t)n;
	}
}

/* What left through the pipe is the start of what the guest transmitted
 * (the in-memory log keeps the first 64 KiB of it). */
static void check_output(struct fz *f, struct kvmkit_uart *u)
{
	size_t logged = kvmkit_uart_output(u, log_buf, sizeof(log_buf));
	size_t n = f->got < LOG_MAX ? f->got : LOG_MAX;

	if (logged < LOG_MAX)
		CHECK(f->got <= logged);
	if (n > logged)
		n = logged;
	CHECK(!memcmp(got_buf, log_buf, n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { .lcr = 0x03 };
	struct kvmk_uart_hooks hooks = {
		.ctx = &f,
		.host_error = host_error,
		.kick_signal = kick_signal(),
		.flush_ms = 0, /* destroy must cope with a full pipe at once */
	};
	struct kvmkit_bus *bus;
	struct kvmkit_uart *u;
	int p[2];
	size_t i = 0;

	if (kvmkit_bus_create(KVMKIT_BUS_PIO, &bus))
		return 0;
	if (pipe2(p, O_CLOEXEC)) {
		kvmkit_bus_destroy(bus);
		return 0;
	}
	fcntl(p[1], F_SETPIPE_SZ, 4096);
	fcntl(p[0], F_SETFL, O_NONBLOCK); /* the target's own read end */
	if (kvmk_uart_create_on(bus, PORT, p[1], &hooks, &u)) {
		close(p[0]);
		close(p[1]);
		kvmkit_bus_destroy(bus);
		return 0;
	}
	/* Each record: op, a, b. */
	while (i + 3 <= size) {
		uint8_t op = data[i], a = data[i + 1], b = data[i + 2];

		i += 3;
		switch (op % 8) {
		case 0:
		case 1:
			reg_out(&f, bus, a & 7, b);
			break;
		case 2: {
			uint8_t v = reg_in(bus, a & 7);

			if ((a & 7) == 2)
				check_iir(&f, bus, v);
			else if ((a & 7) == 5)
				check_lsr(&f, u, v);
			break;
		}
		case 3: /* a burst that can fill pipe and buffer, THRE ignored */
			for (unsigned int k = 0; k < (a + 1u) * 128; k++)
				reg_out(&f, bus, 0, (uint8_t)(b + k));
			break;
		case 4: /* a reader: take some, let the writer refill */
			drain(&f, p[0], (a + 1u) * 128);
			kvmkit_uart_flush(u, b & 3);
			break;
		case 5: {
			size_t len = a % 32;

			if (len > size - i)
				len = size - i;
			kvmkit_uart_feed(u, data + i, len);
			i += len;
			break;
		}
		case 6:
			/* Let the writer run: it drains into the pipe, or sees
			 * the reader gone. */
			kvmkit_uart_flush(u, a & 3);
			break;
		case 7:
			if (a == 0xee && !f.read_closed) {
				drain(&f, p[0], LOG_MAX);
				close(p[0]);
				f.read_closed = true;
			}
			break;
		}
		check_stats(&f, u);
	}
	drain(&f, p[0], LOG_MAX);
	check_output(&f, u);
	kvmkit_uart_destroy(u);
	CHECK(__atomic_load_n(&f.host_errors, __ATOMIC_SEQ_CST) <= 1);
	if (f.host_errors)
		CHECK(f.read_closed && strstr(f.detail, "EPIPE"));
	if (!f.read_closed)
		close(p[0]);
	close(p[1]);
	kvmkit_bus_destroy(bus);
	return 0;
}
