/* SPDX-License-Identifier: MIT */
/*
 * The contract between the generic interrupt layer (src/irq/) and its back
 * ends (src/arch/<arch>/irqchip_*.c, and a fake one in the unit tests).
 *
 * The generic layer owns what every back end shares: the routing table
 * (staged and committed copies), the GSI allocator, the irqfds bound (each
 * (GSI, fd) pair, and their count per GSI: a route cannot go while one is
 * bound), statistics, line and MSI handles. A back end owns the interrupt controller: it turns a
 * committed table, a line level, an MSI or an irqfd into KVM calls or
 * model state. The generic code never asks which back end it talks to.
 *
 * Locking: chip->lock protects the tables, the allocator and the irqfd
 * counts. Ops marked (locked) are called with it held and must not call
 * the generic API back; the others are called without it.
 */
#ifndef KVMKIT_IRQ_BACKEND_H
#define KVMKIT_IRQ_BACKEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

#include <kvmkit/irq.h>

#include "core/internal.h" /* struct kvmk_blob */

/* A back end's raw status for a line or an MSI: > 0 delivered to that many
 * CPUs, 0 coalesced, any negative value not delivered (masked). Models use
 * this value for "masked" to tell it from -errno in their own results. */
#define KVMK_IRQ_MASKED (-1000)

struct kvmk_irqchip_ops {
	const char *name;
	/* Sets up the controller (the generic part is ready, routes are not
	 * yet: default_routes follows). On failure destroy is still called. */
	int (*create)(struct kvmkit_irqchip *chip, const struct kvmkit_irqchip_config *cfg);
	/* Releases everything create made; runs after the vCPUs stopped. */
	void (*destroy)(struct kvmkit_irqchip *chip);
	/* The table the controller starts with. */
	void (*default_routes)(struct kvmkit_irqchip *chip, struct kvm_irq_routing_entry *tab,
			       unsigned int *n);
	/* Is (irqchip, pin) a valid irqchip route target? 0 or an error. */
	int (*check_route)(struct kvmkit_irqchip *chip, uint32_t irqchip, uint32_t pin);
	/* (locked) Makes @tab the controller's table. On error the previous
	 * table must still be in force. */
	int (*commit)(struct kvmkit_irqchip *chip, const struct kvm_irq_routing_entry *tab,
		      unsigned int n);
	/* Drives @gsi; returns the raw status (see KVMK_IRQ_MASKED) of an
	 * assertion, 0 for a de-assertion, or -errno with the error recorded
	 * (then *failed is set). */
	int (*set_line)(struct kvmkit_irqchip *chip, uint32_t gsi, bool level, bool *failed);
	/* One MSI; raw status or -errno (*failed set). */
	int (*signal_msi)(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data,
			  uint32_t flags, uint32_t devid, bool *failed);
	/* (locked) Binds @fd to @gsi, whose committed route exists. */
	int (*irqfd_bind)(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd);
	/* Unbinds @fd from @gsi; the generic layer has checked that the pair
	 * is bound. Takes chip->lock itself where it needs it. */
	int (*irqfd_unbind)(struct kvmkit_irqchip *chip, uint32_t gsi, int fd);
	/* (locked) How many of @gsi's irqfds KVM injects itself. */
	unsigned int (*irqfds_in_kernel)(struct kvmkit_irqchip *chip, uint32_t gsi);
	/* Optional. kvmkit_irqfd_signal() of @fd on @gsi: 1 if the back end
	 * injected it itself (the eventfd is left alone), 0 if the eventfd
	 * must be written, -errno (recorded) on failure. */
	int (*irqfd_signal)(struct kvmkit_irqchip *chip, uint32_t gsi, int fd);
	/* Optional. Once every configured vCPU exists (arm64: the vGIC's
	 * NR_IRQS and CTRL_INIT, then what was held back until then). */
	int (*vcpus_ready)(struct kvmkit_irqchip *chip);
	/* Appends the controller's registers to @out (state.c frames them). */
	int (*save)(struct kvmkit_irqchip *chip, struct kvmk_blob *out);
	/* Loads what save wrote; @p is untrusted: check every byte, change
	 * nothing on error. The routing table is already restored. */
	int (*restore)(struct kvmkit_irqchip *chip, const uint8_t *p, size_t len);
};

struct kvmk_irqfd_binding {
	uint32_t gsi;
	int fd;
	bool unbinding; /* an unbind of it is in progress */
};

/* The part of a line or MSI handle the chip knows: handles are on their
 * chip's list (under chip->lock) so that a chip released with its VM can
 * orphan those still open instead of leaving them pointing at it. */
struct kvmk_irq_handle {
	struct kvmk_irq_handle *prev, *next;
	struct kvmkit_irqchip *chip; /* NULL once the chip is gone */
};

struct kvmkit_irqchip {
	const struct kvmk_irqchip_ops *ops;
	void *priv; /* the back end's state */
	struct kvmkit_vm *vm; /* NULL for a back end without KVM (tests) */
	enum kvmkit_irqchip_mode mode;
	unsigned int capacity; /* routes the controller accepts */
	unsigned int pins; /* controller input pins */
	/* GSI ranges: device lines [line_lo, line_hi), MSIs [msi_lo, capacity). */
	uint32_t line_lo, line_hi, msi_lo;
	/* The controller has no platform pins of its own (arm64's vGIC: every
	 * device interrupt is an SPI): kvmkit_gsi_alloc_pin() hands out device
	 * lines instead of x86's ISA-numbered pins. */
	bool pins_are_lines;
	bool has_msi_devid; /* KVM_CAP_MSI_DEVID, asked once */

	pthread_mutex_t lock;
	/* Line handles on one GSI are wired-OR: how many hold it high, and a
	 * lock that keeps each count change and its line call together. */
	pthread_mutex_t line_lock;
	uint16_t line_high[KVMKIT_MAX_GSI];
	struct kvm_irq_routing_entry *staged;
	unsigned int nstaged;
	struct kvm_irq_routing_entry *committed;
	unsigned int ncommitted;
	uint8_t allocated[KVMKIT_MAX_GSI];
	/* Platform pins (below line_lo) kvmkit_gsi_alloc_pin() handed out,
	 * and line handles open per GSI (that pin allocation skips). */
	uint32_t pins_out;
	uint16_t lines_open[KVMKIT_MAX_GSI];
	uint16_t irqfds[KVMKIT_MAX_GSI];
	/* The bound pairs (KVM's deassign succeeds for a pair it does not
	 * have, so only this list can refuse an unknown unbind). */
	struct kvmk_irqfd_binding *bindings;
	unsigned int nbindings, cbindings;
	struct kvmk_irq_handle *handles; /* open line and MSI handles */
	struct kvmkit_gsi_stats stats[KVMKIT_MAX_GSI];
};

/* Generic part of creation: allocates the chip, fills the fields above from
 * the arguments, runs ops->create and installs the default routes. @vm may
 * be NULL (a back end without KVM). */
int kvmk_irqchip_new(struct kvmkit_vm *vm, const struct kvmk_irqchip_ops *ops,
		     const struct kvmkit_irqchip_config *cfg, unsigned int capacity,
		     struct kvmkit_irqchip **out);
void kvmk_irqchip_free(struct kvmkit_irqchip *chip);

/* Puts @h on @chip's list of handles / takes it off (a no-op once the
 * chip is gone). */
void kvmk_irq_handle_attach(struct kvmkit_irqchip *chip, struct kvmk_irq_handle *h);
void kvmk_irq_handle_detach(struct kvmk_irq_handle *h);
/* The error of a call on an orphaned handle (-EBUSY, recorded). */
int kvmk_irq_handle_gone(const char *op);

/* Copies the committed entries of @gsi (at most @max); takes chip->lock. */
unsigned int kvmk_irq_routes_of(struct kvmkit_irqchip *chip, uint32_t gsi,
				struct kvm_irq_routing_entry *out, unsigned int max);
/* The one MSI entry of @gsi in @tab, or NULL if @gsi has none or more. */
const struct kvm_irq_routing_entry *kvmk_irq_only_msi(const struct kvm_irq_routing_entry *tab,
						      unsigned int n, uint32_t gsi);
/* Range check every GSI-taking call makes. */
int kvmk_irq_check_gsi(const char *op, uint32_t gsi);

/* The back end for @mode on this architecture, or NULL (src/arch/). */
const struct kvmk_irqchip_ops *kvmk_arch_irqchip_ops(enum kvmkit_irqchip_mode mode);

#endif
