// SPDX-License-Identifier: MIT
/*
 * The guest console: stdin to the UART's receive FIFO on a thread, the
 * terminal in raw mode while the guest runs (restored on every exit path),
 * and Ctrl-A x to stop the VM, as in other VMMs. Output to stdout is the
 * UART's own business (a writer thread of its own, so a stdout nobody reads
 * stalls no vCPU); at the end the console drains it before kvmkit's last
 * lines and says if guest output was dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <kvmkit/kvmkit.h>

#include "cli.h"

#define CTRL_A 0x01
/* How long the end of a run waits for buffered guest output to get out
 * (the UART gives up sooner when nothing moves for 100 ms). */
#define OUTPUT_DRAIN_MS 1000

static struct termios saved_tio;
static bool tio_saved;

static void restore_terminal(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
		tio_saved = false;
	}
}

struct console {
	struct kvmkit_vm *vm;
	struct kvmkit_uart *uart;
	struct kvmkit_virtio *vcon; /* --console virtio: input goes there */
	pthread_t thread;
	int wake[2];
	bool running;
};

static void *console_thread(void *arg)
{
	struct console *c = arg;
	bool escape = false;

	for (;;) {
		struct pollfd p[2] = { { .fd = STDIN_FILENO, .events = POLLIN },
				       { .fd = c->wake[0], .events = POLLIN } };
		uint8_t buf[256], out[256];
		size_t n = 0;
		ssize_t got;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		got = read(STDIN_FILENO, buf, sizeof(buf));
		if (got <= 0) {
			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			break; /* EOF: the guest keeps running without input */
		}
		for (ssize_t i = 0; i < got; i++) {
			if (escape) {
				escape = false;
				if (buf[i] == 'x') {
					kvmkit_vm_request_stop(c->vm, KVMKIT_STOP_REQUESTED, 0,
							       "Ctrl-A x on the console");
					return NULL;
				}
				if (buf[i] != CTRL_A)
					out[n++] = CTRL_A;
			} else if (buf[i] == CTRL_A && tio_saved) {
				escape = true;
				continue;
			}
			out[n++] = buf[i];
		}
		/* The FIFO may be full: retry until the guest drains it. */
		for (size_t off = 0; off < n;) {
			size_t took =
				c->vcon ? kvmkit_virtio_console_feed(c->vcon, out + off, n - off) :
					  kvmkit_uart_feed(c->uart, out + off, n - off);

			off += took;
			if (!took) {
				struct pollfd w = { .fd = c->wake[0], .events = POLLIN };

				if (poll(&w, 1, 10) > 0)
					return NULL;
			}
		}
	}
	return NULL;
}

struct console *console_start(struct kvmkit_vm *vm, struct kvmkit_uart *uart,
			      struct kvmkit_virtio *vcon)
{
	struct console *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->vm = vm;
	c->uart = uart;
	c->vcon = vcon;
	if (pipe2(c->wake, O_CLOEXEC) < 0) {
		free(c);
		return NULL;
	}
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		struct termios raw = saved_tio;

		/* Keys go to the guest as typed; output processing stays on. */
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
		raw.c_iflag &= ~(tcflag_t)(ICRNL | IXON);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0) {
			tio_saved = true;
			atexit(restore_terminal);
		}
	}
	if (pthread_create(&c->thread, NULL, console_thread, c)) {
		restore_terminal();
		close(c->wake[0]);
		close(c->wake[1]);
		free(c);
		return NULL;
	}
	c->running = true;
	return c;
}

/* The guest's last output reaches stdout before kvmkit's own last lines on
 * stderr. Dropped bytes are worth a line unless output failed outright: then
 * the stop reason (KVMKIT_STOP_HOST_ERROR) already says so. */
static void report_output(struct kvmkit_uart *uart)
{
	struct kvmkit_uart_stats st;

	kvmkit_uart_flush(uart, OUTPUT_DRAIN_MS);
	kvmkit_uart_stats(uart, &st);
	if (st.dropped && !st.out_error)
		fprintf(stderr,
			"kvmkit: console: %llu of %llu bytes of guest output dropped (stdout did not keep up and the guest ignored THRE)\n",
			(unsigned long long)st.dropped, (unsigned long long)st.tx_bytes);
}

void console_stop(struct console *c)
{
	if (!c)
		return;
	if (c->running) {
		ssize_t r = write(c->wake[1], "x", 1);

		(void)r;
		pthread_join(c->thread, NULL);
	}
	close(c->wake[0]);
	close(c->wake[1]);
	restore_terminal();
	if (!c->vcon)
		report_output(c->uart);
	free(c);
}
