/* SPDX-License-Identifier: MIT */
/*
 * kvmkit logging: levels chosen at run time (kvmkit_log_set_level(), or the
 * KVMKIT_LOG environment variable read on first use: error, warn, info,
 * debug, trace). Messages go to stderr unless a sink is installed.
 *
 * Threads: every call may come from any thread. The sink runs on the thread
 * that logs (vCPU threads included) under kvmkit's log lock, one call at a
 * time: keep it short and never block in it. It may log (that message goes
 * to stderr) and may replace the sink. @module and @msg are valid only
 * during the call.
 */
#ifndef KVMKIT_LOG_H
#define KVMKIT_LOG_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

enum kvmkit_log_level {
	KVMKIT_LOG_ERROR = 0,
	KVMKIT_LOG_WARN,
	KVMKIT_LOG_INFO,
	KVMKIT_LOG_DEBUG,
	KVMKIT_LOG_TRACE,
};

typedef void (*kvmkit_log_sink)(enum kvmkit_log_level level, const char *module, const char *msg,
				void *opaque);

void kvmkit_log_set_level(enum kvmkit_log_level level);
enum kvmkit_log_level kvmkit_log_get_level(void);

/* Parses "error".."trace" (or 0..4); returns 0 or -EINVAL. */
int kvmkit_log_parse_level(const char *s, enum kvmkit_log_level *out);
/* A static string. */
const char *kvmkit_log_level_name(enum kvmkit_log_level level);

/* Installs @sink (NULL restores stderr). Made from outside the sink, it
 * returns once the old sink is no longer running: its @opaque may be freed. */
void kvmkit_log_set_sink(kvmkit_log_sink sink, void *opaque);

void kvmkit_log(enum kvmkit_log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
