/* SPDX-License-Identifier: MIT */
/*
 * The interrupt API: one irqchip per VM, a GSI routing table owned by
 * kvmkit (staged, committed whole, rolled back on failure), a GSI
 * allocator, IRQ lines with delivery status, MSI, irqfd (with resample for
 * level interrupts) and per-GSI statistics. The calls are the same for
 * every back end; the back end is chosen by the mode at creation:
 *   x86 KVMKIT_IRQCHIP_KERNEL  PIC pair, IOAPIC, LAPICs (and PIT) in KVM
 *   x86 KVMKIT_IRQCHIP_SPLIT   LAPICs in KVM; IOAPIC, PIC and PIT in kvmkit
 *   arm64 KVMKIT_IRQCHIP_KERNEL  the vGIC (v3, else v2) through KVM_CREATE_DEVICE;
 *                        GSI n is SPI n (INTID n + 32), see kvmkit/arm64.h
 * Devices raise interrupts through a line handle (kvmkit_line_*) or an MSI
 * handle (kvmkit_msi_*), never by knowing the back end.
 *
 * Creation order (api.rst 4.24): the irqchip must exist before any vCPU.
 * The irqchip belongs to its VM: kvmkit_vm_destroy() releases it, after
 * the vCPU threads have stopped.
 *
 * Threads: every call below may be made from any thread once the irqchip
 * exists (devices call them from vCPU threads); routing, allocator and
 * irqfd calls serialise on the irqchip's lock, lines and MSIs do not take it
 * on the kernel back end's fast path. Handles must be closed before the VM
 * is destroyed; one still open then is orphaned (a warning): its calls fail
 * with -EBUSY (KVMKIT_ERR_STATE) and closing it only frees it.
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
/* KVM's irqchip ids in routing entries (x86). */
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
	 * GSI 0-23 are the IOAPIC's pins only. Level (resample) irqfds are
	 * resampled on the EOI of either chip, which the kernel cannot do in
	 * this mode. */
	KVMKIT_IRQCHIP_SPLIT,
	KVMKIT_IRQCHIP_MODES,
};

struct kvmkit_irqchip_config {
	enum kvmkit_irqchip_mode mode;
	bool pit; /* an i8254: KVM's in kernel mode, kvmkit's in split mode */
	bool pic; /* split mode: kvmkit's 8259 pair (kernel mode: KVM's, always) */
	bool pit_reinject; /* kernel mode: lost-tick reinjection (off is recommended;
			       * kvmkit's split-mode PIT never reinjects) */
	unsigned int split_routes; /* split mode: GSIs reserved for IOAPIC pins (24) */
	/* arm64 (the vGIC, kernel mode): interrupts incl. the 32 SGIs and
	 * PPIs, a multiple of 32 in 64..992 (256; KVM takes no more than 992
	 * although its docs say 1024); version 0: GICv3, else
	 * GICv2; 2 or 3: only that one (include/kvmkit/arm64.h). */
	unsigned int gic_nr_irqs;
	unsigned int gic_version;
};

void kvmkit_irqchip_config_init(struct kvmkit_irqchip_config *cfg);

/* Creates the irqchip (cfg NULL: kernel mode with PIT). -EBUSY
 * (KVMKIT_ERR_STATE) if a vCPU already exists or an irqchip was already
 * created for @vm; -ENOTSUP if the host lacks the mode. */
int kvmkit_irqchip_create(struct kvmkit_vm *vm, const struct kvmkit_irqchip_config *cfg,
			  struct kvmkit_irqchip **out);
/* The VM's irqchip, or NULL. */
struct kvmkit_irqchip *kvmkit_vm_irqchip(struct kvmkit_vm *vm);
enum kvmkit_irqchip_mode kvmkit_irqchip_mode(const struct kvmkit_irqchip *chip);
const char *kvmkit_irqchip_mode_name(enum kvmkit_irqchip_mode mode);

/* Interrupt controller input pins (24 IOAPIC pins on x86). */
unsigned int kvmkit_irqchip_pins(const struct kvmkit_irqchip *chip);
/* KVM_CAP_IRQ_ROUTING: the number of routes the kernel accepts. */
unsigned int kvmkit_irqchip_route_capacity(const struct kvmkit_irqchip *chip);

/* ---- routing table ------------------------------------------------------
 * Changes are staged in kvmkit's copy and take effect at commit, which sends
 * the whole table (KVM_SET_GSI_ROUTING replaces it). A failed commit leaves
 * the kernel's previous table in force and the staged copy rolled back. */
int kvmkit_irq_route_irqchip(struct kvmkit_irqchip *chip, uint32_t gsi, uint32_t irqchip,
			     uint32_t pin);
int kvmkit_irq_route_msi(struct kvmkit_irqchip *chip, uint32_t gsi, uint64_t address, uint32_t data,
			 int32_t devid /* -1: none */);
/* Removes every entry of @gsi (a GSI may have several irqchip entries).
 * -EBUSY while an irqfd is bound to it. */
int kvmkit_irq_route_remove(struct kvmkit_irqchip *chip, uint32_t gsi);
/* -EBUSY (and rolled back) if the table would leave a GSI that has an
 * irqfd bound without a route (a removal staged before the bind). */
int kvmkit_irq_routes_commit(struct kvmkit_irqchip *chip);
/* Number of committed entries for @gsi (0: unrouted). */
unsigned int kvmkit_irq_route_count(struct kvmkit_irqchip *chip, uint32_t gsi);

/* ---- GSI allocator ------------------------------------------------------
 * Device lines come from the back end's line range (x86: the IOAPIC-only
 * pins 16..23, never a legacy ISA pin), MSI GSIs from past the pins.
 * Exhaustion is -ENOSPC, never a shared GSI. */
int kvmkit_gsi_alloc_line(struct kvmkit_irqchip *chip);
int kvmkit_gsi_alloc_msi(struct kvmkit_irqchip *chip);
/* An interrupt controller pin for a platform device (x86: a virtio-mmio
 * device's IOAPIC pin, which firmware tables name): the lowest free pin
 * from 5 up, skipping the PC's legacy pins 0, 1, 2, 4, 8, 12, 14 and 15,
 * every pin a line handle is open on (kvmkit_line_open), and pins handed
 * out before; then the device-line range. -ENOSPC when none is left.
 * Freed with kvmkit_gsi_free(). Pins 5..15 also reach the PIC in kernel
 * mode, as every ISA pin does. arm64 (vGIC): there are no legacy pins,
 * every device interrupt is an SPI: the lowest free device line (SPI 16
 * up, INTID 48 up) no line handle is open on. */
int kvmkit_gsi_alloc_pin(struct kvmkit_irqchip *chip);
/* -EBUSY while an irqfd is bound to @gsi. */
int kvmkit_gsi_free(struct kvmkit_irqchip *chip, uint32_t gsi);

/* ---- delivery status ---------------------------------------------------- */
enum kvmkit_irq_result {
	KVMKIT_IRQ_NONE = 0, /* no status: a de-assertion */
	KVMKIT_IRQ_DELIVERED, /* accepted by .cpus CPUs */
	KVMKIT_IRQ_COALESCED, /* the previous interrupt is still pending */
	KVMKIT_IRQ_MASKED, /* masked or otherwise not delivered */
};

struct kvmkit_irq_status {
	enum kvmkit_irq_result result;
	unsigned int cpus; /* DELIVERED: how many CPUs took it */
};

const char *kvmkit_irq_result_name(enum kvmkit_irq_result r);

/* ---- IRQ lines ----------------------------------------------------------
 * Drive GSI @gsi to @level (true = asserted, whatever polarity the guest
 * programmed). Returns 0 or a negative error; the delivery status of an
 * assertion goes to @st (may be NULL). */
int kvmkit_irq_line(struct kvmkit_irqchip *chip, uint32_t gsi, bool level,
		    struct kvmkit_irq_status *st);
/* Edge: level 1 then 0; @st is the status of the rising edge. */
int kvmkit_irq_pulse(struct kvmkit_irqchip *chip, uint32_t gsi, struct kvmkit_irq_status *st);

/* A device's interrupt wire to one GSI. The handle remembers the level it
 * drives and only calls the back end when it changes (set) or for every
 * pulse. Calls on one handle are serialised by its owner (the device). */
struct kvmkit_line;
int kvmkit_line_open(struct kvmkit_irqchip *chip, uint32_t gsi, struct kvmkit_line **out);
int kvmkit_line_set(struct kvmkit_line *line, bool level, struct kvmkit_irq_status *st);
int kvmkit_line_pulse(struct kvmkit_line *line, struct kvmkit_irq_status *st);
/* Drives the GSI to @level every time, whatever this or other handles last
 * drove (no wired-OR): for a device that models the wire's one driver and
 * whose guest expects each write to reach the pin, as the test device's
 * IRQ-line ports, which the guest may lower while the host raised the
 * line with kvmkit_irq_line(). */
int kvmkit_line_force(struct kvmkit_line *line, bool level, struct kvmkit_irq_status *st);
uint32_t kvmkit_line_gsi(const struct kvmkit_line *line);
/* Lowers the line if it is high, then frees the handle. NULL is a no-op. */
void kvmkit_line_close(struct kvmkit_line *line);

/* ---- MSI ---------------------------------------------------------------- */
/* One-shot MSI (KVM_SIGNAL_MSI). @devid -1: none (only with
 * KVM_CAP_MSI_DEVID otherwise). Status: DELIVERED, or MASKED when the guest
 * blocked it. */
int kvmkit_signal_msi(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data, int32_t devid,
		      struct kvmkit_irq_status *st);

/* A device's MSI vector: a GSI of its own with an MSI route and an irqfd, so
 * that signalling it is one eventfd write and KVM injects it (no ioctl).
 * Configure (or reconfigure: the guest reprograms its MSI address/data)
 * before signalling; a vector that was never configured or was masked drops
 * signals (counted in its GSI's statistics as irqfd signals only). */
struct kvmkit_msi;
int kvmkit_msi_open(struct kvmkit_irqchip *chip, struct kvmkit_msi **out);
int kvmkit_msi_configure(struct kvmkit_msi *msi, uint64_t address, uint32_t data, int32_t devid);
int kvmkit_msi_mask(struct kvmkit_msi *msi, bool masked);
int kvmkit_msi_signal(struct kvmkit_msi *msi);
uint32_t kvmkit_msi_gsi(const struct kvmkit_msi *msi);
void kvmkit_msi_close(struct kvmkit_msi *msi);

/* ---- irqfd -------------------------------------------------------------- *
 * Binds eventfd @fd to @gsi (the route must be committed first: -EBUSY
 * otherwise). With @resample_fd >= 0 the interrupt is level-triggered: it
 * stays asserted until the guest's EOI, which signals @resample_fd; a device
 * that still needs service then signals @fd again. */
int kvmkit_irqfd_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd);
/* -ENOENT if @fd is not bound to @gsi (also: already unbound). */
int kvmkit_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd);
/* Signals an irqfd bound to @gsi (one eventfd write) and counts it in the
 * GSI's statistics; devices use this rather than writing the fd directly.
 * An irqfd kvmkit serves itself (split irqchip: level irqfds, pins whose
 * entry is masked or level) is injected on the caller's thread instead,
 * with the same effect and no wake-up of kvmkit's interrupt thread. */
int kvmkit_irqfd_signal(struct kvmkit_irqchip *chip, uint32_t gsi, int fd);

/* ---- statistics --------------------------------------------------------- */
struct kvmkit_gsi_stats {
	uint64_t asserts; /* rising edges / level-1 calls via kvmkit */
	uint64_t deliveries; /* DELIVERED */
	uint64_t coalesced; /* COALESCED */
	uint64_t masked; /* MASKED */
	uint64_t irqfd_signals; /* kvmkit_irqfd_signal() calls */
	/* irqfds bound to the GSI now: injected by KVM itself, and serviced
	 * by kvmkit's interrupt thread (split mode: pins and level irqfds). */
	uint64_t irqfds_kernel;
	uint64_t irqfds_thread;
};

int kvmkit_irq_gsi_stats(struct kvmkit_irqchip *chip, uint32_t gsi, struct kvmkit_gsi_stats *out);

/* ---- saving and restoring ---------------------------------------------
 * The irqchip's state as one versioned blob (malloc'ed, the caller frees
 * it): kvmkit's routing table and GSI allocator, and the controller's
 * registers (x86 kernel mode: PIC pair, IOAPIC and PIT through
 * KVM_GET_IRQCHIP/KVM_GET_PIT2; split mode: kvmkit's IOAPIC, PIC and PIT
 * models; arm64: the vGIC's distributor, redistributors or banked
 * registers, line levels (GICv3), CPU interfaces and ITS registers, its
 * tables and the LPIs' pending bits written into guest RAM first). Not saved: the LAPICs
 * (per vCPU state), irqfds and line or MSI
 * handles (devices re-create them after a restore). Save with the VM
 * paused or stopped. Restore into a new irqchip of the same mode and
 * configuration with no irqfd bound, before its VM runs (arm64: once every
 * vCPU exists, the vGIC being initialised then); a blob of another
 * version or mode, truncated or inconsistent, is refused (KVMKIT_ERR_FORMAT)
 * and nothing changes. */
int kvmkit_irqchip_save(struct kvmkit_irqchip *chip, void **buf, size_t *len);
int kvmkit_irqchip_restore(struct kvmkit_irqchip *chip, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
