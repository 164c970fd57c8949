/* SPDX-License-Identifier: MIT */
/*
 * What each architecture (src/arch/<arch>/vm.c and vcpu.c, the same file
 * names in every arch directory) provides to the generic VM layer. The
 * generic files of src/kvm/ hold no architecture branches: what differs
 * (RAM layout, VM set-up ioctls, vCPU initial state, register dumps) is
 * here. Arch code uses the public API and this header only. Internal.
 */
#ifndef KVMKIT_KVM_ARCH_H
#define KVMKIT_KVM_ARCH_H

#include <kvmkit/vm.h>
#include <kvmkit/vcpu.h>
#include <kvmkit/system.h>

/* Per-architecture VM state, opaque to src/kvm/. */
struct kvmk_arch_vm;

/* The architecture this library was built for. */
enum kvmkit_arch kvmk_arch_host(void);
/* Validates the arch-specific parts of @cfg and allocates the arch state;
 * before KVM_CREATE_VM. */
int kvmk_arch_vm_prepare(const struct kvmkit_vm_config *cfg, struct kvmk_arch_vm **out);
/* The machine type argument of KVM_CREATE_VM for @cfg (x86: 0; arm64: the
 * IPA size the RAM needs), or a negative error, recorded. */
int kvmk_arch_vm_type(const struct kvmkit_vm_config *cfg, struct kvmkit_system *sys,
		      struct kvmk_arch_vm *arch);
/* After KVM_CREATE_VM, before any vCPU: VM-wide set-up ioctls and the RAM
 * layout (calls kvmkit_vm_add_memory). */
int kvmk_arch_vm_init(struct kvmkit_vm *vm, struct kvmk_arch_vm *arch);
void kvmk_arch_vm_free(struct kvmk_arch_vm *arch);
/* Adds RAM region [gpa, gpa + size) the arch layout wants: anonymous
 * memory, or bytes [file_off, file_off + size) of the config's ram_fd
 * mapped privately (kvmkit owns either mapping). Returns the slot. */
int kvmk_vm_add_ram(struct kvmkit_vm *vm, uint64_t gpa, uint64_t size, uint64_t file_off);
/* At vCPU creation, after its fd and run area exist. */
int kvmk_arch_vcpu_init(struct kvmkit_vcpu *vcpu, struct kvmk_arch_vm *arch);
/* The capabilities that matter on this architecture (at most
 * KVMK_ARCH_MAX_CAPS), appended to the generic table. */
#define KVMK_ARCH_MAX_CAPS 32
const struct kvmkit_cap_info *kvmk_arch_caps(size_t *count);
/* An entry of such a table: KVM_CAP_<id>, its name, an area and what it
 * means, as `kvmkit caps` prints them. */
#define KVMK_CAP(id, area, summary)                         \
	{                                                   \
		KVM_CAP_##id, "KVM_CAP_" #id, area, summary \
	}

/* The arch state of @vm (for the arch's public calls). */
struct kvmk_arch_vm *kvmk_vm_arch(struct kvmkit_vm *vm);

/* Finishes the guest instruction behind the vCPU's last exit if KVM has not
 * completed it yet (src/kvm/vcpu.c), so that its registers can be read or
 * replaced whole. Only while no other thread runs the vCPU. */
int kvmk_vcpu_complete_exit(struct kvmkit_vcpu *vcpu);
/* Whether the VM is in a state where a vCPU's state may be saved (created,
 * paused or stopped) or, with @restore, replaced (created or paused);
 * else the state error naming vcpu_save or vcpu_restore (vcpu.c). */
int kvmk_vcpu_state_check(struct kvmkit_vcpu *vcpu, bool restore);

#endif
