// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: kvmkit_irqchip_restore() on arbitrary blobs (a saved
 * irqchip state comes from a file), against a generic irqchip with a fake
 * back end (no KVM). Traps if:
 *  - a blob is accepted and the chip then saves something else than that
 *    blob (a restore must load exactly what it was given);
 *  - a blob is refused and the chip's table, allocator or registers
 *    changed (nothing may change on error);
 *  - the controller is handed a table larger than its capacity or a route
 *    it would not accept.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "core/internal.h"
#include "irq/irq_backend.h"

#define PINS 8
#define CAPACITY 64

static uint32_t regs; /* the fake controller's registers */

static int f_create(struct kvmkit_irqchip *chip, const struct kvmkit_irqchip_config *cfg)
{
	chip->pins = PINS;
	chip->line_lo = 4;
	chip->line_hi = PINS;
	chip->msi_lo = PINS;
	return 0;
}

static void f_destroy(struct kvmkit_irqchip *chip)
{
}

static void f_default_routes(struct kvmkit_irqchip *chip, struct kvm_irq_routing_entry *tab,
			     unsigned int *n)
{
	*n = 0;
	for (uint32_t g = 0; g < PINS; g++) {
		memset(&tab[*n], 0, sizeof(tab[*n]));
		tab[*n].gsi = g;
		tab[*n].type = KVM_IRQ_ROUTING_IRQCHIP;
		tab[*n].u.irqchip.pin = g;
		(*n)++;
	}
}

static int f_check_route(struct kvmkit_irqchip *chip, uint32_t irqchip, uint32_t pin)
{
	if (irqchip != 0 || pin >= PINS)
		return kvmk_err_param("route", "pin", "chip 0, pins 0-7", "%u/%u", irqchip, pin);
	return 0;
}

static int f_commit(struct kvmkit_irqchip *chip, const struct kvm_irq_routing_entry *tab,
		    unsigned int n)
{
	CHECK(n <= CAPACITY);
	for (unsigned int i = 0; i < n; i++) {
		CHECK(tab[i].gsi < KVMKIT_MAX_GSI);
		CHECK(tab[i].type == KVM_IRQ_ROUTING_MSI ||
		      (tab[i].u.irqchip.irqchip == 0 && tab[i].u.irqchip.pin < PINS));
	}
	return 0;
}

static int f_set_line(struct kvmkit_irqchip *chip, uint32_t gsi, bool level, bool *failed)
{
	return 1;
}

static int f_signal_msi(struct kvmkit_irqchip *chip, uint64_t a, uint32_t d, uint32_t f,
			uint32_t id, bool *failed)
{
	return 1;
}

static int f_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int rfd)
{
	return 0;
}

static int f_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	return 0;
}

static unsigned int f_in_kernel(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	return 0;
}

static int f_save(struct kvmkit_irqchip *chip, struct kvmk_blob *out)
{
	return kvmk_blob_put_u32(out, regs);
}

static int f_restore(struct kvmkit_irqchip *chip, const uint8_t *p, size_t len)
{
	if (len != 4)
		return kvmk_err_format("restore", "fake state is 4 bytes");
	memcpy(&regs, p, 4);
	return 0;
}

static const struct kvmk_irqchip_ops ops = {
	.name = "fuzz",
	.create = f_create,
	.destroy = f_destroy,
	.default_routes = f_default_routes,
	.check_route = f_check_route,
	.commit = f_commit,
	.set_line = f_set_line,
	.signal_msi = f_signal_msi,
	.irqfd_bind = f_bind,
	.irqfd_unbind = f_unbind,
	.irqfds_in_kernel = f_in_kernel,
	.save = f_save,
	.restore = f_restore,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_irqchip *chip;
	void *before, *after;
	size_t blen, alen;

	kvmkit_irqchip_config_init(&cfg);
	regs = 0x1234;
	if (kvmk_irqchip_new(NULL, &ops, &cfg, CAPACITY, &chip))
		return 0;
	CHECK(kvmkit_irqchip_save(chip, &before, &blen) == 0);
	if (kvmkit_irqchip_restore(chip, data, size) == 0) {
		CHECK(kvmkit_irqchip_save(chip, &after, &alen) == 0);
		CHECK(alen == size && !memcmp(after, data, size));
	} else {
		CHECK(kvmkit_irqchip_save(chip, &after, &alen) == 0);
		CHECK(alen == blen && !memcmp(after, before, blen));
	}
	free(before);
	free(after);
	kvmk_irqchip_free(chip);
	return 0;
}
