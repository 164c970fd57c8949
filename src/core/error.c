// SPDX-License-Identifier: MIT
/* Thread-local structured error records. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define KVMK_LOG_MODULE "error"
#include "core/internal.h"

static _Thread_local struct kvmkit_error last_error;
static _Thread_local char last_line[512];

static const char *const kind_names[] = {
	[KVMKIT_ERR_NONE] = "none",		[KVMKIT_ERR_IOCTL] = "ioctl",
	[KVMKIT_ERR_SYSCALL] = "syscall",	[KVMKIT_ERR_STATE] = "invalid-state",
	[KVMKIT_ERR_PARAM] = "invalid-parameter", [KVMKIT_ERR_UNSUPPORTED] = "unsupported",
	[KVMKIT_ERR_RESOURCE] = "resource",	[KVMKIT_ERR_FORMAT] = "format",
	[KVMKIT_ERR_GUEST] = "guest",
};

const char *kvmkit_error_kind_name(enum kvmkit_error_kind kind)
{
	if ((unsigned int)kind < KVMKIT_ARRAY_SIZE(kind_names))
		return kind_names[kind];
	return "unknown";
}

const struct kvmkit_error *kvmkit_last_error(void)
{
	return &last_error;
}

void kvmk_err_save(struct kvmkit_error *out)
{
	*out = last_error;
}

void kvmk_err_restore(const struct kvmkit_error *saved)
{
	last_error = *saved;
}

void kvmkit_error_clear(void)
{
	memset(&last_error, 0, sizeof(last_error));
}

/* Symbolic errno names for the codes kvmkit meets; strerror() gives the text. */
static const char *errno_name(int err)
{
	switch (err) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case E2BIG: return "E2BIG";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENFILE: return "ENFILE";
	case EMFILE: return "EMFILE";
	case ENOSPC: return "ENOSPC";
	case ERANGE: return "ERANGE";
	case ENOSYS: return "ENOSYS";
	case ENOTSUP: return "ENOTSUP";
	case ETIMEDOUT: return "ETIMEDOUT";
	case ENOEXEC: return "ENOEXEC";
	case EFBIG: return "EFBIG";
	case EISDIR: return "EISDIR";
	case ESRCH: return "ESRCH";
	case EDEADLK: return "EDEADLK";
	default: return NULL;
	}
}

int kvmkit_error_format(const struct kvmkit_error *e, char *buf, size_t len)
{
	char errpart[96] = "";
	const char *en;

	if (e->err && e->kind != KVMKIT_ERR_PARAM && e->kind != KVMKIT_ERR_STATE) {
		en = errno_name(e->err);
		snprintf(errpart, sizeof(errpart), ": %s (%s)", strerror(e->err), en ? en : "errno");
	}
	switch (e->kind) {
	case KVMKIT_ERR_NONE:
		return snprintf(buf, len, "no error");
	case KVMKIT_ERR_IOCTL:
		return snprintf(buf, len, "ioctl %s failed%s%s%s%s", e->op, errpart,
				e->reason[0] ? " [" : "", e->reason, e->reason[0] ? "]" : "");
	case KVMKIT_ERR_STATE:
		return snprintf(buf, len, "%s: invalid state: %s is %s, expected %s", e->op,
				e->name, e->value, e->reason);
	case KVMKIT_ERR_PARAM:
		return snprintf(buf, len, "%s: invalid %s '%s': %s", e->op, e->name, e->value,
				e->reason);
	default:
		return snprintf(buf, len, "%s: %s%s%s%s", e->op, kvmkit_error_kind_name(e->kind),
				e->reason[0] ? ": " : "", e->reason, errpart);
	}
}

const char *kvmkit_strerror(void)
{
	kvmkit_error_format(&last_error, last_line, sizeof(last_line));
	return last_line;
}

static int record(enum kvmkit_error_kind kind, const char *op, int err)
{
	memset(&last_error, 0, sizeof(last_error));
	last_error.kind = kind;
	last_error.err = err;
	snprintf(last_error.op, sizeof(last_error.op), "%s", op ? op : "?");
	return err ? -err : -EINVAL;
}

__attribute__((format(printf, 1, 0))) static void fill_reason(const char *fmt, va_list ap)
{
	if (fmt)
		vsnprintf(last_error.reason, sizeof(last_error.reason), fmt, ap);
}

#define DEFINE_ERR_FN(fn, kind)                                                                    \
	int fn(const char *op, int err, const char *fmt, ...)                                     \
	{                                                                                          \
		va_list ap;                                                                        \
		int ret = record(kind, op, err);                                                   \
                                                                                                   \
		va_start(ap, fmt);                                                                 \
		fill_reason(fmt, ap);                                                              \
		va_end(ap);                                                                        \
		kvmk_debug("%s", kvmkit_strerror());                                               \
		return ret;                                                                        \
	}

DEFINE_ERR_FN(kvmk_err_ioctl, KVMKIT_ERR_IOCTL)
DEFINE_ERR_FN(kvmk_err_sys, KVMKIT_ERR_SYSCALL)
DEFINE_ERR_FN(kvmk_err_unsupported, KVMKIT_ERR_UNSUPPORTED)
DEFINE_ERR_FN(kvmk_err_resource, KVMKIT_ERR_RESOURCE)

int kvmk_err_state_code(int err, const char *object, const char *current, const char *expected,
			const char *op)
{
	int ret = record(KVMKIT_ERR_STATE, op, err);

	snprintf(last_error.name, sizeof(last_error.name), "%s", object);
	snprintf(last_error.value, sizeof(last_error.value), "%s", current);
	snprintf(last_error.reason, sizeof(last_error.reason), "%s", expected);
	kvmk_debug("%s", kvmkit_strerror());
	return ret;
}

int kvmk_err_state(const char *object, const char *current, const char *expected, const char *op)
{
	return kvmk_err_state_code(EBUSY, object, current, expected, op);
}

int kvmk_err_param(const char *op, const char *name, const char *reason, const char *vfmt, ...)
{
	va_list ap;
	int ret = record(KVMKIT_ERR_PARAM, op, EINVAL);

	snprintf(last_error.name, sizeof(last_error.name), "%s", name);
	snprintf(last_error.reason, sizeof(last_error.reason), "%s", reason);
	va_start(ap, vfmt);
	vsnprintf(last_error.value, sizeof(last_error.value), vfmt, ap);
	va_end(ap);
	kvmk_debug("%s", kvmkit_strerror());
	return ret;
}

int kvmk_err_format(const char *op, const char *fmt, ...)
{
	va_list ap;
	int ret = record(KVMKIT_ERR_FORMAT, op, ENOEXEC);

	va_start(ap, fmt);
	fill_reason(fmt, ap);
	va_end(ap);
	kvmk_debug("%s", kvmkit_strerror());
	return ret;
}
