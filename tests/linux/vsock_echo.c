// SPDX-License-Identifier: MIT
/*
 * vsock round trip for the Linux boot test (tests/linux/run-in-host.sh),
 * built static so that the same binary runs in the emulated host and in the
 * guest's busybox initramfs.
 *
 *   vsock_echo serve PORT MSG LEN       (host: listens on VMADDR_CID_ANY)
 *   vsock_echo connect CID PORT MSG LEN (guest: CID 2 is the host)
 *
 * The message is MSG repeated to LEN bytes, so that it spans several
 * virtio-vsock packets. The client sends it and shuts its sending side; the
 * server reads to the end, checks it, echoes what it got and closes; the
 * client reads the echo to the end and checks it. Each side prints one
 * KVMKIT-VSOCK- line with what it saw and exits 0 only if that matched.
 * An alarm ends a side that waits too long (status 3).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define MAX_LEN (1u << 20)
#define WAIT_S 90

static void on_alarm(int sig)
{
	static const char msg[] = "vsock_echo: timed out\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to say: the status tells */
	}
	_exit(3);
}

static char *pattern(const char *msg, size_t len)
{
	size_t m = strlen(msg);
	char *p = m ? malloc(len) : NULL;

	if (!p)
		return NULL;
	for (size_t i = 0; i < len; i++)
		p[i] = msg[i % m];
	return p;
}

/* Reads until EOF or cap bytes; returns the count, or -1. */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int serve(unsigned int port, const char *want, size_t len)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK,
				 .svm_cid = VMADDR_CID_ANY,
				 .svm_port = port };
	struct sockaddr_vm peer;
	socklen_t plen = sizeof(peer);
	char *buf = malloc(MAX_LEN);
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	int c, same;
	ssize_t got;

	if (!buf || s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 1)) {
		perror("vsock_echo: serve");
		return 1;
	}
	/* The test waits for this line before it starts the guest. */
	printf("KVMKIT-VSOCK-LISTENING port %u\n", port);
	fflush(stdout);
	c = accept(s, (struct sockaddr *)&peer, &plen);
	if (c < 0) {
		perror("vsock_echo: accept");
		return 1;
	}
	got = read_all(c, buf, MAX_LEN);
	if (got < 0) {
		perror("vsock_echo: read");
		return 1;
	}
	same = (size_t)got == len && !memcmp(buf, want, len);
	printf("KVMKIT-VSOCK-SERVER peer cid %u got %zd bytes, %s\n", peer.svm_cid, got,
	       same ? "as sent" : "NOT as sent");
	fflush(stdout);
	if (write_all(c, buf, (size_t)got)) {
		perror("vsock_echo: echo");
		return 1;
	}
	close(c);
	close(s);
	return same ? 0 : 1;
}

static int connect_to(unsigned int cid, unsigned int port, const char *msg, size_t len)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	char *buf = malloc(MAX_LEN);
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	ssize_t got;
	int same;

	if (!buf || s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a))) {
		perror("vsock_echo: connect");
		return 1;
	}
	if (write_all(s, msg, len) || shutdown(s, SHUT_WR)) {
		perror("vsock_echo: send");
		return 1;
	}
	got = read_all(s, buf, MAX_LEN);
	if (got < 0) {
		perror("vsock_echo: read");
		return 1;
	}
	same = (size_t)got == len && !memcmp(buf, msg, len);
	printf("KVMKIT-VSOCK-CLIENT sent %zu bytes, echo %zd bytes, %s\n", len, got,
	       same ? "as sent" : "NOT as sent");
	close(s);
	return same ? 0 : 1;
}

int main(int argc, char **argv)
{
	int serving = argc == 5 && !strcmp(argv[1], "serve");
	int connecting = argc == 6 && !strcmp(argv[1], "connect");
	unsigned long len = strtoul(argv[argc - 1], NULL, 0);
	char *msg;

	if ((!serving && !connecting) || !len || len > MAX_LEN) {
		fprintf(stderr,
			"usage: vsock_echo serve PORT MSG LEN | connect CID PORT MSG LEN\n"
			"(LEN from 1 to %u)\n",
			MAX_LEN);
		return 2;
	}
	msg = pattern(argv[argc - 2], len);
	if (!msg) {
		fprintf(stderr, "vsock_echo: empty message\n");
		return 2;
	}
	signal(SIGALRM, on_alarm);
	alarm(WAIT_S);
	if (serving)
		return serve((unsigned int)strtoul(argv[2], NULL, 0), msg, len);
	return connect_to((unsigned int)strtoul(argv[2], NULL, 0),
			  (unsigned int)strtoul(argv[3], NULL, 0), msg, len);
}
