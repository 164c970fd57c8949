/* SPDX-License-Identifier: MIT */
/*
 * Test clients of the control socket, well-behaved and not: raw
 * connections, reply lines read under a watchdog, and a pipelining client
 * that writes many requests while it reads the replies. Shared by
 * tests/unit/test_api.c and tests/kvm/test_api.c.
 */
#ifndef KVMKIT_TESTS_API_CLIENTS_H
#define KVMKIT_TESTS_API_CLIENTS_H

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* How long a test waits for a reply or a close before it fails: a
 * watchdog against a hung server, never a timing assertion. */
#define API_WAIT_MS 30000
#define API_WAIT_STR "30 s"

static inline int64_t api_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connected (blocking) socket, or -errno. */
static inline int api_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (strlen(path) >= sizeof(a.sun_path)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* Sends all of @buf; 0 or -errno (EPIPE when the server hung up). */
static inline int api_send(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct api_conn {
	int fd;
	char *buf; /* received, not yet returned: buf[0, len) */
	size_t len, cap;
	bool closed; /* EOF or ECONNRESET seen */
};

static inline void api_conn_init(struct api_conn *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
}

static inline void api_conn_close(struct api_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Reads once (waiting up to @ms); false on timeout or once closed. */
static inline bool api_conn_fill(struct api_conn *c, int ms)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	if (c->closed || poll(&p, 1, ms) <= 0)
		return false;
	if (c->len + 65536 > c->cap) {
		c->cap = (c->len + 65536) * 2;
		c->buf = realloc(c->buf, c->cap);
		if (!c->buf)
			abort();
	}
	n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (n <= 0) {
		c->closed = true; /* EOF, or ECONNRESET after the server cut us off */
		return false;
	}
	c->len += (size_t)n;
	return true;
}

/* The next reply line (malloc'ed, without its newline), or NULL if the
 * connection closed or nothing came within API_WAIT_MS. */
static inline char *api_conn_line(struct api_conn *c)
{
	int64_t deadline = api_now_ms() + API_WAIT_MS;

	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;

		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			char *line = malloc(n + 1);

			memcpy(line, c->buf, n);
			line[n] = '\0';
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return line;
		}
		if (api_now_ms() >= deadline)
			return NULL;
		if (!api_conn_fill(c, (int)(deadline - api_now_ms())) && c->closed)
			return NULL;
	}
}

/* True once the server has closed the connection with nothing more
 * unread, within API_WAIT_MS. */
static inline bool api_conn_wait_closed(struct api_conn *c)
{
	int64_t deadline = api_now_ms() + API_WAIT_MS;

	while (!c->closed && !c->len && api_now_ms() < deadline)
		api_conn_fill(c, (int)(deadline - api_now_ms()));
	return c->closed && !c->len;
}

/* One request on a fresh connection; its reply line, or NULL. */
static inline char *api_request(const char *path, const char *line)
{
	struct api_conn c;
	char *reply = NULL;
	int fd = api_connect(path);

	if (fd < 0)
		return NULL;
	api_conn_init(&c, fd);
	if (!api_send(fd, line, strlen(line)) && !api_send(fd, "\n", 1))
		reply = api_conn_line(&c);
	api_conn_close(&c);
	return reply;
}

/*
 * Writes @len bytes of requests on one connection while reading the
 * replies, as a client that pipelines must (the server stops reading from
 * a client that does not read its replies). Returns every reply byte
 * (malloc'ed, NUL-terminated) once @want lines have come, or NULL (saying
 * why on stderr). It gives up only when no reply came for API_WAIT_MS, not
 * after a total: the server answers at the pace it gets the CPU, which a
 * busy guest may share with it.
 */
static inline char *api_pipeline(const char *path, const char *reqs, size_t len, size_t want)
{
	int64_t deadline = api_now_ms() + API_WAIT_MS;
	size_t sent = 0, lines = 0, scanned = 0;
	struct api_conn c;
	int fd = api_connect(path);

	if (fd < 0) {
		fprintf(stderr, "FAIL: api_pipeline: connect: %s\n", strerror(-fd));
		return NULL;
	}
	api_conn_init(&c, fd);
	while (lines < want && api_now_ms() < deadline && !c.closed) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0) };
		size_t before = lines;

		if (poll(&p, 1, 1000) <= 0)
			continue;
		if ((p.revents & POLLOUT) && sent < len) {
			ssize_t n = send(fd, reqs + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n > 0)
				sent += (size_t)n;
		}
		if (p.revents & (POLLIN | POLLHUP))
			api_conn_fill(&c, 0);
		for (; scanned < c.len; scanned++)
			lines += c.buf[scanned] == '\n';
		if (lines > before) /* progress: the server is alive */
			deadline = api_now_ms() + API_WAIT_MS;
	}
	if (lines != want) {
		fprintf(stderr,
			"FAIL: api_pipeline: %zu of %zu replies, %zu of %zu request bytes sent: %s\n",
			lines, want, sent, len,
			c.closed ? "the server closed the connection" :
				   "no reply for " API_WAIT_STR);
		api_conn_close(&c);
		return NULL;
	}
	c.buf = realloc(c.buf, c.len + 1);
	c.buf[c.len] = '\0';
	close(fd);
	return c.buf;
}

/* Open file descriptors of this process (a leak check's measure). */
static inline unsigned int api_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Waits (bounded) until the process has @want fds again: the server closes
 * a departed client's fd on its own thread. True once it does. */
static inline bool api_fds_back_to(unsigned int want)
{
	int64_t deadline = api_now_ms() + API_WAIT_MS;
	unsigned int n;

	/* One count per check: the server thread may hold a passing fd, and a
	 * second read could see it after the first saw the right number. */
	while ((n = api_fd_count()) != want && api_now_ms() < deadline)
		usleep(1000);
	return n == want;
}

#endif
