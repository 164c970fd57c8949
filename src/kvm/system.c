// SPDX-License-Identifier: MIT
/* /dev/kvm: open, API version, capability probing. */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#define KVMK_LOG_MODULE "system"
#include "core/internal.h"
#include "kvm/kvm_internal.h"

struct kvmkit_system {
	int fd;
	int api_version;
};

const char *kvmk_kvm_path(const char *path)
{
	const char *env;

	if (path)
		return path;
	env = getenv("KVMKIT_KVM_PATH");
	return env && *env ? env : "/dev/kvm";
}

int kvmkit_system_open(const char *path, struct kvmkit_system **out)
{
	struct kvmkit_system *sys;
	int fd, ver;

	path = kvmk_kvm_path(path);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		if (e == ENOENT || e == ENODEV || e == ENXIO)
			return kvmk_err_unsupported("open", e,
						    "%s: KVM is not available on this host", path);
		return kvmk_err_sys("open", e, "%s", path);
	}
	ver = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		int e = ver < 0 ? errno : 0;

		close(fd);
		if (ver < 0)
			return kvmk_err_ioctl("KVM_GET_API_VERSION", e, "%s", path);
		return kvmk_err_unsupported("KVM_GET_API_VERSION", ENOTSUP,
					    "%s reports API version %d, kvmkit needs %d", path, ver,
					    KVM_API_VERSION);
	}
	sys = calloc(1, sizeof(*sys));
	if (!sys) {
		close(fd);
		return kvmk_err_resource("kvmkit_system_open", ENOMEM, "allocating system");
	}
	sys->fd = fd;
	sys->api_version = ver;
	*out = sys;
	kvmk_debug("opened %s (API %d)", path, ver);
	return 0;
}

void kvmkit_system_close(struct kvmkit_system *sys)
{
	if (!sys)
		return;
	close(sys->fd);
	free(sys);
}

int kvmkit_system_fd(const struct kvmkit_system *sys)
{
	return sys->fd;
}

int kvmkit_system_api_version(const struct kvmkit_system *sys)
{
	return sys->api_version;
}

int kvmk_check_extension(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);

	if (r < 0) {
		const struct kvmkit_cap_info *ci = kvmkit_cap_lookup(cap);

		return kvmk_err_ioctl("KVM_CHECK_EXTENSION", errno, "cap %s (%ld)",
				      ci ? ci->name : "?", cap);
	}
	return r;
}

int kvmkit_system_check_cap(struct kvmkit_system *sys, long cap)
{
	return kvmk_check_extension(sys->fd, cap);
}

bool kvmkit_kvm_available(void)
{
	int fd = open(kvmk_kvm_path(NULL), O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Capabilities that matter to kvmkit; `kvmkit caps` prints these. */
static const struct kvmkit_cap_info caps[] = {
	KVMK_CAP(USER_MEMORY, "memory", "guest memory slots from user memory"),
	KVMK_CAP(NR_MEMSLOTS, "memory", "number of memory slots"),
	KVMK_CAP(READONLY_MEM, "memory", "read-only slots (writes exit as MMIO)"),
	KVMK_CAP(SYNC_MMU, "memory", "host MMU notifiers keep guest mappings in sync"),
	KVMK_CAP(NR_VCPUS, "vcpu", "recommended maximum vCPUs"),
	KVMK_CAP(MAX_VCPUS, "vcpu", "maximum vCPUs per VM"),
	KVMK_CAP(MAX_VCPU_ID, "vcpu", "maximum vCPU id + 1"),
	KVMK_CAP(IMMEDIATE_EXIT, "vcpu", "kvm_run.immediate_exit for race-free pause"),
	KVMK_CAP(COALESCED_MMIO, "io", "coalesced MMIO ring (page offset)"),
	KVMK_CAP(IOEVENTFD, "io", "ioeventfd: guest writes signal an eventfd"),
	KVMK_CAP(IOEVENTFD_ANY_LENGTH, "io", "ioeventfd with len 0 (any access size)"),
	KVMK_CAP(IRQCHIP, "irq", "in-kernel interrupt controller"),
	KVMK_CAP(IRQ_ROUTING, "irq", "GSI routing table (value: max routes)"),
	KVMK_CAP(IRQ_INJECT_STATUS, "irq", "KVM_IRQ_LINE_STATUS reports delivery"),
	KVMK_CAP(IRQFD, "irq", "irqfd: an eventfd injects a GSI"),
	KVMK_CAP(IRQFD_RESAMPLE, "irq", "irqfd resamplefd for level interrupts"),
	KVMK_CAP(SIGNAL_MSI, "irq", "KVM_SIGNAL_MSI"),
	KVMK_CAP(MSI_DEVID, "irq", "MSI routes carry a device id (per VM)"),
	KVMK_CAP(SET_GUEST_DEBUG, "debug", "single step and breakpoints"),
	KVMK_CAP(DIRTY_LOG_RING, "migration", "per-vCPU dirty GFN rings (value: max bytes)"),
	KVMK_CAP(MANUAL_DIRTY_LOG_PROTECT2, "migration", "KVM_CLEAR_DIRTY_LOG"),
	KVMK_CAP(DEVICE_CTRL, "device", "KVM_CREATE_DEVICE"),
};

/* The generic table followed by the architecture's (src/arch/<arch>/caps.c),
 * built once. */
static struct kvmkit_cap_info all_caps[KVMKIT_ARRAY_SIZE(caps) + KVMK_ARCH_MAX_CAPS];
static size_t nr_all_caps;
static pthread_once_t caps_once = PTHREAD_ONCE_INIT;

static void build_caps(void)
{
	size_t n;
	const struct kvmkit_cap_info *arch = kvmk_arch_caps(&n);

	if (n > KVMK_ARCH_MAX_CAPS)
		n = KVMK_ARCH_MAX_CAPS;
	memcpy(all_caps, caps, sizeof(caps));
	memcpy(all_caps + KVMKIT_ARRAY_SIZE(caps), arch, n * sizeof(*arch));
	nr_all_caps = KVMKIT_ARRAY_SIZE(caps) + n;
}

const struct kvmkit_cap_info *kvmkit_caps_table(size_t *count)
{
	pthread_once(&caps_once, build_caps);
	*count = nr_all_caps;
	return all_caps;
}

const struct kvmkit_cap_info *kvmkit_cap_lookup(long id)
{
	size_t n;
	const struct kvmkit_cap_info *t = kvmkit_caps_table(&n);

	for (size_t i = 0; i < n; i++)
		if (t[i].id == id)
			return &t[i];
	return NULL;
}
