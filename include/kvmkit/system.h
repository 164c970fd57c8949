/* SPDX-License-Identifier: MIT */
/*
 * The KVM system: /dev/kvm, its API version and its capabilities.
 *
 * Threads: every call may come from any thread; a kvmkit_system does not
 * change after it is opened (close it once, when no other thread uses it).
 * Lifetimes: the fd belongs to the kvmkit_system (kvmkit_system_close()
 * closes it); the capability table and its strings are static, valid for
 * the life of the process. A VM's own system (kvmkit_vm_system()) is the
 * VM's to close.
 */
#ifndef KVMKIT_SYSTEM_H
#define KVMKIT_SYSTEM_H

#include <stddef.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kvmkit_system;

/* Opens @path (NULL: $KVMKIT_KVM_PATH, else "/dev/kvm"; not kept) and
 * checks KVM_GET_API_VERSION == 12. Fails with KVMKIT_ERR_UNSUPPORTED/-ENOENT
 * when the device is absent. */
int kvmkit_system_open(const char *path, struct kvmkit_system **out);
void kvmkit_system_close(struct kvmkit_system *sys);

int kvmkit_system_fd(const struct kvmkit_system *sys);
int kvmkit_system_api_version(const struct kvmkit_system *sys);

/* KVM_CHECK_EXTENSION on the system fd: the capability's value (0: absent),
 * or a negative error. */
int kvmkit_system_check_cap(struct kvmkit_system *sys, long cap);

/* True if /dev/kvm (or $KVMKIT_KVM_PATH) can be opened read-write. */
bool kvmkit_kvm_available(void);

/* Capabilities kvmkit knows by name. */
struct kvmkit_cap_info {
	long id;
	const char *name;	 /* "KVM_CAP_IRQCHIP" */
	const char *area;	 /* "irq", "memory", "vcpu", "x86", "arm64", ... */
	const char *summary; /* one line: what it enables in kvmkit */
};

const struct kvmkit_cap_info *kvmkit_caps_table(size_t *count);
const struct kvmkit_cap_info *kvmkit_cap_lookup(long id);

#ifdef __cplusplus
}
#endif
#endif
