/* SPDX-License-Identifier: MIT */
/*
 * Machine snapshots: a stopped or paused machine saved into a directory,
 * and a new machine restored from it, in this process or another one
 * (docs/SNAPSHOT.md has the file format).
 *
 * A snapshot directory holds two files:
 *   state   the machine's description (architecture, vCPU count, RAM
 *           layout, irqchip mode, whether it has the test device) and its
 *           state in tagged sections: the VM clock (KVM_GET_CLOCK), the
 *           irqchip (kvmkit_irqchip_save), each vCPU (kvmkit_vcpu_save) and
 *           the devices (kvmkit_machine_save_devices); a CRC-32 over all.
 *   memory  each RAM region's bytes, in region order, page aligned; pages
 *           of zeros are left as holes (a sparse file).
 *
 * Saved: everything those calls save (see their headers): vCPU registers,
 * FPU/XSAVE, MSRs (TSC, TSC deadline, kvmclock), LAPIC, events, MP state;
 * the PIC, IOAPIC and PIT of either irqchip mode; UART registers and FIFO,
 * fw_cfg selection, report values, test device scratch, virtio devices'
 * registers and queue indices (restore with the same virtio config); guest RAM.
 * Not saved: the guest image (a restore loads none), the console fd and
 * what the application added to the machine's VM itself (its own memory
 * regions make a snapshot it cannot restore: the layout is checked; its
 * own devices, irqfds and ioeventfds are not saved: re-create them). The
 * VM clock is restored to its saved value: guest time does not advance
 * while the snapshot rests. The files are written, not fsync()ed.
 *
 * Threads: neither call from a vCPU thread; snapshot with no other thread
 * starting, resuming or destroying the machine meanwhile.
 */
#ifndef KVMKIT_SNAPSHOT_H
#define KVMKIT_SNAPSHOT_H

#include <stdint.h>

#include <kvmkit/machine.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Saves @m, PAUSED or STOPPED (else -EBUSY, KVMKIT_ERR_STATE), into @dir:
 * created (mode 0700) if absent; an existing one must be empty (else
 * -ENOTEMPTY). The machine is left as it was: resume or destroy it after.
 * On failure the files written so far (and @dir, if this call created it)
 * are removed.
 */
int kvmkit_machine_snapshot(struct kvmkit_machine *m, const char *dir);

/*
 * Builds a new machine from @cfg and the snapshot in @dir, not started:
 * kvmkit_machine_run() continues the guest where it was saved. @cfg gives
 * what a snapshot does not hold (console_fd, cpu_flags, kvm_path, dirty
 * tracking) and must agree with it on vCPU count, memory size and irqchip
 * (mode, or none); cfg->kernel and cfg->testdev are ignored (no image is
 * loaded; the test device exists if the snapshot's machine had it).
 *
 * The state file is checked whole before anything is built: bad magic,
 * another format version, a CRC mismatch (corrupted or truncated), a bad
 * field or a memory file of the wrong size are KVMKIT_ERR_FORMAT; a
 * configuration that differs from the snapshot is KVMKIT_ERR_PARAM naming
 * both values. The memory file is mapped privately (copy-on-write, faulted
 * in lazily): the guest's writes never reach it, and it must stay
 * unchanged while the machine lives. Then the irqchip, every vCPU, the
 * devices and the VM clock are restored, in that order. On any failure
 * nothing is left: the machine built so far is destroyed and *@out is
 * untouched.
 */
int kvmkit_machine_restore(const struct kvmkit_machine_config *cfg, const char *dir,
			   struct kvmkit_machine **out);

/* What a snapshot's state file says of its machine (the file is checked
 * whole first, as for a restore). */
struct kvmkit_snapshot_info {
	unsigned int vcpus;
	uint64_t mem_size;
	bool irqchip;
	enum kvmkit_irqchip_mode irqchip_mode; /* when irqchip */
};
int kvmkit_snapshot_info(const char *dir, struct kvmkit_snapshot_info *info);

#ifdef __cplusplus
}
#endif
#endif
