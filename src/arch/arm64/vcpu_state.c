// SPDX-License-Identifier: MIT
/* arm64 vCPU state: saving and restoring the registers comes with arm64's
 * vCPU set-up (issue 11); until then both calls say so. */
#define KVMK_LOG_MODULE "vcpu"
#include "core/internal.h"
#include "kvm/arch.h"

int kvmkit_vcpu_save(struct kvmkit_vcpu *v, void **buf, size_t *len)
{
	return kvmk_err_unsupported("kvmkit_vcpu_save", ENOTSUP,
				    "vCPU state is not saved on arm64 yet");
}

int kvmkit_vcpu_restore(struct kvmkit_vcpu *v, const void *buf, size_t len)
{
	return kvmk_err_unsupported("kvmkit_vcpu_restore", ENOTSUP,
				    "vCPU state is not restored on arm64 yet");
}
