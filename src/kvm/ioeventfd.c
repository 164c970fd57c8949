// SPDX-License-Identifier: MIT
/* ioeventfd: guest writes that signal an eventfd inside KVM (api.rst 4.59). */
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "vm"
#include "core/internal.h"
#include "kvm/kvm_internal.h"

static int ioeventfd(struct kvmkit_vm *vm, uint64_t addr, uint32_t len, unsigned int flags,
		     uint64_t datamatch, int fd, bool assign)
{
	const char *op = assign ? "kvmkit_ioeventfd_add" : "kvmkit_ioeventfd_remove";
	struct kvm_ioeventfd io = { .datamatch = datamatch, .addr = addr, .len = len, .fd = fd };

	if (len != 0 && len != 1 && len != 2 && len != 4 && len != 8)
		return kvmk_err_param(op, "len", "must be 0, 1, 2, 4 or 8", "%u", len);
	if ((flags & KVMKIT_IOEVENTFD_PIO) && (len == 8 || addr + (len ? len : 1) > 0x10000))
		return kvmk_err_param(op, "addr", "port I/O is at most 4 bytes below 0x10000",
				      "0x%llx len %u", (unsigned long long)addr, len);
	if (len == 0 && (flags & KVMKIT_IOEVENTFD_DATAMATCH))
		return kvmk_err_param(op, "len", "datamatch needs a length", "0");
	if (len == 0 && kvmk_check_extension(vm->fd, KVM_CAP_IOEVENTFD_ANY_LENGTH) <= 0)
		return kvmk_err_unsupported(op, ENOTSUP, "KVM_CAP_IOEVENTFD_ANY_LENGTH");
	if (fd < 0)
		return kvmk_err_param(op, "fd", "not a file descriptor", "%d", fd);
	if (flags & KVMKIT_IOEVENTFD_PIO)
		io.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (flags & KVMKIT_IOEVENTFD_DATAMATCH)
		io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (!assign)
		io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	if (ioctl(vm->fd, KVM_IOEVENTFD, &io) < 0)
		return kvmk_err_ioctl("KVM_IOEVENTFD", errno, "%s %s 0x%llx len %u",
				      assign ? "assign" : "deassign",
				      (flags & KVMKIT_IOEVENTFD_PIO) ? "pio" : "mmio",
				      (unsigned long long)addr, len);
	return 0;
}

int kvmkit_ioeventfd_add(struct kvmkit_vm *vm, uint64_t addr, uint32_t len, unsigned int flags,
			 uint64_t datamatch, int fd)
{
	return ioeventfd(vm, addr, len, flags, datamatch, fd, true);
}

int kvmkit_ioeventfd_remove(struct kvmkit_vm *vm, uint64_t addr, uint32_t len, unsigned int flags,
			    uint64_t datamatch, int fd)
{
	return ioeventfd(vm, addr, len, flags, datamatch, fd, false);
}
