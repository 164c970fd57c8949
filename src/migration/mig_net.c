// SPDX-License-Identifier: MIT
/*
 * Migration addresses and sockets (mig_net.h). Addresses come from users
 * and control-socket clients: anything but the two forms is refused with
 * the reason, before any socket exists.
 */
#include <ctype.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "migrate"
#include "core/internal.h"
#include "migration/mig_net.h"
#include <kvmkit/migrate.h>

static int bad_addr(const char *op, const char *s, const char *why)
{
	return kvmk_err_param(op, "address", why, "%.80s", s);
}

/* Digits only, 0..65535 (1.. unless @listen). */
static bool port_ok(const char *p, bool listen)
{
	size_t n = strlen(p);
	unsigned long v;

	if (!n || n > 5)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)p[i]))
			return false;
	v = strtoul(p, NULL, 10);
	return v <= 65535 && (v || listen);
}

static bool host_ok(const char *h, size_t n, bool v6)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!(isalnum(c) || c == '.' || c == '-' || (v6 && (c == ':' || c == '%'))))
			return false;
	}
	return true;
}

int kvmk_mig_addr_parse(const char *s, bool listen, const char *op, struct kvmk_mig_addr *a)
{
	const char *hp, *colon, *host;
	size_t hn;
	bool v6 = false;

	memset(a, 0, sizeof(*a));
	if (!s)
		return kvmk_err_param(op, "address", "is missing", "%s", "NULL");
	if (!strncmp(s, "unix:", 5)) {
		if (!s[5])
			return bad_addr(op, s, "unix: needs a path");
		if (strlen(s + 5) >= sizeof(a->path))
			return bad_addr(op, s, "unix path longer than 107 bytes");
		a->is_unix = true;
		strcpy(a->path, s + 5);
		return 0;
	}
	if (strncmp(s, "tcp:", 4))
		return bad_addr(op, s, "not unix:PATH or tcp:HOST:PORT");
	hp = s + 4;
	if (*hp == '[') {
		const char *end = strchr(hp, ']');

		if (!end || end[1] != ':')
			return bad_addr(op, s, "tcp:[IPv6]:PORT needs ']' then ':'");
		host = hp + 1;
		hn = (size_t)(end - host);
		colon = end + 1;
		v6 = true;
	} else {
		colon = strchr(hp, ':');
		if (!colon || strchr(colon + 1, ':'))
			return bad_addr(op, s, "tcp: needs HOST:PORT (IPv6 hosts in brackets)");
		host = hp;
		hn = (size_t)(colon - hp);
	}
	if (!host_ok(host, hn, v6) || hn >= sizeof(a->host))
		return bad_addr(op, s, "tcp: bad host");
	if (!port_ok(colon + 1, listen))
		return bad_addr(op, s,
				listen ? "tcp: port must be 0..65535" :
					 "tcp: port must be 1..65535");
	memcpy(a->host, host, hn);
	strcpy(a->port, colon + 1);
	return 0;
}

int kvmkit_migrate_check_address(const char *addr, bool listen)
{
	struct kvmk_mig_addr a;

	return kvmk_mig_addr_parse(addr, listen, "kvmkit_migrate_check_address", &a);
}

static void unix_sa(const struct kvmk_mig_addr *a, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, a->path, strlen(a->path));
}

static int resolve(const struct kvmk_mig_addr *a, bool passive, const char *op,
		   struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0) };
	int e = getaddrinfo(a->host, a->port, &hints, res);

	if (e)
		return kvmk_err_sys(op, e == EAI_SYSTEM ? errno : EHOSTUNREACH, "tcp:%s:%s: %s",
				    a->host, a->port, gai_strerror(e));
	return 0;
}

static void tcp_opts(int fd)
{
	int one = 1;

	/* Small records (the replies) must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A non-blocking connect bounded by @timeout_ms. */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
	int fl = fcntl(fd, F_GETFL), err = 0;
	socklen_t el = sizeof(err);
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return errno;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			return errno;
		for (;;) {
			int n = poll(&p, 1, timeout_ms);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return errno;
			if (!n)
				return ETIMEDOUT;
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			return errno;
		if (err)
			return err;
	}
	return fcntl(fd, F_SETFL, fl) < 0 ? errno : 0;
}

int kvmk_mig_connect(const struct kvmk_mig_addr *a, int timeout_ms, const char *op, int *fd)
{
	struct addrinfo *res, *ai;
	int e = 0, r;

	*fd = -1;
	if (a->is_unix) {
		struct sockaddr_un sa;

		unix_sa(a, &sa);
		*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (*fd < 0)
			return kvmk_err_sys(op, errno, "socket");
		e = connect_within(*fd, (struct sockaddr *)&sa, sizeof(sa), timeout_ms);
		if (e) {
			close(*fd);
			*fd = -1;
			return kvmk_err_sys(op, e, "connecting to unix:%s", a->path);
		}
		return 0;
	}
	r = resolve(a, false, op, &res);
	if (r)
		return r;
	for (ai = res; ai; ai = ai->ai_next) {
		*fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (*fd < 0) {
			e = errno;
			continue;
		}
		e = connect_within(*fd, ai->ai_addr, ai->ai_addrlen, timeout_ms);
		if (!e)
			break;
		close(*fd);
		*fd = -1;
	}
	freeaddrinfo(res);
	if (*fd < 0)
		return kvmk_err_sys(op, e ? e : EHOSTUNREACH, "connecting to tcp:%s:%s", a->host,
				    a->port);
	tcp_opts(*fd);
	return 0;
}

int kvmk_mig_listen(const struct kvmk_mig_addr *a, const char *op, int *fd, char *bound, size_t len)
{
	struct addrinfo *res;
	int one = 1, r;

	if (a->is_unix) {
		struct sockaddr_un sa;
		struct stat st;

		/* Never replace a file, even a stale socket: the user names it. */
		if (!lstat(a->path, &st))
			return kvmk_err_sys(op, EEXIST, "unix:%s exists already", a->path);
		unix_sa(a, &sa);
		*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (*fd < 0)
			return kvmk_err_sys(op, errno, "socket");
		if (bind(*fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(a->path, 0600) < 0 ||
		    listen(*fd, 1) < 0) {
			r = kvmk_err_sys(op, errno, "listening on unix:%s", a->path);
			close(*fd);
			*fd = -1;
			unlink(a->path);
			return r;
		}
		snprintf(bound, len, "unix:%s", a->path);
		return 0;
	}
	r = resolve(a, true, op, &res);
	if (r)
		return r;
	*fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (*fd < 0 || setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(*fd, res->ai_addr, res->ai_addrlen) < 0 || listen(*fd, 1) < 0) {
		r = kvmk_err_sys(op, errno, "listening on tcp:%s:%s", a->host, a->port);
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		unsigned int port = 0;

		if (!getsockname(*fd, (struct sockaddr *)&ss, &sl))
			port = ss.ss_family == AF_INET6 ?
				       ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
				       ntohs(((struct sockaddr_in *)&ss)->sin_port);
		snprintf(bound, len, strchr(a->host, ':') ? "tcp:[%s]:%u" : "tcp:%s:%u", a->host,
			 port);
	}
	return 0;
}

int kvmk_mig_accept(int lfd, int timeout_ms, const char *op, int *fd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	for (;;) {
		int n = poll(&p, 1, timeout_ms);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kvmk_err_sys(op, errno, "waiting for a source");
		if (!n)
			return kvmk_err_sys(op, ETIMEDOUT, "no source connected within %d ms",
					    timeout_ms);
		break;
	}
	*fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (*fd < 0)
		return kvmk_err_sys(op, errno, "accepting a source");
	tcp_opts(*fd); /* harmless on a unix socket: it fails */
	return 0;
}

/* Unix socket buffers of a few MiB let a 1 MiB record go out in one call
 * and the two ends run without waiting for each other at every 200 KiB
 * (the kernel caps the request at net.core.[rw]mem_max; failure is
 * harmless). TCP keeps its autotuning, which a fixed size would turn off. */
#define UNIX_SOCK_BUF (4 << 20)

int kvmk_mig_set_timeout(int fd, int timeout_ms, const char *op)
{
	struct timeval tv = { 0, 0 };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int buf = UNIX_SOCK_BUF;

	if (!getsockname(fd, (struct sockaddr *)&ss, &sl) && ss.ss_family == AF_UNIX) {
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	}

	if (timeout_ms > 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return kvmk_err_sys(op, errno, "socket time limits");
	return 0;
}

int kvmk_mig_net_send(int fd, struct iovec *iov, int n, const char *op)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };

	while (mh.msg_iovlen) {
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return kvmk_err_sys(op, errno == EAGAIN ? ETIMEDOUT : errno,
					    "sending to the peer");
		while (mh.msg_iovlen && (size_t)w >= mh.msg_iov->iov_len) {
			w -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + w;
			mh.msg_iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int kvmk_mig_net_recv(int fd, void *buf, size_t len, const char *op)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kvmk_err_sys(op, errno == EAGAIN ? ETIMEDOUT : errno,
					    "receiving from the peer");
		if (!n)
			return kvmk_err_sys(op, EPIPE, "the peer closed the connection");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
