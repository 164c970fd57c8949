/* SPDX-License-Identifier: MIT */
/*
 * kvmkit structured errors.
 *
 * Every fallible kvmkit call returns a negative errno-style code and records
 * a thread-local struct kvmkit_error describing what failed.
 *
 * Threads: each thread has its own record; every call here is about the
 * calling thread's. What fails on a vCPU thread (in a device handler) is
 * recorded there, not on the thread that started the VM: that one learns why
 * the VM stopped from kvmkit_vm_wait().
 * Lifetimes: the record and the string kvmkit_strerror() returns live in
 * the calling thread and hold until its next kvmkit call (a later call may
 * replace them even when it succeeds): read or copy them right after the
 * call that failed. The pointers stay valid until the thread exits.
 */
#ifndef KVMKIT_ERROR_H
#define KVMKIT_ERROR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum kvmkit_error_kind {
	KVMKIT_ERR_NONE = 0,
	KVMKIT_ERR_IOCTL,	/* a KVM ioctl failed: op, errno */
	KVMKIT_ERR_SYSCALL,	/* another system call failed: op, errno */
	KVMKIT_ERR_STATE,	/* object in the wrong state: current, expected */
	KVMKIT_ERR_PARAM,	/* invalid parameter: name, value, reason */
	KVMKIT_ERR_UNSUPPORTED,	/* the host kernel or arch lacks a feature */
	KVMKIT_ERR_RESOURCE,	/* a limit was reached (slots, GSIs, memory) */
	KVMKIT_ERR_FORMAT,	/* a file or image is malformed */
	KVMKIT_ERR_GUEST,	/* the guest did something that stopped the VM */
};

#define KVMKIT_ERROR_STR 96

struct kvmkit_error {
	enum kvmkit_error_kind kind;
	int err;			    /* positive errno value */
	char op[KVMKIT_ERROR_STR];	    /* operation, e.g. "KVM_CREATE_IRQCHIP" */
	char name[KVMKIT_ERROR_STR];	    /* PARAM: parameter name; STATE: object */
	char value[KVMKIT_ERROR_STR];	    /* PARAM: value; STATE: current state */
	char reason[2 * KVMKIT_ERROR_STR]; /* PARAM: why; STATE: expected state(s) */
};

/* The calling thread's last error (kind NONE if there was none). */
const struct kvmkit_error *kvmkit_last_error(void);

/* The calling thread's last error as one line, e.g.
 * "ioctl KVM_CREATE_VCPU failed: Invalid argument (EINVAL) [vcpu id=9]". */
const char *kvmkit_strerror(void);

/* Formats @e (any record, e.g. a copy) as one line into @buf; returns the
 * length snprintf would. */
int kvmkit_error_format(const struct kvmkit_error *e, char *buf, size_t len);

/* A static string. */
const char *kvmkit_error_kind_name(enum kvmkit_error_kind kind);

void kvmkit_error_clear(void);

#ifdef __cplusplus
}
#endif
#endif
