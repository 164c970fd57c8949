/* SPDX-License-Identifier: MIT */
/*
 * Internal helpers shared by all kvmkit modules: recording structured errors
 * and logging. Not installed.
 */
#ifndef KVMKIT_CORE_INTERNAL_H
#define KVMKIT_CORE_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <kvmkit/error.h>
#include <kvmkit/log.h>

#define KVMKIT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Zeroed memory whose pages become resident only as they are written, for
 * large, sparsely used tables (zalloc.c; small sizes and ASan builds use
 * calloc). NULL when out of memory. kvmk_zfree() needs the same size. */
void *kvmk_zalloc(size_t size);
void kvmk_zfree(void *p, size_t size);

/* Each records the thread's error and returns -errno (negative). */
int kvmk_err_ioctl(const char *op, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int kvmk_err_sys(const char *op, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int kvmk_err_state(const char *object, const char *current, const char *expected, const char *op);
/* The same record with another errno than EBUSY (e.g. EDEADLK). */
int kvmk_err_state_code(int err, const char *object, const char *current, const char *expected,
			const char *op);
int kvmk_err_param(const char *op, const char *name, const char *reason, const char *vfmt, ...)
	__attribute__((format(printf, 4, 5)));
int kvmk_err_unsupported(const char *op, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int kvmk_err_resource(const char *op, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int kvmk_err_format(const char *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Teardown paths save and restore the caller's error so that cleaning up
 * never replaces the error that made the call fail. */
void kvmk_err_save(struct kvmkit_error *out);
void kvmk_err_restore(const struct kvmkit_error *saved);

/* Saved-state buffers (blob.c): a growable writer and a bounds-checked
 * reader whose short reads are KVMKIT_ERR_FORMAT errors naming @what. */
struct kvmk_blob {
	uint8_t *data;
	size_t len, cap;
};
int kvmk_blob_put(struct kvmk_blob *b, const void *data, size_t len);
int kvmk_blob_put_u32(struct kvmk_blob *b, uint32_t v); /* little-endian */
void kvmk_blob_free(struct kvmk_blob *b);

struct kvmk_reader {
	const uint8_t *p;
	size_t left;
	const char *op; /* names the operation in errors */
};
int kvmk_reader_get(struct kvmk_reader *r, void *out, size_t len, const char *what);
int kvmk_reader_u32(struct kvmk_reader *r, uint32_t *out, const char *what);

#define kvmk_log(level, ...)                                                                       \
	do {                                                                                       \
		if ((level) <= kvmkit_log_get_level())                                             \
			kvmkit_log((level), KVMK_LOG_MODULE, __VA_ARGS__);                        \
	} while (0)
#define kvmk_error(...) kvmk_log(KVMKIT_LOG_ERROR, __VA_ARGS__)
#define kvmk_warn(...) kvmk_log(KVMKIT_LOG_WARN, __VA_ARGS__)
#define kvmk_info(...) kvmk_log(KVMKIT_LOG_INFO, __VA_ARGS__)
#define kvmk_debug(...) kvmk_log(KVMKIT_LOG_DEBUG, __VA_ARGS__)
#define kvmk_trace(...) kvmk_log(KVMKIT_LOG_TRACE, __VA_ARGS__)

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines. */
static inline void kvmk_cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

static inline uint64_t kvmk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
