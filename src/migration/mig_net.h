/* SPDX-License-Identifier: MIT */
/*
 * Migration addresses and sockets: "unix:PATH" and "tcp:HOST:PORT" parsed
 * strictly, connect and listen/accept with time limits, whole sends and
 * receives whose failures (peer gone, time out) are recorded errors, never
 * signals (MSG_NOSIGNAL). Internal.
 */
#ifndef KVMKIT_MIGRATION_MIG_NET_H
#define KVMKIT_MIGRATION_MIG_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

struct kvmk_mig_addr {
	bool is_unix;
	char path[108]; /* unix */
	char host[256]; /* tcp, without brackets */
	char port[6];
};

/* Longest address string kvmk_mig_listen() writes. */
#define KVMK_MIG_ADDR_MAX 300

/* @listen allows tcp port 0. -EINVAL (KVMKIT_ERR_PARAM, @op) when bad. */
int kvmk_mig_addr_parse(const char *s, bool listen, const char *op, struct kvmk_mig_addr *a);
int kvmk_mig_connect(const struct kvmk_mig_addr *a, int timeout_ms, const char *op, int *fd);
/* Listens (backlog 1); @bound gets the address a source should use. A
 * unix path that exists already is refused (-EEXIST). */
int kvmk_mig_listen(const struct kvmk_mig_addr *a, const char *op, int *fd, char *bound,
		    size_t len);
/* One connection within @timeout_ms (-1: no limit). */
int kvmk_mig_accept(int lfd, int timeout_ms, const char *op, int *fd);
/* Send and receive time limits for @fd (-1: none); a unix socket also
 * gets larger buffers. */
int kvmk_mig_set_timeout(int fd, int timeout_ms, const char *op);
/* All of @iov: 0, or the socket's error (-ETIMEDOUT for a stalled peer). */
int kvmk_mig_net_send(int fd, struct iovec *iov, int n, const char *op);
/* Exactly @len bytes; a peer that closes first is -EPIPE. */
int kvmk_mig_net_recv(int fd, void *buf, size_t len, const char *op);

#endif
