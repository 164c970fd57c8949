/* SPDX-License-Identifier: MIT */
/*
 * x86 interrupt subsystem: the in-kernel irqchip (PIC pair, IOAPIC, per-vCPU
 * LAPIC, optional PIT), a GSI routing table owned by kvmkit, a GSI
 * allocator, IRQ lines with delivery status, irqfd (with resample for level
 * interrupts), KVM_SIGNAL_MSI, ioeventfd, and per-GSI statistics.
 *
 * Creation order (api.rst 4.24): the irqchip must exist before any vCPU.
 */
#ifndef KVMKIT_IRQ_H
#define KVMKIT_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#include <kvmkit/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVMKIT_IOAPIC_PINS 24
/* KVM's irqchip ids in routing entries. */
#define KVMKIT_IRQCHIP_PIC_MASTER 0
#define KVMKIT_IRQCHIP_PIC_SLAVE 1
#define KVMKIT_IRQCHIP_IOAPIC 2
/* Largest GSI kvmkit tracks (KVM_MAX_IRQ_ROUTES is 4096). */
#define KVMKIT_MAX_GSI 1024

struct kvmkit_irqchip;

enum kvmkit_irqchip_mode {
	/* PIC pair, IOAPIC and LAPICs in KVM. */
	KVMKIT_IRQCHIP_KERNEL = 0,
	/* LAPICs in KVM; IOAPIC in kvmkit (KVM_CAP_SPLIT_IRQCHIP), with .pic
	 * kvmkit's 8259 pair (GSI 0-15 reach it and the IOAPIC, as in kernel
	 * mode; its INTR goes to vCPU 0's LINT0 through KVM_INTERRUPT) and
	 * with .pit kvmkit's 8254 at 0x40-0x43/0x61 on GSI 0. Without .pic,
	 * GSI 0-23 are the IOAPIC's pins only. irqfds are serviced by a
	 * kvmkit thread, and level (resample) irqfds are resampled on the
	 * IOAPIC EOI (KVM_EXIT_IOAPIC_EOI), which the kernel cannot do here. */
	KVMKIT_IRQCHIP_SPLIT,
};

struct kvmkit_irqchip_config {
	enum kvmkit_irqchip_mode mode;
	bool pit;	      /* an i8254: KVM's in kernel mode, kvmkit's in split mode */
	bool pic;	      /* split mode: kvmkit's 8259 pair (kernel mode: KVM's, always) */
	bool pit_reinject;    /* kernel mode: lost-tick reinjection (off is recommended;
			       * kvmkit's split-mode PIT never reinjects) */
	unsigned int split_routes; /* split mode: GSIs reserved for IOAPIC pins (24) */
};

void kvmkit_irqchip_config_init(struct kvmkit_irqchip_config *cfg);

/* Creates the irqchip (kernel or split, cfg NULL: kernel with PIT). -EBUSY (KVMKIT_ERR_STATE) if a vCPU already
 * exists or an irqchip was already created for @vm. The irqchip belongs to
 * the VM: kvmkit_vm_destroy() releases it. */
int kvmkit_irqchip_create(struct kvmkit_vm *vm, const struct kvmkit_irqchip_config *cfg,
			  struct kvmkit_irqchip **out);
struct kvmkit_irqchip *kvmkit_vm_irqchip(struct kvmkit_vm *vm);
enum kvmkit_irqchip_mode kvmkit_irqchip_mode(const struct kvmkit_irqchip *chip);
const char *kvmkit_irqchip_mode_name(enum kvmkit_irqchip_mode mode);

unsigned int kvmkit_irqchip_pins(const struct kvmkit_irqchip *chip);
/* KVM_CAP_IRQ_ROUTING: the number of routes the kernel accepts. */
unsigned int kvmkit_irqchip_route_capacity(const struct kvmkit_irqchip *chip);

/* ---- routing table ------------------------------------------------------
 * Changes are staged in kvmkit's copy and take effect at commit, which sends
 * the whole table (KVM_SET_GSI_ROUTING replaces it). A failed commit leaves
 * the kernel's previous table in force and the staged copy rolled back. */
int kvmkit_irq_route_irqchip(struct kvmkit_irqchip *chip, uint32_t gsi, uint32_t irqchip,
			     uint32_t pin);
int kvmkit_irq_route_msi(struct kvmkit_irqchip *chip, uint32_t gsi, uint64_t address,
			 uint32_t data, int32_t devid /* -1: none */);
/* Removes every entry of @gsi (a GSI may have several irqchip entries). */
int kvmkit_irq_route_remove(struct kvmkit_irqchip *chip, uint32_t gsi);
int kvmkit_irq_routes_commit(struct kvmkit_irqchip *chip);
/* Number of committed entries for @gsi (0: unrouted). */
unsigned int kvmkit_irq_route_count(struct kvmkit_irqchip *chip, uint32_t gsi);

/* ---- GSI allocator ------------------------------------------------------
 * Device lines come from the IOAPIC-only pins 16..23 (never a legacy ISA
 * pin); MSI GSIs from 24 up. Exhaustion is -ENOSPC, never a shared GSI. */
int kvmkit_gsi_alloc_line(struct kvmkit_irqchip *chip);
int kvmkit_gsi_alloc_msi(struct kvmkit_irqchip *chip);
int kvmkit_gsi_free(struct kvmkit_irqchip *chip, uint32_t gsi);

/* ---- IRQ lines (KVM_IRQ_LINE_STATUS) -----------------------------------
 * Returns what the kernel reports: > 0 delivered to that many CPUs, 0
 * coalesced (the previous interrupt is still pending), KVMKIT_IRQ_MASKED
 * (masked or ignored), or a negative error. De-asserting (level false)
 * returns 0 on success: the kernel reports no status for it. */
#define KVMKIT_IRQ_MASKED (-1000)
int kvmkit_irq_line(struct kvmkit_irqchip *chip, uint32_t gsi, bool level);
/* Edge: level 1 then 0; returns the status of the rising edge. */
int kvmkit_irq_pulse(struct kvmkit_irqchip *chip, uint32_t gsi);

/* Seed-compatible forms: route GSI @gsi to (@irqchip, @pin) and commit;
 * set line @irq active or inactive. */
int kvmkit_setup_irq_routing(struct kvmkit_irqchip *chip, uint32_t gsi, uint32_t irqchip,
			     uint32_t pin);
int kvmkit_set_irq_line(struct kvmkit_irqchip *chip, uint32_t irq, bool active);

/* ---- MSI ---------------------------------------------------------------- */
/* KVM_SIGNAL_MSI: > 0 delivered, 0 blocked by the guest, < 0 error. */
int kvmkit_signal_msi(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data,
		      int32_t devid);

/* ---- irqfd -------------------------------------------------------------- *
 * Binds eventfd @fd to @gsi (the route must exist: commit first). With
 * @resample_fd >= 0 the interrupt is level-triggered: it stays asserted
 * until the guest's EOI, which signals @resample_fd; a device that still
 * needs service then signals @fd again. */
int kvmkit_irqfd_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd);
int kvmkit_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd);
/* Signals an irqfd bound to @gsi (one eventfd write) and counts it in the
 * GSI's statistics; devices use this rather than writing the fd directly. */
int kvmkit_irqfd_signal(struct kvmkit_irqchip *chip, uint32_t gsi, int fd);

/* ---- ioeventfd ---------------------------------------------------------- */
#define KVMKIT_IOEVENTFD_PIO (1u << 0)
#define KVMKIT_IOEVENTFD_DATAMATCH (1u << 1)
/* Guest writes of @len bytes (1, 2, 4, 8, or 0: any) at @addr signal @fd
 * without an exit to userspace. */
int kvmkit_ioeventfd_add(struct kvmkit_vm *vm, uint64_t addr, uint32_t len, unsigned int flags,
			 uint64_t datamatch, int fd);
int kvmkit_ioeventfd_remove(struct kvmkit_vm *vm, uint64_t addr, uint32_t len,
			    unsigned int flags, uint64_t datamatch, int fd);

/* ---- statistics --------------------------------------------------------- */
struct kvmkit_gsi_stats {
	uint64_t asserts;	/* rising edges / level-1 calls via kvmkit */
	uint64_t deliveries;	/* status > 0 */
	uint64_t coalesced;	/* status == 0 */
	uint64_t masked;	/* status < 0 from the kernel */
	uint64_t irqfd_signals; /* kvmkit_irqfd_signal() calls */
	/* irqfds bound to the GSI now: injected by KVM itself (kernel mode;
	 * split mode: edge irqfds on MSI-only GSIs past the IOAPIC's), and
	 * serviced by kvmkit's interrupt thread (the rest of split mode). */
	uint64_t irqfds_kernel;
	uint64_t irqfds_thread;
};

int kvmkit_irq_gsi_stats(struct kvmkit_irqchip *chip, uint32_t gsi, struct kvmkit_gsi_stats *out);

#ifdef __cplusplus
}
#endif
#endif
