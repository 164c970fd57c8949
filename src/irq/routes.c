// SPDX-License-Identifier: MIT
/*
 * kvmkit's GSI routing table and the GSI allocator. KVM_SET_GSI_ROUTING
 * replaces the whole table (api.rst 4.52), so kvmkit keeps a staged copy
 * that route calls edit and a committed copy that is what the controller
 * has; a commit hands the whole staged table to the back end, and a refused
 * commit rolls the staged copy back.
 */
#include <string.h>

#define KVMK_LOG_MODULE "irq"
#include "core/internal.h"
#include "irq/irq_backend.h"

int kvmk_irq_check_gsi(const char *op, uint32_t gsi)
{
	if (gsi >= KVMKIT_MAX_GSI)
		return kvmk_err_param(op, "gsi", "beyond kvmkit's GSI range", "%u (max %u)", gsi,
				      KVMKIT_MAX_GSI - 1);
	return 0;
}

unsigned int kvmk_irq_routes_of(struct kvmkit_irqchip *chip, uint32_t gsi,
				struct kvm_irq_routing_entry *out, unsigned int max)
{
	unsigned int n = 0;

	pthread_mutex_lock(&chip->lock);
	for (unsigned int i = 0; i < chip->ncommitted && n < max; i++)
		if (chip->committed[i].gsi == gsi)
			out[n++] = chip->committed[i];
	pthread_mutex_unlock(&chip->lock);
	return n;
}

const struct kvm_irq_routing_entry *kvmk_irq_only_msi(const struct kvm_irq_routing_entry *tab,
						      unsigned int n, uint32_t gsi)
{
	const struct kvm_irq_routing_entry *found = NULL;

	for (unsigned int i = 0; i < n; i++) {
		if (tab[i].gsi != gsi)
			continue;
		if (found || tab[i].type != KVM_IRQ_ROUTING_MSI)
			return NULL;
		found = &tab[i];
	}
	return found;
}

static int stage(struct kvmkit_irqchip *chip, const struct kvm_irq_routing_entry *e)
{
	if (chip->nstaged >= chip->capacity)
		return kvmk_err_resource("kvmkit_irq_route", ENOSPC,
					 "routing table full (%u entries, KVM_CAP_IRQ_ROUTING)",
					 chip->capacity);
	chip->staged[chip->nstaged++] = *e;
	return 0;
}

static void unstage_gsi(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	unsigned int j = 0;

	for (unsigned int i = 0; i < chip->nstaged; i++)
		if (chip->staged[i].gsi != gsi)
			chip->staged[j++] = chip->staged[i];
	chip->nstaged = j;
}

int kvmkit_irq_route_irqchip(struct kvmkit_irqchip *chip, uint32_t gsi, uint32_t irqchip,
			     uint32_t pin)
{
	struct kvm_irq_routing_entry e = { .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP };
	int r = kvmk_irq_check_gsi("kvmkit_irq_route_irqchip", gsi);

	if (r)
		return r;
	r = chip->ops->check_route(chip, irqchip, pin);
	if (r)
		return r;
	e.u.irqchip.irqchip = irqchip;
	e.u.irqchip.pin = pin;
	pthread_mutex_lock(&chip->lock);
	/* An irqchip route may sit beside irqchip routes of other chips for
	 * the same GSI (PIC + IOAPIC) but replaces an MSI route; one pin per
	 * chip per GSI, so the same chip's entry is replaced. */
	for (unsigned int i = 0; i < chip->nstaged; i++) {
		const struct kvm_irq_routing_entry *s = &chip->staged[i];

		if (s->gsi != gsi)
			continue;
		if (s->type != KVM_IRQ_ROUTING_IRQCHIP) {
			unstage_gsi(chip, gsi);
			break;
		}
		if (s->u.irqchip.irqchip == irqchip) {
			chip->staged[i].u.irqchip.pin = pin;
			pthread_mutex_unlock(&chip->lock);
			return 0;
		}
	}
	r = stage(chip, &e);
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int kvmkit_irq_route_msi(struct kvmkit_irqchip *chip, uint32_t gsi, uint64_t address, uint32_t data,
			 int32_t devid)
{
	const char *op = "kvmkit_irq_route_msi";
	struct kvm_irq_routing_entry e = { .gsi = gsi, .type = KVM_IRQ_ROUTING_MSI };
	int r = kvmk_irq_check_gsi(op, gsi);

	if (r)
		return r;
	e.u.msi.address_lo = (uint32_t)address;
	e.u.msi.address_hi = (uint32_t)(address >> 32);
	e.u.msi.data = data;
	if (devid >= 0) {
		/* api.rst 4.52: only where the VM reports KVM_CAP_MSI_DEVID. */
		if (!chip->has_msi_devid)
			return kvmk_err_unsupported(op, ENOTSUP,
						    "MSI device ids (KVM_CAP_MSI_DEVID)");
		e.flags = KVM_MSI_VALID_DEVID;
		e.u.msi.devid = (uint32_t)devid;
	}
	pthread_mutex_lock(&chip->lock);
	unstage_gsi(chip, gsi); /* an MSI route is the GSI's only entry */
	r = stage(chip, &e);
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int kvmkit_irq_route_remove(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	int r = kvmk_irq_check_gsi("kvmkit_irq_route_remove", gsi);

	if (r)
		return r;
	pthread_mutex_lock(&chip->lock);
	if (chip->irqfds[gsi]) {
		pthread_mutex_unlock(&chip->lock);
		/* Pitfall: deassign irqfds before their route goes away. */
		return kvmk_err_state("gsi", "has irqfds bound", "no irqfd bound", "route_remove");
	}
	unstage_gsi(chip, gsi);
	pthread_mutex_unlock(&chip->lock);
	return 0;
}

/* A GSI with irqfds bound that the staged table leaves without a route,
 * or -1: a removal staged before the irqfd was bound is caught here. */
static int unrouted_irqfd(const struct kvmkit_irqchip *chip)
{
	for (unsigned int i = 0; i < chip->nbindings; i++) {
		bool routed = false;

		for (unsigned int j = 0; j < chip->nstaged && !routed; j++)
			routed = chip->staged[j].gsi == chip->bindings[i].gsi;
		if (!routed)
			return (int)chip->bindings[i].gsi;
	}
	return -1;
}

int kvmkit_irq_routes_commit(struct kvmkit_irqchip *chip)
{
	int r, gsi;

	pthread_mutex_lock(&chip->lock);
	gsi = unrouted_irqfd(chip);
	if (gsi >= 0) {
		/* Pitfall: deassign irqfds before their route goes away. */
		kvmk_debug("commit refused: gsi %d would lose its route with irqfds bound", gsi);
		r = kvmk_err_state("gsi", "has irqfds bound", "no irqfd bound", "routes_commit");
	} else {
		r = chip->ops->commit(chip, chip->staged, chip->nstaged);
	}
	if (r) {
		/* The controller kept its previous table; so do we. */
		memcpy(chip->staged, chip->committed, chip->ncommitted * sizeof(*chip->staged));
		chip->nstaged = chip->ncommitted;
	} else {
		memcpy(chip->committed, chip->staged, chip->nstaged * sizeof(*chip->staged));
		chip->ncommitted = chip->nstaged;
	}
	pthread_mutex_unlock(&chip->lock);
	return r;
}

unsigned int kvmkit_irq_route_count(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	unsigned int n = 0;

	pthread_mutex_lock(&chip->lock);
	for (unsigned int i = 0; i < chip->ncommitted; i++)
		n += chip->committed[i].gsi == gsi;
	pthread_mutex_unlock(&chip->lock);
	return n;
}

/* ---- allocator ---------------------------------------------------------- */

static int alloc_in(struct kvmkit_irqchip *chip, uint32_t lo, uint32_t hi, const char *what)
{
	pthread_mutex_lock(&chip->lock);
	for (uint32_t g = lo; g < hi; g++) {
		if (!chip->allocated[g]) {
			chip->allocated[g] = 1;
			memset(&chip->stats[g], 0, sizeof(chip->stats[g]));
			pthread_mutex_unlock(&chip->lock);
			return (int)g;
		}
	}
	pthread_mutex_unlock(&chip->lock);
	return kvmk_err_resource("kvmkit_gsi_alloc", ENOSPC, "no free %s GSI in %u..%u", what, lo,
				 hi ? hi - 1 : 0);
}

int kvmkit_gsi_alloc_line(struct kvmkit_irqchip *chip)
{
	return alloc_in(chip, chip->line_lo, chip->line_hi, "line");
}

int kvmkit_gsi_alloc_msi(struct kvmkit_irqchip *chip)
{
	uint32_t hi = chip->capacity < KVMKIT_MAX_GSI ? chip->capacity : KVMKIT_MAX_GSI;

	return alloc_in(chip, chip->msi_lo, hi, "MSI");
}

/* The ISA pins a PC platform uses (PIT, keyboard, cascade, COM1, RTC,
 * mouse, IDE): never handed out, open line or not. */
#define LEGACY_PINS                                                                            \
	((1u << 0) | (1u << 1) | (1u << 2) | (1u << 4) | (1u << 8) | (1u << 12) | (1u << 14) | \
	 (1u << 15))
#define FIRST_PIN 5

/* A device line no line handle is open on (lines_open: see above). */
static int alloc_pin_line(struct kvmkit_irqchip *chip)
{
	pthread_mutex_lock(&chip->lock);
	for (uint32_t g = chip->line_lo; g < chip->line_hi; g++) {
		if (chip->allocated[g] || chip->lines_open[g])
			continue;
		chip->allocated[g] = 1;
		memset(&chip->stats[g], 0, sizeof(chip->stats[g]));
		pthread_mutex_unlock(&chip->lock);
		return (int)g;
	}
	pthread_mutex_unlock(&chip->lock);
	return kvmk_err_resource("kvmkit_gsi_alloc_pin", ENOSPC,
				 "no free interrupt line in %u..%u (open lines skipped)",
				 chip->line_lo, chip->line_hi ? chip->line_hi - 1 : 0);
}

int kvmkit_gsi_alloc_pin(struct kvmkit_irqchip *chip)
{
	uint32_t hi = chip->line_hi < 32 ? chip->line_hi : 32;

	if (chip->pins_are_lines)
		return alloc_pin_line(chip);
	pthread_mutex_lock(&chip->lock);
	for (uint32_t g = FIRST_PIN; g < hi; g++) {
		if ((LEGACY_PINS & (1u << g)) || chip->lines_open[g])
			continue;
		if (g < chip->line_lo ? (chip->pins_out & (1u << g)) : chip->allocated[g])
			continue;
		if (g < chip->line_lo)
			chip->pins_out |= 1u << g;
		else
			chip->allocated[g] = 1;
		memset(&chip->stats[g], 0, sizeof(chip->stats[g]));
		pthread_mutex_unlock(&chip->lock);
		return (int)g;
	}
	pthread_mutex_unlock(&chip->lock);
	return kvmk_err_resource(
		"kvmkit_gsi_alloc_pin", ENOSPC,
		"no free interrupt pin in %u..%u (legacy pins and open lines skipped)", FIRST_PIN,
		hi ? hi - 1 : 0);
}

int kvmkit_gsi_free(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	int r = kvmk_irq_check_gsi("kvmkit_gsi_free", gsi);

	if (r)
		return r;
	if (gsi < chip->line_lo && gsi < 32 && (chip->pins_out & (1u << gsi))) {
		pthread_mutex_lock(&chip->lock);
		r = chip->irqfds[gsi] ? kvmk_err_state("gsi", "has irqfds bound", "no irqfd bound",
						       "gsi_free") :
					0;
		if (!r)
			chip->pins_out &= ~(1u << gsi);
		pthread_mutex_unlock(&chip->lock);
		return r;
	}
	if (gsi < chip->line_lo)
		return kvmk_err_param("kvmkit_gsi_free", "gsi", "platform GSIs are not allocated",
				      "%u", gsi);
	pthread_mutex_lock(&chip->lock);
	if (!chip->allocated[gsi] || chip->irqfds[gsi]) {
		bool bound = chip->allocated[gsi];

		pthread_mutex_unlock(&chip->lock);
		return bound ? kvmk_err_state("gsi", "has irqfds bound", "no irqfd bound",
					      "gsi_free") :
			       kvmk_err_param("kvmkit_gsi_free", "gsi", "not allocated", "%u", gsi);
	}
	chip->allocated[gsi] = 0;
	pthread_mutex_unlock(&chip->lock);
	return 0;
}
