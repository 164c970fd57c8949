// SPDX-License-Identifier: MIT
/*
 * The irqchip object: creation (choosing the architecture's back end for
 * the mode), the generic state every back end shares, and release. The
 * routing table, allocator, lines, MSIs and irqfds are in the other files
 * of this directory; the controllers themselves are in src/arch/.
 */
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "irq"
#include "core/internal.h"
#include "irq/irq_backend.h"
#include "kvm/vm_ext.h"

/* KVM_MAX_IRQ_ROUTES: no kernel accepts more. */
#define MAX_ROUTES 4096

static const char *const mode_names[] = { "kernel", "split" };

const char *kvmkit_irqchip_mode_name(enum kvmkit_irqchip_mode mode)
{
	return (unsigned int)mode < KVMKIT_ARRAY_SIZE(mode_names) ? mode_names[mode] : "?";
}

enum kvmkit_irqchip_mode kvmkit_irqchip_mode(const struct kvmkit_irqchip *chip)
{
	return chip->mode;
}

unsigned int kvmkit_irqchip_pins(const struct kvmkit_irqchip *chip)
{
	return chip->pins;
}

unsigned int kvmkit_irqchip_route_capacity(const struct kvmkit_irqchip *chip)
{
	return chip->capacity;
}

void kvmkit_irqchip_config_init(struct kvmkit_irqchip_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = KVMKIT_IRQCHIP_KERNEL;
	cfg->pit = true;
	cfg->pic = true;
	cfg->pit_reinject = false; /* api.rst 4.99: !reinject is recommended */
	cfg->split_routes = KVMKIT_IOAPIC_PINS;
	cfg->gic_nr_irqs = 256; /* KVM's own default (VGIC_NR_IRQS_LEGACY) */
}

void kvmk_irq_handle_attach(struct kvmkit_irqchip *chip, struct kvmk_irq_handle *h)
{
	pthread_mutex_lock(&chip->lock);
	h->chip = chip;
	h->prev = NULL;
	h->next = chip->handles;
	if (h->next)
		h->next->prev = h;
	chip->handles = h;
	pthread_mutex_unlock(&chip->lock);
}

void kvmk_irq_handle_detach(struct kvmk_irq_handle *h)
{
	struct kvmkit_irqchip *chip = h->chip;

	if (!chip)
		return;
	pthread_mutex_lock(&chip->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		chip->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->chip = NULL;
	pthread_mutex_unlock(&chip->lock);
}

int kvmk_irq_handle_gone(const char *op)
{
	return kvmk_err_state("irqchip", "released with its VM", "a live irqchip", op);
}

/* Handles their owners did not close before the VM went: from now on their
 * calls fail and closing them only frees them. */
static void orphan_handles(struct kvmkit_irqchip *chip)
{
	unsigned int n = 0;

	pthread_mutex_lock(&chip->lock);
	for (struct kvmk_irq_handle *h = chip->handles; h; h = h->next, n++)
		h->chip = NULL;
	chip->handles = NULL;
	pthread_mutex_unlock(&chip->lock);
	if (n)
		kvmk_warn("%u line/MSI handle(s) still open as the irqchip is released", n);
}

void kvmk_irqchip_free(struct kvmkit_irqchip *chip)
{
	if (!chip)
		return;
	orphan_handles(chip);
	if (chip->ops && chip->ops->destroy)
		chip->ops->destroy(chip);
	kvmk_zfree(chip->staged, chip->capacity * sizeof(*chip->staged));
	kvmk_zfree(chip->committed, chip->capacity * sizeof(*chip->committed));
	free(chip->bindings);
	pthread_mutex_destroy(&chip->lock);
	pthread_mutex_destroy(&chip->line_lock);
	kvmk_zfree(chip, sizeof(*chip));
}

int kvmk_irqchip_new(struct kvmkit_vm *vm, const struct kvmk_irqchip_ops *ops,
		     const struct kvmkit_irqchip_config *cfg, unsigned int capacity,
		     struct kvmkit_irqchip **out)
{
	/* Its per-GSI tables and the route tables (KVM takes 4096 routes)
	 * are mostly never written: only the pages in use are resident. */
	struct kvmkit_irqchip *chip = kvmk_zalloc(sizeof(*chip));
	int r;

	if (!chip)
		return kvmk_err_resource("create_irqchip", ENOMEM, NULL);
	chip->ops = ops;
	chip->vm = vm;
	chip->mode = cfg->mode;
	chip->capacity = capacity < MAX_ROUTES ? capacity : MAX_ROUTES;
	pthread_mutex_init(&chip->lock, NULL);
	pthread_mutex_init(&chip->line_lock, NULL);
	chip->staged = kvmk_zalloc(chip->capacity * sizeof(*chip->staged));
	chip->committed = kvmk_zalloc(chip->capacity * sizeof(*chip->committed));
	if (!chip->staged || !chip->committed) {
		r = kvmk_err_resource("create_irqchip", ENOMEM, "%u routes", chip->capacity);
		goto fail;
	}
	/* The back end sets pins and the GSI ranges. */
	r = ops->create(chip, cfg);
	if (r)
		goto fail;
	ops->default_routes(chip, chip->committed, &chip->ncommitted);
	memcpy(chip->staged, chip->committed, chip->ncommitted * sizeof(*chip->staged));
	chip->nstaged = chip->ncommitted;
	/* GSIs below the line range are the platform's, not the allocator's. */
	for (uint32_t g = 0; g < chip->line_lo && g < KVMKIT_MAX_GSI; g++)
		chip->allocated[g] = 1;
	*out = chip;
	return 0;
fail:
	kvmk_irqchip_free(chip);
	return r;
}

int kvmk_irqchip_vcpus_ready(struct kvmkit_irqchip *chip)
{
	return chip && chip->ops->vcpus_ready ? chip->ops->vcpus_ready(chip) : 0;
}

static void irqchip_teardown(void *opaque)
{
	kvmk_irqchip_free(opaque);
}

int kvmkit_irqchip_create(struct kvmkit_vm *vm, const struct kvmkit_irqchip_config *cfg,
			  struct kvmkit_irqchip **out)
{
	const struct kvmk_irqchip_ops *ops;
	struct kvmkit_irqchip_config defcfg;
	struct kvmkit_irqchip *chip;
	int r, cap;

	if (!cfg) {
		kvmkit_irqchip_config_init(&defcfg);
		cfg = &defcfg;
	}
	if (kvmkit_vm_irqchip(vm))
		return kvmk_err_state("irqchip", "created", "not yet created", "create_irqchip");
	if (kvmkit_vm_vcpu_count(vm))
		return kvmk_err_state("vm", "has vCPUs", "no vCPU created yet (api.rst 4.24)",
				      "create_irqchip");
	if ((unsigned int)cfg->mode >= KVMKIT_IRQCHIP_MODES)
		return kvmk_err_param("create_irqchip", "mode", "kernel or split", "%d", cfg->mode);
	ops = kvmk_arch_irqchip_ops(cfg->mode);
	if (!ops)
		return kvmk_err_unsupported("create_irqchip", ENOTSUP,
					    "%s irqchip on this architecture",
					    kvmkit_irqchip_mode_name(cfg->mode));
	if (kvmkit_vm_check_cap(vm, KVM_CAP_IRQCHIP) <= 0)
		return kvmk_err_unsupported("create_irqchip", ENOTSUP, "KVM_CAP_IRQCHIP");
	cap = kvmkit_vm_check_cap(vm, KVM_CAP_IRQ_ROUTING);
	if (cap <= 0)
		return kvmk_err_unsupported("create_irqchip", ENOTSUP, "KVM_CAP_IRQ_ROUTING");
	r = kvmk_irqchip_new(vm, ops, cfg, (unsigned int)cap, &chip);
	if (r)
		return r;
	chip->has_msi_devid = kvmkit_vm_check_cap(vm, KVM_CAP_MSI_DEVID) > 0;
	/* Released with the VM, after its vCPU threads stopped and before the
	 * vCPUs are freed (a back end's thread may kick them). */
	r = kvmk_vm_attach_irqchip(vm, chip, irqchip_teardown, chip);
	if (r) {
		/* A half-created KVM irqchip cannot be removed; the VM is
		 * unusable for interrupts, but kvmkit's side is left clean. */
		kvmk_irqchip_free(chip);
		return r;
	}
	kvmk_debug("%s irqchip created (%u routes max)", kvmkit_irqchip_mode_name(cfg->mode),
		   chip->capacity);
	if (out)
		*out = chip;
	return 0;
}
