// SPDX-License-Identifier: MIT
/* Levelled logging; the level comes from kvmkit_log_set_level() or $KVMKIT_LOG. */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };

/* -1: not yet read from the environment. */
static int log_level = -1;
static kvmkit_log_sink log_sink;
static void *log_sink_opaque;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* Set while this thread runs the sink (log_lock held): a sink that logs, or
 * swaps the sink, must not take the lock again. */
static _Thread_local bool in_sink;

const char *kvmkit_log_level_name(enum kvmkit_log_level level)
{
	if ((unsigned int)level < KVMKIT_ARRAY_SIZE(level_names))
		return level_names[level];
	return "?";
}

int kvmkit_log_parse_level(const char *s, enum kvmkit_log_level *out)
{
	if (!s)
		return -EINVAL;
	for (unsigned int i = 0; i < KVMKIT_ARRAY_SIZE(level_names); i++) {
		if (!strcasecmp(s, level_names[i]) || (s[0] == (char)('0' + i) && !s[1])) {
			*out = (enum kvmkit_log_level)i;
			return 0;
		}
	}
	if (!strcasecmp(s, "warning")) {
		*out = KVMKIT_LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

void kvmkit_log_set_level(enum kvmkit_log_level level)
{
	if (level > KVMKIT_LOG_TRACE)
		level = KVMKIT_LOG_TRACE;
	__atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
}

enum kvmkit_log_level kvmkit_log_get_level(void)
{
	int l = __atomic_load_n(&log_level, __ATOMIC_RELAXED);

	if (l < 0) {
		enum kvmkit_log_level parsed = KVMKIT_LOG_WARN;

		kvmkit_log_parse_level(getenv("KVMKIT_LOG"), &parsed);
		l = (int)parsed;
		__atomic_store_n(&log_level, l, __ATOMIC_RELAXED);
	}
	return (enum kvmkit_log_level)l;
}

void kvmkit_log_set_sink(kvmkit_log_sink sink, void *opaque)
{
	if (in_sink) { /* this thread holds log_lock */
		log_sink = sink;
		log_sink_opaque = opaque;
		return;
	}
	pthread_mutex_lock(&log_lock);
	log_sink = sink;
	log_sink_opaque = opaque;
	pthread_mutex_unlock(&log_lock);
}

void kvmkit_log(enum kvmkit_log_level level, const char *module, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (level > kvmkit_log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (in_sink) { /* logged from inside the sink: straight to stderr */
		fprintf(stderr, "kvmkit %s [%s] %s\n", kvmkit_log_level_name(level), module, msg);
		return;
	}
	pthread_mutex_lock(&log_lock);
	if (log_sink) {
		in_sink = true;
		log_sink(level, module, msg, log_sink_opaque);
		in_sink = false;
	} else {
		fprintf(stderr, "kvmkit %s [%s] %s\n", kvmkit_log_level_name(level), module, msg);
	}
	pthread_mutex_unlock(&log_lock);
}
