// SPDX-License-Identifier: MIT
/*
 * The guest console: stdin to the UART's receive FIFO on a thread, the
 * terminal in raw mode while the guest runs (restored on every exit path),
 * Ctrl-A x to stop the VM, as in other VMMs, and Ctrl-A s to snapshot it
 * into the next free DIR/snapshot-N of `--snapshot-dir DIR` (pause, save,
 * resume; refused with a line when no directory was given). The escapes
 * work on a terminal only: piped input reaches the guest byte for byte. Output to stdout is the
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

#include <limits.h>
#include <sys/stat.h>

#include <kvmkit/kvmkit.h>
#include <kvmkit/snapshot.h>

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

/* Snapshot directories DIR/snapshot-1 .. -MAX_SNAPSHOTS. */
#define MAX_SNAPSHOTS 9999

struct console {
	struct kvmkit_machine *m;
	struct kvmkit_vm *vm;
	struct kvmkit_uart *uart;
	const char *snapshot_dir;
	struct kvmkit_virtio *vcon; /* --console virtio: input goes there */
	pthread_t thread;
	int wake[2];
	bool running;
};

/* Ctrl-A s: pause (if running), save into the next free snapshot-N of the
 * configured directory, resume what was paused here; one line on stderr
 * either way. The VM keeps running whatever happens. */
static void console_snapshot(struct console *c)
{
	enum kvmkit_vm_state st = kvmkit_vm_state(c->vm);
	bool paused_here = false;
	char path[PATH_MAX];
	unsigned int n;
	int r;

	if (!c->snapshot_dir) {
		fprintf(stderr, "kvmkit: Ctrl-A s: no snapshot directory (start kvmkit run with "
				"--snapshot-dir DIR)\n");
		return;
	}
	if (mkdir(c->snapshot_dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "kvmkit: Ctrl-A s: %s: %s\n", c->snapshot_dir, strerror(errno));
		return;
	}
	for (n = 1; n <= MAX_SNAPSHOTS; n++) {
		struct stat sb;

		if (snprintf(path, sizeof(path), "%s/snapshot-%u", c->snapshot_dir, n) >=
		    (int)sizeof(path)) {
			fprintf(stderr, "kvmkit: Ctrl-A s: %s: name too long\n", c->snapshot_dir);
			return;
		}
		if (lstat(path, &sb) && errno == ENOENT)
			break;
	}
	if (n > MAX_SNAPSHOTS) {
		fprintf(stderr, "kvmkit: Ctrl-A s: %s holds %u snapshots already\n",
			c->snapshot_dir, MAX_SNAPSHOTS);
		return;
	}
	if (st == KVMKIT_VM_RUNNING) {
		if (kvmkit_vm_pause(c->vm)) {
			cli_fail("Ctrl-A s: pause");
			return;
		}
		paused_here = true;
	} else if (st != KVMKIT_VM_PAUSED) {
		fprintf(stderr, "kvmkit: Ctrl-A s: the VM is %s\n", kvmkit_vm_state_name(st));
		return;
	}
	r = kvmkit_machine_snapshot(c->m, path);
	if (r)
		cli_fail("Ctrl-A s");
	else
		fprintf(stderr, "kvmkit: Ctrl-A s: snapshot written to %s\n", path);
	if (paused_here && kvmkit_vm_resume(c->vm))
		cli_fail("Ctrl-A s: resume");
}

/* Feeds @n bytes to the UART, retrying while its FIFO is full (the guest
 * drains it); false if the console is told to stop meanwhile. */
static bool feed_all(struct console *c, const uint8_t *p, size_t n)
{
	for (size_t off = 0; off < n;) {
		/* The FIFO may be full: retry until the guest drains it. */
		size_t took = c->vcon ? kvmkit_virtio_console_feed(c->vcon, p + off, n - off) :
					kvmkit_uart_feed(c->uart, p + off, n - off);

		off += took;
		if (!took) {
			struct pollfd w = { .fd = c->wake[0], .events = POLLIN };

			if (poll(&w, 1, 10) > 0)
				return false;
		}
	}
	return true;
}

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
				if (buf[i] == 's') {
					/* What was typed before it goes in first. */
					if (!feed_all(c, out, n))
						return NULL;
					n = 0;
					console_snapshot(c);
					continue;
				}
				if (buf[i] != CTRL_A)
					out[n++] = CTRL_A;
			} else if (buf[i] == CTRL_A && tio_saved) {
				escape = true;
				continue;
			}
			out[n++] = buf[i];
		}
		if (!feed_all(c, out, n))
			return NULL;
	}
	return NULL;
}

struct console *console_start(struct kvmkit_machine *m, const char *snapshot_dir)
{
	struct console *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->m = m;
	c->vm = kvmkit_machine_vm(m);
	c->uart = kvmkit_machine_uart(m);
	c->snapshot_dir = snapshot_dir;
	c->vcon = kvmkit_machine_virtio_console(m);
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
