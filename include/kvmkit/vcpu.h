/* SPDX-License-Identifier: MIT */
/*
 * vCPUs. Each vCPU runs on its own thread once the VM starts; its exits are
 * dispatched to the VM's PIO and MMIO buses. A vCPU belongs to its VM:
 * kvmkit_vm_destroy() frees it, its fd and its run area.
 *
 * Threads: the getters and kvmkit_vcpu_get_stats(): any thread. Register
 * access (get/set regs and sregs, CPUID, dump): on the vCPU's own thread (its
 * exit handlers and hooks) at any time; on other threads only while the vCPU
 * does not run (VM CREATED, PAUSED, STOPPED or ERROR). While it runs, KVM
 * holds the call until the vCPU's next exit and the values are stale at
 * once; kvmkit does not check this.
 */
#ifndef KVMKIT_VCPU_H
#define KVMKIT_VCPU_H

#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include <kvmkit/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

unsigned int kvmkit_vcpu_id(const struct kvmkit_vcpu *vcpu);
int kvmkit_vcpu_fd(const struct kvmkit_vcpu *vcpu);
struct kvmkit_vm *kvmkit_vcpu_vm(struct kvmkit_vcpu *vcpu);
/* The mmap'ed shared run structure, mapped until the VM is destroyed. Only
 * the thread running the vCPU reads or writes it (kvmkit sets
 * immediate_exit to kick the vCPU). */
struct kvm_run *kvmkit_vcpu_run_area(struct kvmkit_vcpu *vcpu);

#if defined(__x86_64__)
int kvmkit_vcpu_get_regs(struct kvmkit_vcpu *vcpu, struct kvm_regs *regs);
int kvmkit_vcpu_set_regs(struct kvmkit_vcpu *vcpu, const struct kvm_regs *regs);
int kvmkit_vcpu_get_sregs(struct kvmkit_vcpu *vcpu, struct kvm_sregs *sregs);
int kvmkit_vcpu_set_sregs(struct kvmkit_vcpu *vcpu, const struct kvm_sregs *sregs);
/* Sets CPUID from KVM_GET_SUPPORTED_CPUID through kvmkit's CPU model: on:
 * hypervisor, x2apic (with an irqchip), tsc-deadline (where KVM has it);
 * off: monitor/mwait, vmx/svm, PMU (leaf 0xA); APIC id = vCPU index; then
 * the config's cpu_flags. Done at vCPU creation. */
int kvmkit_vcpu_set_default_cpuid(struct kvmkit_vcpu *vcpu);
/* Names accepted in cpu_flags, for i = 0, 1, ... until NULL (static). */
const char *kvmkit_cpu_feature_name(unsigned int i);
#endif

/* Writes a register dump (one line per group) into @buf (register rule
 * above). */
int kvmkit_vcpu_dump(struct kvmkit_vcpu *vcpu, char *buf, size_t len);

/*
 * Saving and restoring a vCPU's architectural state, the per-vCPU part of a
 * machine snapshot. On x86: MP state, general registers, segment and control
 * registers (KVM_GET_SREGS2 where the host has it: PDPTRs too; the APIC base
 * and EFER are there), FPU/SSE/AVX through XSAVE (KVM_CAP_XSAVE2's size),
 * XCRs, the MSRs KVM lists and this vCPU reads (TSC, TSC deadline,
 * SYSENTER/SYSCALL, KERNEL_GS_BASE, PAT, MISC_ENABLE, kvmclock, ...),
 * debug registers, pending events (exception, interrupt, NMI, SMI, with
 * KVM_VCPUEVENT_VALID_* flags and the exception payload where the VM enabled
 * it) and, with an irqchip, the LAPIC registers. Not here: guest memory, the
 * irqchip (kvmkit_irqchip_save), devices, the VM clock, CPUID (set by the
 * VM's config at vCPU creation). On arm64: every register KVM_GET_REG_LIST
 * names (core, FP/SIMD, system registers, timers, firmware registers)
 * through ONE_REG, and the MP state (src/arch/arm64/vcpu_state.c); the
 * vGIC's state is not saved yet.
 *
 * The blob is versioned and little-endian and records the vCPU id and the
 * size of each part (src/arch/x86/vcpu_state.h); *buf is malloc'ed, free()
 * it.
 *
 * Save: with the VM CREATED, PAUSED or STOPPED (else -EBUSY,
 * KVMKIT_ERR_STATE). A vCPU that paused or stopped right after an I/O or
 * MMIO exit has already finished that instruction (re-entering KVM_RUN with
 * immediate_exit, as api.rst asks); after kvmkit_vcpu_run_once() the save
 * does it (exit handlers may run on the calling thread then).
 *
 * Restore: with the VM CREATED or PAUSED, into the vCPU with the same id of
 * a VM built with the same configuration (vCPU count, CPU flags, irqchip or
 * not), on a host that saves the same state; restore the irqchip first. A
 * blob of another version or vCPU, truncated or with bytes past its end, or
 * holding what this vCPU does not take (another XSAVE size, an MSR KVM does
 * not list here, sections of another kind of VM, reserved bits) is refused
 * with -ENOEXEC (KVMKIT_ERR_FORMAT) before anything changes. If KVM refuses a
 * value (a control register or MSR value this CPU model lacks), the vCPU's
 * previous state is put back and KVM's error returned.
 *
 * Threads: any thread, one save or restore of a vCPU at a time, never while
 * another thread starts or resumes the VM (the state check is not held
 * across the call); not from exit handlers or hooks.
 */
int kvmkit_vcpu_save(struct kvmkit_vcpu *vcpu, void **buf, size_t *len);
int kvmkit_vcpu_restore(struct kvmkit_vcpu *vcpu, const void *buf, size_t len);

/*
 * Per-vCPU exit counters. The thread running the vCPU (its own thread, or the
 * caller of kvmkit_vcpu_run_once()) is the only writer; each counter is a
 * relaxed atomic, so kvmkit_vcpu_get_stats() may be called from any thread
 * at any time without a data race and without slowing the exit path.
 *
 * What a reader sees: every counter whole (never torn) and never going
 * backwards from one call to the next, but not one snapshot of all of them:
 * while the vCPU runs, counters are read one after another, so e.g. `runs`
 * may already count a KVM_RUN whose exit is not yet counted. Once the VM is
 * paused or stopped (or from an exit handler on the vCPU's own thread) the
 * values are exact and consistent.
 */
struct kvmkit_vcpu_stats {
	uint64_t runs; /* KVM_RUN calls */
	uint64_t exits_io;
	uint64_t exits_mmio;
	uint64_t exits_hlt;
	uint64_t exits_intr; /* EINTR / immediate exits (pause, stop) */
	uint64_t exits_other;
	uint64_t user_ns; /* time from KVM_RUN returning to the next KVM_RUN
			   * (only with kvmkit_vm_config.exit_timing) */
};

/* Thread-safe; see above for what the values mean while the vCPU runs. */
void kvmkit_vcpu_get_stats(struct kvmkit_vcpu *vcpu, struct kvmkit_vcpu_stats *out);

/* Exit handlers by exit reason (registered on the VM, for every vCPU), run
 * on the vCPU's thread for exits kvmkit's loop does not handle itself
 * (e.g. KVM_EXIT_IOAPIC_EOI for a split irqchip). Return 0 to re-enter the
 * guest, or a negative value to stop the VM as UNHANDLED_EXIT. A reason
 * has at most one handler; VM CREATED state only. Handlers and hooks run on
 * a vCPU thread: no kvmkit_vm_pause/stop/wait/destroy there (-EDEADLK);
 * kvmkit_vm_request_stop() stops the VM. @opaque is kept until the VM is
 * destroyed. */
typedef int (*kvmkit_exit_handler)(struct kvmkit_vcpu *vcpu, struct kvm_run *run, void *opaque);
int kvmkit_vm_add_exit_handler(struct kvmkit_vm *vm, uint32_t exit_reason, kvmkit_exit_handler fn,
			       void *opaque);

/* Runs before every KVM_RUN of vCPU @vcpu_id (-1: every vCPU), on that
 * vCPU's thread, e.g. to inject an interrupt with KVM_INTERRUPT. Keep it
 * short: it is on the exit path. VM CREATED state only. */
typedef void (*kvmkit_pre_run_hook)(struct kvmkit_vcpu *vcpu, struct kvm_run *run, void *opaque);
int kvmkit_vm_add_pre_run_hook(struct kvmkit_vm *vm, int vcpu_id, kvmkit_pre_run_hook fn,
			       void *opaque);

/* A hook for exits nothing else handles. Return 0 to re-enter the
 * guest, or a negative value to stop the VM as UNHANDLED_EXIT. Set it before
 * the VM starts (or between kvmkit_vcpu_run_once() calls): the vCPU thread
 * reads it without a lock. */
typedef int (*kvmkit_exit_hook)(struct kvmkit_vcpu *vcpu, struct kvm_run *run, void *opaque);
void kvmkit_vcpu_set_exit_hook(struct kvmkit_vcpu *vcpu, kvmkit_exit_hook hook, void *opaque);

/* Runs the vCPU on the calling thread until one exit has been handled
 * (for single-threaded use and tests). Only while no vCPU thread of the VM
 * exists (CREATED, or after stop/wait joined them; -EBUSY otherwise), and
 * by one thread at a time per vCPU. Returns the KVM exit reason or a
 * negative error. */
int kvmkit_vcpu_run_once(struct kvmkit_vcpu *vcpu);

#ifdef __cplusplus
}
#endif
#endif
