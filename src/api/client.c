// SPDX-License-Identifier: MIT
/* A control-socket client: one request, one reply line (the CLI's thin
 * clients and the tests use it). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "core/internal.h"

#define KVMK_LOG_MODULE "api"

/* Longest reply accepted (a query of a large VM is well below). */
#define MAX_REPLY (16u << 20)

/* Milliseconds left until @deadline_ns, -1 for none; 0 once passed. */
static int left_ms(uint64_t deadline_ns)
{
	uint64_t now = kvmk_now_ns();

	if (!deadline_ns)
		return -1;
	return now >= deadline_ns ? 0 : (int)((deadline_ns - now + 999999) / 1000000);
}

/* Waits for @events on @fd; 0, or a negative errno (recorded). */
static int wait_fd(int fd, short events, uint64_t deadline_ns, const char *path)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int ms = left_ms(deadline_ns);
		int r;

		if (ms == 0)
			return kvmk_err_sys("kvmkit_api_call", ETIMEDOUT, "%s: no reply", path);
		r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return kvmk_err_sys("poll", errno, "%s", path);
	}
}

static int connect_to(const char *path, int *fd)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(addr.sun_path))
		return kvmk_err_param("kvmkit_api_call", "path",
				      "longer than a unix socket path can be (107 bytes)", "%s",
				      path);
	memcpy(addr.sun_path, path, strlen(path) + 1);
	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return kvmk_err_sys("socket", errno, "AF_UNIX");
	if (connect(*fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;

		close(*fd);
		*fd = -1;
		return kvmk_err_sys("connect", e, "%s", path);
	}
	return 0;
}

static int send_all(int fd, const char *buf, size_t len, uint64_t deadline_ns, const char *path)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		int r;

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return kvmk_err_sys("send", errno, "%s", path);
		r = wait_fd(fd, POLLOUT, deadline_ns, path);
		if (r)
			return r;
	}
	return 0;
}

/* Reads up to the first newline into a malloc'ed string (without it). */
static int recv_line(int fd, uint64_t deadline_ns, const char *path, char **out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int r = 0;

	if (!buf)
		return kvmk_err_resource("kvmkit_api_call", ENOMEM, "reply buffer");
	for (;;) {
		char *nl;
		ssize_t n;

		if (len + 1 >= cap) {
			char *p = cap < MAX_REPLY ? realloc(buf, cap * 2) : NULL;

			if (!p) {
				r = cap < MAX_REPLY ?
					    kvmk_err_resource("kvmkit_api_call", ENOMEM, "reply") :
					    kvmk_err_sys("kvmkit_api_call", EPROTO,
							 "%s: reply longer than %u bytes", path,
							 MAX_REPLY);
				break;
			}
			buf = p;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - 1 - len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			r = wait_fd(fd, POLLIN, deadline_ns, path);
			if (r)
				break;
			continue;
		}
		if (n < 0) {
			r = kvmk_err_sys("recv", errno, "%s", path);
			break;
		}
		if (n == 0) {
			r = kvmk_err_sys("kvmkit_api_call", EPROTO,
					 "%s: the server closed the connection without a reply",
					 path);
			break;
		}
		nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl) {
			*nl = '\0';
			*out = buf;
			return 0;
		}
	}
	free(buf);
	return r;
}

int kvmkit_api_call(const char *path, const char *request, int timeout_ms, char **reply)
{
	uint64_t deadline = timeout_ms >= 0 ? kvmk_now_ns() + (uint64_t)timeout_ms * 1000000u : 0;
	size_t len;
	char *line;
	int fd = -1, r;

	if (!reply)
		return kvmk_err_param("kvmkit_api_call", "reply", "is NULL", "%s", "NULL");
	*reply = NULL;
	if (!path || !request)
		return kvmk_err_param("kvmkit_api_call", path ? "request" : "path", "is NULL", "%s",
				      "NULL");
	len = strlen(request);
	if (memchr(request, '\n', len))
		return kvmk_err_param("kvmkit_api_call", "request", "holds a newline", "%.40s",
				      request);
	line = malloc(len + 1);
	if (!line)
		return kvmk_err_resource("kvmkit_api_call", ENOMEM, "request");
	memcpy(line, request, len);
	line[len] = '\n';
	r = connect_to(path, &fd);
	if (!r) {
		r = send_all(fd, line, len + 1, deadline, path);
		if (!r)
			r = recv_line(fd, deadline, path, reply);
		close(fd);
	}
	free(line);
	return r;
}
