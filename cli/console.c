// SPDX-License-Identifier: MIT
/*
 * The guest console: stdin to the UART's receive FIFO on a thread, the
 * terminal in raw mode while the guest runs (restored on every exit path),
 * and Ctrl-A x to stop the VM, as in other VMMs.
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
			size_t took = kvmkit_uart_feed(c->uart, out + off, n - off);

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

struct console *console_start(struct kvmkit_vm *vm, struct kvmkit_uart *uart)
{
	struct console *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->vm = vm;
	c->uart = uart;
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
	free(c);
}
