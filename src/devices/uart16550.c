// SPDX-License-Identifier: MIT
/*
 * 16550A UART (8 registers). Output goes to an in-memory log and, through a
 * bounded buffer drained by a writer thread, to a file descriptor; input
 * comes from kvmkit_uart_feed().
 *
 * Why a buffer and a thread: a vCPU that called write() itself would sleep
 * for as long as the console's reader does (forever, for a pager nobody
 * scrolls), holding the UART lock, and kvmkit_vm_stop() would wait for it.
 * Why flow control rather than dropping when the buffer fills: guests poll
 * LSR.THRE before each byte (or FIFO load), so holding THRE clear makes them
 * wait exactly as a real UART held off by CTS does, and a slow but live
 * console loses nothing. Only a guest that ignores THRE loses bytes, each
 * counted. The stop path never waits for the guest or the reader: destroy
 * interrupts a blocked write() with the VM's kick signal.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "uart"
#include "core/internal.h"
#include <kvmkit/devices.h>
#include <kvmkit/irq.h>

#include "devices/devices_internal.h"

enum {
	UART_RBR_THR = 0,
	UART_IER = 1,
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define IER_RDA 0x01 /* received data available */
#define IER_THRE 0x02 /* transmitter holding register empty */
#define IER_RLS 0x04 /* receiver line status */
#define IER_MS 0x08 /* modem status */
#define IIR_RLS 0x06
#define IIR_RDA 0x04
#define IIR_THRE 0x02
#define IIR_MS 0x00
#define MCR_OUT2 0x08 /* gates the interrupt line on PC serial ports */
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define IIR_NONE 0x01
#define IIR_FIFO 0xc0

#define RX_CAP 4096
#define OUT_LOG 65536
#define TX_CAP KVMKIT_UART_TX_BUF
#define TX_FIFO 16 /* THRE promises room for a FIFO load */
#define TX_RELEASE (TX_CAP / 4) /* free bytes that end a hold */
#define WRITE_MAX 4096 /* PIPE_BUF: progress stays visible */
#define GATHER_NS 1000000ull /* mid-stream, bytes gather this long */
#define FLUSH_MS 1000 /* destroy's drain, at most */
#define STALL_NS 100000000ull /* no byte out for this long: stuck */

struct kvmkit_uart {
	uint64_t port; /* a port, or an MMIO address (kvmkit_uart_create_mmio) */
	int out_fd;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool overrun;
	bool thre_pending; /* THR-empty interrupt latched, cleared by IIR read or THR write */
	struct kvmkit_line *line; /* NULL: no interrupt line (not owned) */
	size_t rx_head, rx_len;
	size_t out_len;

	/* Transmit path, with out_fd only. The writer owns tx_head; vCPUs
	 * append at tx_head + tx_len; both under the lock. */
	struct kvmkit_bus *pio;
	struct kvmk_uart_hooks hooks;
	pthread_t writer;
	pthread_cond_t tx_cond; /* to the writer: bytes queued, or stop */
	pthread_cond_t done_cond; /* from the writer: progress, failure, exit */
	bool have_writer, writer_idle, writer_gathering, writer_done, stopping;
	bool held; /* THRE/TEMT held clear: the buffer is (nearly) full */
	bool out_dead; /* out_fd failed: bytes are dropped from now on */
	uint64_t held_since;
	struct kvmkit_uart_stats st;
	size_t tx_head, tx_len;

	/* The buffers last, after the fields every access touches: their
	 * pages are only made as they fill (kvmk_zalloc()). */
	uint8_t rx[RX_CAP];
	char out[OUT_LOG];
	uint8_t tx[TX_CAP];
};

/* Lock held. A byte the guest wrote to THR outside loopback. */
static void transmit(struct kvmkit_uart *u, uint8_t c)
{
	u->st.tx_bytes++;
	if (u->held) {
		/* THR still full: the byte overwrites it and is lost. */
		u->st.dropped++;
		return;
	}
	if (u->out_len < OUT_LOG)
		u->out[u->out_len++] = (char)c;
	if (u->out_fd < 0)
		return;
	if (u->out_dead) {
		u->st.dropped++;
		return;
	}
	u->tx[(u->tx_head + u->tx_len) % TX_CAP] = c;
	u->tx_len++;
	if (TX_CAP - u->tx_len < TX_FIFO) {
		u->held = true;
		u->held_since = kvmk_now_ns();
		u->st.stalls++;
	}
	/* One wake-up per idle period, or once a write's worth is waiting. */
	if (u->writer_idle || (u->writer_gathering && u->tx_len >= WRITE_MAX)) {
		u->writer_idle = false;
		u->writer_gathering = false;
		pthread_cond_signal(&u->tx_cond);
	}
}

static void rx_push(struct kvmkit_uart *u, uint8_t c)
{
	if (u->rx_len == RX_CAP) {
		u->overrun = true;
		return;
	}
	u->rx[(u->rx_head + u->rx_len) % RX_CAP] = c;
	u->rx_len++;
}

/* The highest-priority pending interrupt source, as IIR reports it. */
static uint8_t pending_iir(const struct kvmkit_uart *u)
{
	if ((u->ier & IER_RLS) && u->overrun)
		return IIR_RLS;
	if ((u->ier & IER_RDA) && u->rx_len)
		return IIR_RDA;
	if ((u->ier & IER_THRE) && u->thre_pending)
		return IIR_THRE;
	return IIR_NONE;
}

/* Drives the interrupt line from the device state (lock held). The line is a
 * level; on an edge-programmed IOAPIC pin each 0->1 change is one interrupt. */
static void update_irq(struct kvmkit_uart *u)
{
	bool level = pending_iir(u) != IIR_NONE && (u->mcr & MCR_OUT2);

	/* The handle only calls the irqchip when the level changes. */
	if (u->line)
		kvmkit_line_set(u->line, level, NULL);
}

/* Lock held: THRE comes back (and interrupts) once there is room again. */
static void release(struct kvmkit_uart *u)
{
	if (!u->held || (TX_CAP - u->tx_len < TX_RELEASE && !u->out_dead))
		return;
	u->held = false;
	u->st.held_ns += kvmk_now_ns() - u->held_since;
	u->thre_pending = true;
	update_irq(u);
}

static uint8_t reg_read(struct kvmkit_uart *u, unsigned int reg)
{
	uint8_t v = 0;

	switch (reg) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (u->rx_len) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % RX_CAP;
			u->rx_len--;
		}
		return v;
	case UART_IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case UART_IIR_FCR:
		v = pending_iir(u);
		/* Reading IIR acknowledges a THR-empty interrupt it reports. */
		if (v == IIR_THRE)
			u->thre_pending = false;
		return v | ((u->fcr & FCR_ENABLE) ? IIR_FIFO : 0);
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		v = (u->held ? 0 : LSR_THRE | LSR_TEMT) | (u->rx_len ? LSR_DR : 0) |
		    (u->overrun ? LSR_OE : 0);
		u->overrun = false; /* OE clears on read */
		return v;
	case UART_MSR:
		/* In loopback, MCR outputs appear on the modem inputs; otherwise
		 * report carrier, DSR and CTS so guests think a terminal is there. */
		if (u->mcr & MCR_LOOP)
			return (uint8_t)(((u->mcr & 0x0c) << 4) | ((u->mcr & 0x01) << 5) |
					 ((u->mcr & 0x02) << 3));
		return 0xb0;
	default:
		return u->scr;
	}
}

static void reg_write(struct kvmkit_uart *u, unsigned int reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			break;
		}
		if (u->mcr & MCR_LOOP)
			rx_push(u, v);
		else
			transmit(u, v);
		/* Moved on at once unless the buffer holds the transmitter. */
		u->thre_pending = !u->held;
		break;
	case UART_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling THRE interrupts while THR is empty raises one. */
		if ((v & IER_THRE) && !(u->ier & IER_THRE) && !u->held)
			u->thre_pending = true;
		u->ier = v & 0x0f;
		break;
	case UART_IIR_FCR:
		/* Clearing the transmit FIFO (bit 2) does not reach the host
		 * buffer: those bytes are on the wire already. */
		u->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			u->rx_len = 0;
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		u->mcr = v & 0x1f;
		break;
	case UART_SCR:
		u->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

static void uart_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	struct kvmkit_uart *u = opaque;

	memset(data, 0, size);
	pthread_mutex_lock(&u->lock);
	/* Byte registers: wider accesses read the first register only. */
	((uint8_t *)data)[0] = reg_read(u, (unsigned int)off);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void uart_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmkit_uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	reg_write(u, (unsigned int)off, ((const uint8_t *)data)[0]);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static const struct kvmkit_io_ops uart_ops = { .read = uart_read, .write = uart_write };

/* Lock held: out_fd is gone for good; drop what is queued, free the guest. */
static void output_failed(struct kvmkit_uart *u, int err)
{
	u->out_dead = true;
	u->st.out_error = err;
	u->st.dropped += u->tx_len;
	u->tx_len = 0;
	release(u);
	pthread_cond_broadcast(&u->done_cond);
}

static void report_failure(struct kvmkit_uart *u, int err)
{
	char detail[160], buf[96];

	if (err == EPIPE)
		snprintf(detail, sizeof(detail), "console output closed (EPIPE)");
	else
		snprintf(detail, sizeof(detail), "console output failed: %s (errno %d)",
			 strerror_r(err, buf, sizeof(buf)), err);
	kvmk_info("%s", detail);
	if (u->hooks.host_error)
		u->hooks.host_error(u->hooks.ctx, detail);
}

/* Waits for out_fd to take bytes when a non-blocking description (someone
 * else's choice) said EAGAIN; the kick signal ends the wait. */
static void wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	poll(&p, 1, -1);
}

static void deadline_after(struct timespec *ts, uint64_t ns)
{
	uint64_t t = kvmk_now_ns() + ns;

	ts->tv_sec = (time_t)(t / 1000000000ull);
	ts->tv_nsec = (long)(t % 1000000000ull);
}

static void *writer_main(void *arg)
{
	struct kvmkit_uart *u = arg;
	bool streaming = false; /* the last pass wrote bytes */
	sigset_t set;

	/* Created with every signal blocked (so never SIGPIPE: a closed
	 * reader shows as EPIPE); only the kick may interrupt a write. */
	sigemptyset(&set);
	sigaddset(&set, u->hooks.kick_signal);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	pthread_mutex_lock(&u->lock);
	while (!u->stopping) {
		const uint8_t *start;
		bool was_streaming = streaming;
		size_t n;
		ssize_t w;
		int err;

		streaming = false;
		if (!u->tx_len && !was_streaming) {
			u->writer_idle = true;
			pthread_cond_wait(&u->tx_cond, &u->lock);
			u->writer_idle = false;
			continue;
		}
		if (was_streaming && u->tx_len < WRITE_MAX) {
			/* Right after a write, a guest sending byte by byte
			 * would cost its vCPU a wake-up per byte: let a
			 * millisecond's worth gather. The first byte after a
			 * quiet spell goes out at once. */
			struct timespec ts;

			deadline_after(&ts, GATHER_NS);
			u->writer_gathering = true;
			pthread_cond_timedwait(&u->tx_cond, &u->lock, &ts);
			u->writer_gathering = false;
			continue;
		}
		streaming = true;
		n = u->tx_len;
		if (n > TX_CAP - u->tx_head)
			n = TX_CAP - u->tx_head;
		if (n > WRITE_MAX)
			n = WRITE_MAX;
		/* vCPUs only append behind these bytes: safe to use unlocked. */
		start = u->tx + u->tx_head;
		pthread_mutex_unlock(&u->lock);
		w = write(u->out_fd, start, n);
		err = w < 0 ? errno : 0;
		if (err == EAGAIN || err == EWOULDBLOCK)
			wait_writable(u->out_fd);
		pthread_mutex_lock(&u->lock);
		if (w > 0) {
			u->tx_head = (u->tx_head + (size_t)w) % TX_CAP;
			u->tx_len -= (size_t)w;
			u->st.written += (uint64_t)w;
			release(u);
			pthread_cond_broadcast(&u->done_cond);
			continue;
		}
		if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK)
			continue;
		output_failed(u, w == 0 ? EIO : err);
		pthread_mutex_unlock(&u->lock);
		report_failure(u, w == 0 ? EIO : err);
		pthread_mutex_lock(&u->lock);
		break;
	}
	u->writer_done = true;
	pthread_cond_broadcast(&u->done_cond);
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* Stops the writer wherever it is: idle, or inside a write() or poll() that
 * may never return on its own. The signal is repeated because one sent
 * just before the thread enters write() would be lost. */
static void stop_writer(struct kvmkit_uart *u)
{
	pthread_mutex_lock(&u->lock);
	u->stopping = true;
	pthread_cond_signal(&u->tx_cond);
	while (!u->writer_done) {
		struct timespec ts;

		pthread_kill(u->writer, u->hooks.kick_signal);
		deadline_after(&ts, 10000000ull);
		pthread_cond_timedwait(&u->done_cond, &u->lock, &ts);
	}
	u->st.dropped += u->tx_len;
	u->tx_len = 0;
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->writer, NULL);
}

/* The kick must interrupt a blocking write(): a no-op handler without
 * SA_RESTART (SIG_DFL would kill the process, SIG_IGN do nothing). */
static bool kick_usable(int sig)
{
	struct sigaction sa;

	if (sig <= 0 || sig >= NSIG || sigaction(sig, NULL, &sa))
		return false;
	if (sa.sa_flags & SA_RESTART)
		return false;
	if (sa.sa_flags & SA_SIGINFO)
		return sa.sa_sigaction != NULL;
	return sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
}

static int start_writer(struct kvmkit_uart *u)
{
	sigset_t all, old;
	int r;

	if (fcntl(u->out_fd, F_GETFL) < 0)
		return kvmk_err_param("kvmkit_uart_create", "out_fd", "not an open file descriptor",
				      "%d", u->out_fd);
	if (!kick_usable(u->hooks.kick_signal))
		return kvmk_err_param("kvmkit_uart_create", "kick signal",
				      "needs a handler installed without SA_RESTART", "%d",
				      u->hooks.kick_signal);
	kvmk_cond_init_monotonic(&u->tx_cond);
	kvmk_cond_init_monotonic(&u->done_cond);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&u->writer, NULL, writer_main, u);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		pthread_cond_destroy(&u->tx_cond);
		pthread_cond_destroy(&u->done_cond);
		return kvmk_err_resource("kvmkit_uart_create", r, "writer thread");
	}
	u->have_writer = true;
	return 0;
}

int kvmk_uart_create_on(struct kvmkit_bus *pio, uint64_t port, int out_fd,
			const struct kvmk_uart_hooks *hooks, struct kvmkit_uart **out)
{
	/* 84 KiB of buffers (the output log, the transmit ring) that fill
	 * only as the guest writes: their pages are made as they are used. */
	struct kvmkit_uart *u = kvmk_zalloc(sizeof(*u));
	int r;

	if (!u)
		return kvmk_err_resource("kvmkit_uart_create", ENOMEM, NULL);
	u->pio = pio;
	u->port = port;
	u->out_fd = out_fd;
	u->hooks = *hooks;
	u->lcr = 0x03; /* 8N1 */
	u->dll = 0x0c; /* 9600 baud */
	pthread_mutex_init(&u->lock, NULL);
	if (out_fd >= 0) {
		r = start_writer(u);
		if (r)
			goto fail;
	}
	r = kvmkit_bus_register(pio, port, 8, "uart16550", &uart_ops, u);
	if (r)
		goto fail;
	*out = u;
	return 0;
fail:
	if (u->have_writer) {
		stop_writer(u);
		pthread_cond_destroy(&u->tx_cond);
		pthread_cond_destroy(&u->done_cond);
	}
	pthread_mutex_destroy(&u->lock);
	kvmk_zfree(u, sizeof(*u));
	return r;
}

static void vm_host_error(void *ctx, const char *detail)
{
	kvmkit_vm_request_stop(ctx, KVMKIT_STOP_HOST_ERROR, 0, detail);
}

static int create_on_vm(struct kvmkit_vm *vm, struct kvmkit_bus *bus, uint64_t addr, int out_fd,
			struct kvmkit_uart **out)
{
	struct kvmk_uart_hooks hooks = {
		.ctx = vm,
		.host_error = vm_host_error,
		/* The VM's kick handler is a no-op without SA_RESTART. */
		.kick_signal = kvmkit_vm_config(vm)->pause_signal,
		.flush_ms = FLUSH_MS,
	};

	return kvmk_uart_create_on(bus, addr, out_fd, &hooks, out);
}

int kvmkit_uart_create(struct kvmkit_vm *vm, uint16_t port, int out_fd, struct kvmkit_uart **out)
{
	return create_on_vm(vm, kvmkit_vm_pio_bus(vm), port, out_fd, out);
}

int kvmkit_uart_create_mmio(struct kvmkit_vm *vm, uint64_t gpa, int out_fd,
			    struct kvmkit_uart **out)
{
	return create_on_vm(vm, kvmkit_vm_mmio_bus(vm), gpa, out_fd, out);
}

void kvmkit_uart_destroy(struct kvmkit_uart *u)
{
	if (!u)
		return;
	kvmkit_bus_unregister(u->pio, u->port);
	if (u->have_writer) {
		kvmkit_uart_flush(u, u->hooks.flush_ms);
		stop_writer(u);
		pthread_cond_destroy(&u->tx_cond);
		pthread_cond_destroy(&u->done_cond);
	}
	pthread_mutex_destroy(&u->lock);
	kvmk_zfree(u, sizeof(*u));
}

size_t kvmkit_uart_flush(struct kvmkit_uart *u, int timeout_ms)
{
	uint64_t now = kvmk_now_ns(), last_out = now, written;
	uint64_t end = timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)timeout_ms * 1000000ull;
	size_t left;

	pthread_mutex_lock(&u->lock);
	written = u->st.written;
	while (u->have_writer && u->tx_len && !u->out_dead && !u->writer_done) {
		uint64_t until = last_out + STALL_NS < end ? last_out + STALL_NS : end;
		struct timespec ts;

		if (now >= until)
			break;
		ts.tv_sec = (time_t)(until / 1000000000ull);
		ts.tv_nsec = (long)(until % 1000000000ull);
		pthread_cond_timedwait(&u->done_cond, &u->lock, &ts);
		now = kvmk_now_ns();
		if (u->st.written != written) {
			written = u->st.written;
			last_out = now;
		}
	}
	left = u->tx_len;
	pthread_mutex_unlock(&u->lock);
	return left;
}

void kvmkit_uart_stats(struct kvmkit_uart *u, struct kvmkit_uart_stats *out)
{
	pthread_mutex_lock(&u->lock);
	*out = u->st;
	out->queued = (uint32_t)u->tx_len;
	if (u->held)
		out->held_ns += kvmk_now_ns() - u->held_since;
	pthread_mutex_unlock(&u->lock);
}

size_t kvmkit_uart_feed(struct kvmkit_uart *u, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t n;

	pthread_mutex_lock(&u->lock);
	for (n = 0; n < len && u->rx_len < RX_CAP; n++)
		rx_push(u, b[n]);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

int kvmkit_uart_connect_irq(struct kvmkit_uart *u, struct kvmkit_line *line)
{
	if (!line)
		return kvmk_err_param("kvmkit_uart_connect_irq", "line", "no line", "NULL");
	pthread_mutex_lock(&u->lock);
	u->line = line;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

size_t kvmkit_uart_output(struct kvmkit_uart *u, char *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&u->lock);
	n = u->out_len < len ? u->out_len : len;
	memcpy(buf, u->out, n);
	pthread_mutex_unlock(&u->lock);
	return n;
}

/* ---- saved state ---------------------------------------------------------- */

/* u32 version, the 7 byte registers, flags (1 overrun, 2 THRE interrupt
 * latched), u32 rx count + bytes, u32 tx count + bytes (guest output not yet
 * written out: it is queued again on restore). */
#define UART_STATE_VERSION 1u

int kvmk_uart_save(struct kvmkit_uart *u, struct kvmk_blob *out)
{
	uint8_t regs[8];
	int r;

	pthread_mutex_lock(&u->lock);
	regs[0] = u->ier;
	regs[1] = u->lcr;
	regs[2] = u->mcr;
	regs[3] = u->scr;
	regs[4] = u->dll;
	regs[5] = u->dlm;
	regs[6] = u->fcr;
	regs[7] = (uint8_t)((u->overrun ? 1 : 0) | (u->thre_pending ? 2 : 0));
	r = kvmk_blob_put_u32(out, UART_STATE_VERSION);
	if (!r)
		r = kvmk_blob_put(out, regs, sizeof(regs));
	if (!r)
		r = kvmk_blob_put_u32(out, (uint32_t)u->rx_len);
	for (size_t i = 0; !r && i < u->rx_len; i++)
		r = kvmk_blob_put(out, &u->rx[(u->rx_head + i) % RX_CAP], 1);
	if (!r)
		r = kvmk_blob_put_u32(out, (uint32_t)u->tx_len);
	for (size_t i = 0; !r && i < u->tx_len; i++)
		r = kvmk_blob_put(out, &u->tx[(u->tx_head + i) % TX_CAP], 1);
	pthread_mutex_unlock(&u->lock);
	return r;
}

int kvmk_uart_restore(struct kvmkit_uart *u, const uint8_t *p, size_t len)
{
	struct kvmk_reader rd = { p, len, "uart restore" };
	uint32_t version, nrx, ntx;
	const uint8_t *rx, *tx;
	uint8_t regs[8];
	int r = kvmk_reader_u32(&rd, &version, "UART version");

	if (!r && version != UART_STATE_VERSION)
		r = kvmk_err_format(rd.op, "UART state version %u, this kvmkit reads %u", version,
				    UART_STATE_VERSION);
	if (!r)
		r = kvmk_reader_get(&rd, regs, sizeof(regs), "UART registers");
	if (!r && ((regs[0] & ~0x0f) || (regs[2] & ~0x1f) || (regs[6] & ~0xc9) || (regs[7] & ~3)))
		r = kvmk_err_format(rd.op, "UART registers with reserved bits: ier 0x%x mcr 0x%x fcr 0x%x flags 0x%x",
				    regs[0], regs[2], regs[6], regs[7]);
	if (!r)
		r = kvmk_reader_u32(&rd, &nrx, "UART rx count");
	if (!r && nrx > RX_CAP)
		r = kvmk_err_format(rd.op, "UART rx count %u > %d", nrx, RX_CAP);
	rx = rd.p;
	if (!r && nrx > rd.left)
		r = kvmk_err_format(rd.op, "UART rx bytes: truncated");
	if (!r) {
		rd.p += nrx;
		rd.left -= nrx;
		r = kvmk_reader_u32(&rd, &ntx, "UART tx count");
	}
	if (!r && ntx > TX_CAP)
		r = kvmk_err_format(rd.op, "UART tx count %u > %d", ntx, TX_CAP);
	tx = rd.p;
	if (!r && ntx != rd.left)
		r = kvmk_err_format(rd.op, "UART tx bytes: %u announced, %zu present", ntx, rd.left);
	if (r)
		return r;
	pthread_mutex_lock(&u->lock);
	u->ier = regs[0];
	u->lcr = regs[1];
	u->mcr = regs[2];
	u->scr = regs[3];
	u->dll = regs[4];
	u->dlm = regs[5];
	u->fcr = regs[6];
	u->overrun = regs[7] & 1;
	u->rx_head = 0;
	u->rx_len = nrx;
	memcpy(u->rx, rx, nrx);
	/* Output the guest had sent goes out as if sent now. */
	for (uint32_t i = 0; i < ntx; i++)
		transmit(u, tx[i]);
	u->thre_pending = (regs[7] & 2) && !u->held;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}
