// SPDX-License-Identifier: MIT
/*
 * Splits one client's byte stream into request lines in a fixed buffer.
 * A line longer than KVMKIT_API_MAX_LINE is reported once and dropped up
 * to its newline without being stored; past KVMKIT_API_MAX_DISCARD the
 * client is cut off, so a peer that never sends a newline costs a bounded
 * amount of reading and no memory.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/internal.h"

#define KVMK_LOG_MODULE "api"

int kvmk_api_lines_init(struct kvmk_api_lines *l)
{
	memset(l, 0, sizeof(*l));
	l->buf = malloc(KVMK_API_LINE_BUF);
	if (!l->buf)
		return kvmk_err_resource("kvmk_api_lines_init", ENOMEM, "%d-byte line buffer",
					 KVMK_API_LINE_BUF);
	return 0;
}

void kvmk_api_lines_reset(struct kvmk_api_lines *l)
{
	char *buf = l->buf;

	memset(l, 0, sizeof(*l));
	l->buf = buf;
}

void kvmk_api_lines_release(struct kvmk_api_lines *l)
{
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

char *kvmk_api_lines_space(struct kvmk_api_lines *l, size_t *room)
{
	if (l->start) {
		memmove(l->buf, l->buf + l->start, l->end - l->start);
		l->end -= l->start;
		l->start = 0;
	}
	*room = KVMK_API_LINE_BUF - l->end;
	return l->buf + l->end;
}

void kvmk_api_lines_commit(struct kvmk_api_lines *l, size_t n)
{
	l->end += n;
}

enum kvmk_api_next kvmk_api_lines_next(struct kvmk_api_lines *l, const char **line, size_t *len)
{
	const char *p = l->buf + l->start;
	size_t held = l->end - l->start;
	const char *nl;

	if (l->skipping) {
		nl = memchr(p, '\n', held);
		l->skipped += nl ? (size_t)(nl - p) : held;
		if (l->skipped > KVMKIT_API_MAX_DISCARD)
			return KVMK_LINES_OVERFLOW;
		if (!nl) {
			l->start = l->end = 0;
			return KVMK_LINES_MORE;
		}
		l->start += (size_t)(nl - p) + 1;
		l->skipping = false;
		l->skipped = 0;
		p = l->buf + l->start;
		held = l->end - l->start;
	}
	nl = memchr(p + l->scanned, '\n', held - l->scanned);
	if (nl) {
		*line = p;
		*len = (size_t)(nl - p);
		l->start += *len + 1;
		l->scanned = 0;
		return KVMK_LINES_LINE;
	}
	l->scanned = held;
	if (held > KVMKIT_API_MAX_LINE) {
		/* What is held is the line's start: drop it and skip the rest. */
		l->skipping = true;
		l->skipped = held;
		l->start = l->end = 0;
		l->scanned = 0;
		return KVMK_LINES_TOO_LONG;
	}
	return KVMK_LINES_MORE;
}

bool kvmk_api_lines_partial(const struct kvmk_api_lines *l)
{
	return l->skipping || l->end > l->start;
}
