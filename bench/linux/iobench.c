// SPDX-License-Identifier: MIT
/*
 * iobench: the Linux I/O benchmark's measuring tool (bench/linux_io.sh),
 * linked -static so that it runs in the busybox initramfs and in the
 * emulated host alike. Each mode prints one line:
 *
 *   IOBENCH <mode> key=value ...
 *
 *   seqwrite DEV MIB        MIB MiB in 1 MiB O_DIRECT writes from offset 0,
 *                           then fdatasync (inside the time)
 *   seqread DEV MIB         MIB MiB in 1 MiB O_DIRECT reads from offset 0
 *   randread DEV SECS NPROC SEED
 *                           NPROC processes (queue depth NPROC), each doing
 *                           4 KiB O_DIRECT reads at random 4 KiB-aligned
 *                           offsets of the whole device (xorshift64, seeded
 *                           SEED + process number) for SECS seconds
 *   tcp-recv PORT COUNT     accepts COUNT connections one after the other
 *                           and reads each to EOF; the time runs from the
 *                           first byte to EOF (one line per connection)
 *   tcp-send ADDR PORT MIB WAIT COUNT
 *                           COUNT times: connects (retrying for WAIT
 *                           seconds: the receiver may not listen yet),
 *                           writes MIB MiB, waits for the receiver to close
 *
 * MB/s are 10^6 bytes per second.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define MIB (1024u * 1024u)
#define NET_BUF (256u * 1024u)
#define MAX_PROCS 16

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "iobench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *aligned_buf(size_t len)
{
	void *p;

	if (posix_memalign(&p, 4096, len))
		die("posix_memalign");
	memset(p, 0x5a, len);
	return p;
}

static int seq(const char *dev, unsigned long mib, int write)
{
	int fd = open(dev, (write ? O_WRONLY : O_RDONLY) | O_DIRECT);
	char *buf = aligned_buf(MIB);
	double t0, t;

	if (fd < 0)
		die(dev);
	t0 = now_s();
	for (unsigned long i = 0; i < mib; i++) {
		ssize_t n = write ? pwrite(fd, buf, MIB, (off_t)i * MIB) :
				    pread(fd, buf, MIB, (off_t)i * MIB);

		if (n != (ssize_t)MIB)
			die(write ? "pwrite" : "pread");
	}
	if (write && fdatasync(fd))
		die("fdatasync");
	t = now_s() - t0;
	printf("IOBENCH %s bytes=%lu secs=%.3f mbs=%.1f\n", write ? "seqwrite" : "seqread",
	       mib * MIB, t, (double)mib * MIB / t / 1e6);
	close(fd);
	free(buf);
	return 0;
}

struct rr_slot {
	unsigned long ops;
	double end;
	int err;
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void rr_child(const char *dev, uint64_t blocks, double start, double end, uint64_t seed,
		     struct rr_slot *slot)
{
	int fd = open(dev, O_RDONLY | O_DIRECT);
	char *buf = aligned_buf(4096);
	struct timespec ts = { (time_t)start, (long)((start - (double)(time_t)start) * 1e9) };
	uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
	unsigned long ops = 0;

	if (fd < 0) {
		slot->err = errno;
		_exit(1);
	}
	/* Every process starts at the same instant. */
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	while (now_s() < end) {
		off_t off = (off_t)(xorshift(&s) % blocks) * 4096;

		if (pread(fd, buf, 4096, off) != 4096) {
			slot->err = errno ? errno : EIO;
			_exit(1);
		}
		ops++;
	}
	slot->ops = ops;
	slot->end = now_s();
	_exit(0);
}

static int randread(const char *dev, double secs, int nproc, uint64_t seed)
{
	struct rr_slot *slots;
	uint64_t size = 0;
	unsigned long ops = 0;
	double start, end, last = 0;
	int fd = open(dev, O_RDONLY);

	if (fd < 0)
		die(dev);
	/* A block device, or a file (a try-out outside the guest). */
	if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
		struct stat st;

		if (fstat(fd, &st))
			die("fstat");
		size = (uint64_t)st.st_size;
	}
	close(fd);
	if (nproc < 1 || nproc > MAX_PROCS || size < 4096) {
		fprintf(stderr, "iobench: randread: 1..%d processes on a device of 4 KiB or more\n",
			MAX_PROCS);
		return 2;
	}
	slots = mmap(NULL, sizeof(*slots) * MAX_PROCS, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED)
		die("mmap");
	memset(slots, 0, sizeof(*slots) * MAX_PROCS);
	start = now_s() + 0.2;
	end = start + secs;
	for (int i = 0; i < nproc; i++) {
		pid_t p = fork();

		if (p < 0)
			die("fork");
		if (p == 0)
			rr_child(dev, size / 4096, start, end, seed + (uint64_t)i, &slots[i]);
	}
	for (int i = 0; i < nproc; i++) {
		int st;

		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
			for (int j = 0; j < nproc; j++)
				if (slots[j].err)
					fprintf(stderr, "iobench: randread: reader %d: %s\n", j,
						strerror(slots[j].err));
			fprintf(stderr, "iobench: randread: a reader failed\n");
			return 1;
		}
	}
	for (int i = 0; i < nproc; i++) {
		ops += slots[i].ops;
		if (slots[i].end > last)
			last = slots[i].end;
	}
	printf("IOBENCH randread qd=%d ops=%lu secs=%.3f iops=%.0f\n", nproc, ops, last - start,
	       (double)ops / (last - start));
	return 0;
}

static int tcp_recv(int port, int count)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char *buf = malloc(NET_BUF);
	int one = 1, l;

	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || !buf)
		die("socket");
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
		die("bind/listen");
	printf("IOBENCH tcp-listening port=%d\n", port);
	for (int i = 0; i < count; i++) {
		unsigned long long bytes = 0;
		double t0 = 0, t;
		int c = accept(l, NULL, NULL);

		if (c < 0)
			die("accept");
		for (;;) {
			ssize_t n = read(c, buf, NET_BUF);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				die("read");
			if (n == 0)
				break;
			if (!bytes)
				t0 = now_s();
			bytes += (unsigned long long)n;
		}
		t = now_s() - t0;
		printf("IOBENCH tcp-recv bytes=%llu secs=%.3f mbs=%.1f\n", bytes, t,
		       t > 0 ? (double)bytes / t / 1e6 : 0.0);
		close(c);
	}
	close(l);
	free(buf);
	return 0;
}

static int tcp_send_one(const char *addr, int port, unsigned long mib, double wait)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char *buf = aligned_buf(NET_BUF);
	unsigned long long left = (unsigned long long)mib * MIB;
	double deadline = now_s() + wait, t0, t;
	int s = -1;

	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
		fprintf(stderr, "iobench: %s: not an IPv4 address\n", addr);
		return 2;
	}
	for (;;) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0)
			die("socket");
		if (!connect(s, (struct sockaddr *)&a, sizeof(a)))
			break;
		close(s);
		if (now_s() > deadline)
			die("connect");
		usleep(200000);
	}
	t0 = now_s();
	while (left) {
		size_t want = left < NET_BUF ? (size_t)left : NET_BUF;
		ssize_t n = write(s, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write");
		left -= (unsigned long long)n;
	}
	shutdown(s, SHUT_WR);
	/* Until the receiver closes: everything has arrived. */
	while (read(s, buf, NET_BUF) > 0)
		;
	t = now_s() - t0;
	printf("IOBENCH tcp-send bytes=%llu secs=%.3f mbs=%.1f\n", (unsigned long long)mib * MIB, t,
	       (double)mib * MIB / t / 1e6);
	close(s);
	free(buf);
	return 0;
}

static int tcp_send(const char *addr, int port, unsigned long mib, double wait, int count)
{
	for (int i = 0; i < count; i++) {
		int r = tcp_send_one(addr, port, mib, wait);

		if (r)
			return r;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A peer that never comes must not hang the benchmark. */
	alarm(240);
	if (!strcmp(m, "seqwrite") && argc == 4)
		return seq(argv[2], strtoul(argv[3], NULL, 0), 1);
	if (!strcmp(m, "seqread") && argc == 4)
		return seq(argv[2], strtoul(argv[3], NULL, 0), 0);
	if (!strcmp(m, "randread") && argc == 6)
		return randread(argv[2], strtod(argv[3], NULL), atoi(argv[4]),
				strtoull(argv[5], NULL, 0));
	if (!strcmp(m, "tcp-recv") && argc == 4)
		return tcp_recv(atoi(argv[2]), atoi(argv[3]));
	if (!strcmp(m, "tcp-send") && argc == 7)
		return tcp_send(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 0),
				strtod(argv[5], NULL), atoi(argv[6]));
	fprintf(stderr, "usage: iobench seqwrite|seqread DEV MIB\n"
			"       iobench randread DEV SECS NPROC SEED\n"
			"       iobench tcp-recv PORT COUNT\n"
			"       iobench tcp-send ADDR PORT MIB WAIT_SECS COUNT\n");
	return 2;
}
