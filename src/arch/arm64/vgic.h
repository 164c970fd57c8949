/* SPDX-License-Identifier: MIT */
/* The arm64 vGIC back end's state, shared by irqchip_vgic.c (the GIC, its
 * init, routes, lines, irqfds) and vgic_its.c (the ITS and MSIs, PPIs,
 * probing). Internal. */
#ifndef KVMKIT_ARCH_ARM64_VGIC_H
#define KVMKIT_ARCH_ARM64_VGIC_H

#include <stdbool.h>
#include <stdint.h>

#include "irq/irq_backend.h"

struct queued_irqfd {
	uint32_t gsi;
	int caller_fd; /* the fd number the caller bound (and will unbind) */
	int fd, resample_fd; /* our dups: the eventfds stay alive until bound */
};

struct vgic {
	int vm_fd;
	int dev_fd;
	int its_fd; /* the ITS (GICv3 with a host that has one), or -1 */
	int version; /* 2 or 3 */
	unsigned int nr_irqs;
	bool resample; /* KVM_CAP_IRQFD_RESAMPLE */
	bool ready; /* CTRL_INIT done (atomic: set_line reads it unlocked) */
	bool table_pending; /* a table was committed before the init */
	struct queued_irqfd *queue; /* under chip->lock */
	unsigned int nqueue;
};

extern const struct kvmk_irqchip_ops kvmk_arm64_vgic;

/* KVM_SET_DEVICE_ATTR on device @fd; the error recorded naming @what. */
int kvmk_vgic_dev_attr(int fd, uint32_t group, uint64_t attr, void *val, const char *what);
/* CTRL_INIT done (acquire: lines and MSIs read it without the lock). */
static inline bool kvmk_vgic_ready(struct vgic *g)
{
	return __atomic_load_n(&g->ready, __ATOMIC_ACQUIRE);
}
/* Creates and places the ITS of a GICv3 where the host has one. */
int kvmk_vgic_create_its(struct vgic *g);
/* The signal_msi op: KVM_SIGNAL_MSI through the ITS. */
int kvmk_vgic_signal_msi(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data,
			 uint32_t flags, uint32_t devid, bool *failed);

/* The save and restore ops (vgic_state.c): a GICv3 without LPIs. */
int kvmk_vgic_save(struct kvmkit_irqchip *chip, struct kvmk_blob *out);
int kvmk_vgic_restore(struct kvmkit_irqchip *chip, const uint8_t *p, size_t len);

#endif
