/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the benchmark programs: a monotonic clock, reading a
 * guest image, and the one-line result format the driver script parses:
 *
 *   RESULT <bench> <variant> key=value key=value ...
 *
 * Values are plain decimal numbers (integers or fixed-point), never quoted.
 */
#ifndef KVMKIT_BENCH_UTIL_H
#define KVMKIT_BENCH_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

/* KVM's supported CPUID, the table grown from @n entries as kvmkit grows
 * it (src/arch/x86/vcpu.c), so a bare program makes the same calls; NULL
 * (errno set) on failure. The caller frees it. */
static inline struct kvm_cpuid2 *bench_supported_cpuid(int kvm, unsigned int n)
{
	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG || n >= 4096)
			return NULL;
		n *= 2;
	}
}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Reads a whole file into a malloc'ed buffer; exits on failure (the
 * benchmarks have nothing sensible to do without their guest). */
static inline void *bench_read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= 0) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno ? errno : EINVAL));
		exit(1);
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		fprintf(stderr, "bench: out of memory reading %s\n", path);
		exit(1);
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n <= 0) {
			fprintf(stderr, "bench: reading %s: %s\n", path,
				n < 0 ? strerror(errno) : "short file");
			exit(1);
		}
		done += (size_t)n;
	}
	close(fd);
	*len = done;
	return buf;
}

/* Parses a non-negative decimal argument or exits with a usage error. */
static inline uint64_t bench_parse_u64(const char *what, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "bench: %s: not a number: '%s'\n", what, s);
		exit(2);
	}
	return v;
}

#endif
