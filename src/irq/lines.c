// SPDX-License-Identifier: MIT
/*
 * IRQ lines and MSIs with their delivery status, the line handles devices
 * hold, and per-GSI statistics. The back end reports a raw status (> 0
 * CPUs, 0 coalesced, < 0 masked), as kvm_set_irq() does; it becomes a
 * kvmkit_irq_status here and is counted once, whatever the back end.
 */
#include <stdlib.h>

#define KVMK_LOG_MODULE "irq"
#include "core/internal.h"
#include "irq/irq_backend.h"

static const char *const result_names[] = { "none", "delivered", "coalesced", "masked" };

const char *kvmkit_irq_result_name(enum kvmkit_irq_result r)
{
	return (unsigned int)r < KVMKIT_ARRAY_SIZE(result_names) ? result_names[r] : "?";
}

static void to_status(int raw, struct kvmkit_irq_status *st)
{
	if (!st)
		return;
	st->cpus = raw > 0 ? (unsigned int)raw : 0;
	st->result = raw > 0  ? KVMKIT_IRQ_DELIVERED :
		     raw == 0 ? KVMKIT_IRQ_COALESCED :
				KVMKIT_IRQ_MASKED;
}

static void account(struct kvmkit_irqchip *chip, uint32_t gsi, int raw)
{
	struct kvmkit_gsi_stats *s = &chip->stats[gsi];

	__atomic_add_fetch(&s->asserts, 1, __ATOMIC_RELAXED);
	if (raw > 0)
		__atomic_add_fetch(&s->deliveries, 1, __ATOMIC_RELAXED);
	else if (raw == 0)
		__atomic_add_fetch(&s->coalesced, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&s->masked, 1, __ATOMIC_RELAXED);
}

int kvmkit_irq_line(struct kvmkit_irqchip *chip, uint32_t gsi, bool level,
		    struct kvmkit_irq_status *st)
{
	bool failed = false;
	int raw, r = kvmk_irq_check_gsi("kvmkit_irq_line", gsi);

	if (r)
		return r;
	raw = chip->ops->set_line(chip, gsi, level, &failed);
	if (failed)
		return raw;
	if (!level) {
		/* A de-assertion has no status (KVM reports 1 for it). */
		if (st)
			*st = (struct kvmkit_irq_status){ KVMKIT_IRQ_NONE, 0 };
		return 0;
	}
	account(chip, gsi, raw);
	to_status(raw, st);
	return 0;
}

int kvmkit_irq_pulse(struct kvmkit_irqchip *chip, uint32_t gsi, struct kvmkit_irq_status *st)
{
	int r = kvmkit_irq_line(chip, gsi, true, st);

	/* api.rst 4.25: an edge is level 1 followed by level 0. */
	return r ? r : kvmkit_irq_line(chip, gsi, false, NULL);
}

int kvmkit_signal_msi(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data, int32_t devid,
		      struct kvmkit_irq_status *st)
{
	bool failed = false;
	int raw;

	if (devid >= 0 && !chip->has_msi_devid)
		return kvmk_err_unsupported("kvmkit_signal_msi", ENOTSUP,
					    "MSI device ids (KVM_CAP_MSI_DEVID)");
	raw = chip->ops->signal_msi(chip, address, data, devid >= 0 ? KVM_MSI_VALID_DEVID : 0,
				    devid >= 0 ? (uint32_t)devid : 0, &failed);
	if (failed)
		return raw;
	/* KVM_SIGNAL_MSI: 0 means the guest blocked it, not "coalesced". */
	to_status(raw > 0 ? raw : -1, st);
	return 0;
}

/* ---- line handles -------------------------------------------------------- */

struct kvmkit_line {
	struct kvmk_irq_handle h; /* h.chip: NULL once the irqchip is gone */
	uint32_t gsi;
	bool level;
};

int kvmkit_line_open(struct kvmkit_irqchip *chip, uint32_t gsi, struct kvmkit_line **out)
{
	struct kvmkit_line *l;
	int r;

	if (!chip)
		return kvmk_err_param("kvmkit_line_open", "chip", "no irqchip", "NULL");
	r = kvmk_irq_check_gsi("kvmkit_line_open", gsi);
	if (r)
		return r;
	l = calloc(1, sizeof(*l));
	if (!l)
		return kvmk_err_resource("kvmkit_line_open", ENOMEM, NULL);
	l->gsi = gsi;
	kvmk_irq_handle_attach(chip, &l->h);
	pthread_mutex_lock(&chip->lock);
	chip->lines_open[gsi]++;
	pthread_mutex_unlock(&chip->lock);
	*out = l;
	return 0;
}

/*
 * Handles on one GSI are wired-OR, as devices sharing a PCI INTx line or the
 * UART and the test device on IRQ 4 are on a PC: the line is high while any
 * of them holds it high. Only the first raise and the last lower reach the
 * irqchip; the others report KVMKIT_IRQ_NONE.
 */
static int line_change(struct kvmkit_line *l, bool level, struct kvmkit_irq_status *st)
{
	struct kvmkit_irqchip *chip = l->h.chip;
	uint16_t *high = &chip->line_high[l->gsi];
	int r = 0;

	if (st)
		*st = (struct kvmkit_irq_status){ KVMKIT_IRQ_NONE, 0 };
	pthread_mutex_lock(&chip->line_lock);
	if (level ? *high == 0 : *high == 1)
		r = kvmkit_irq_line(chip, l->gsi, level, st);
	if (!r) {
		*high = (uint16_t)(*high + (level ? 1 : -1));
		l->level = level;
	}
	pthread_mutex_unlock(&chip->line_lock);
	return r;
}

int kvmkit_line_set(struct kvmkit_line *l, bool level, struct kvmkit_irq_status *st)
{
	if (!l->h.chip)
		return kvmk_irq_handle_gone("kvmkit_line_set");
	if (level == l->level) {
		if (st)
			*st = (struct kvmkit_irq_status){ KVMKIT_IRQ_NONE, 0 };
		return 0;
	}
	return line_change(l, level, st);
}

int kvmkit_line_force(struct kvmkit_line *l, bool level, struct kvmkit_irq_status *st)
{
	struct kvmkit_irqchip *chip = l->h.chip;
	int r;

	if (!chip)
		return kvmk_irq_handle_gone("kvmkit_line_force");
	pthread_mutex_lock(&chip->line_lock);
	r = kvmkit_irq_line(chip, l->gsi, level, st);
	if (!r && level != l->level) {
		chip->line_high[l->gsi] = (uint16_t)(chip->line_high[l->gsi] + (level ? 1 : -1));
		l->level = level;
	}
	pthread_mutex_unlock(&chip->line_lock);
	return r;
}

int kvmkit_line_pulse(struct kvmkit_line *l, struct kvmkit_irq_status *st)
{
	int r;

	if (!l->h.chip)
		return kvmk_irq_handle_gone("kvmkit_line_pulse");
	/* A pulse on a wire another device holds high is no edge. */
	if (l->level)
		r = line_change(l, false, NULL);
	else
		r = 0;
	pthread_mutex_lock(&l->h.chip->line_lock);
	if (!r && l->h.chip->line_high[l->gsi] == 0)
		r = kvmkit_irq_pulse(l->h.chip, l->gsi, st);
	else if (!r && st)
		*st = (struct kvmkit_irq_status){ KVMKIT_IRQ_NONE, 0 };
	pthread_mutex_unlock(&l->h.chip->line_lock);
	return r;
}

uint32_t kvmkit_line_gsi(const struct kvmkit_line *l)
{
	return l->gsi;
}

void kvmkit_line_close(struct kvmkit_line *l)
{
	struct kvmkit_error saved;

	if (!l)
		return;
	kvmk_err_save(&saved);
	if (l->level && l->h.chip)
		line_change(l, false, NULL);
	if (l->h.chip) {
		pthread_mutex_lock(&l->h.chip->lock);
		l->h.chip->lines_open[l->gsi]--;
		pthread_mutex_unlock(&l->h.chip->lock);
	}
	kvmk_irq_handle_detach(&l->h);
	kvmk_err_restore(&saved);
	free(l);
}

/* ---- statistics ----------------------------------------------------------- */

int kvmkit_irq_gsi_stats(struct kvmkit_irqchip *chip, uint32_t gsi, struct kvmkit_gsi_stats *out)
{
	const struct kvmkit_gsi_stats *s;
	int r = kvmk_irq_check_gsi("kvmkit_irq_gsi_stats", gsi);

	if (r)
		return r;
	s = &chip->stats[gsi];
	out->asserts = __atomic_load_n(&s->asserts, __ATOMIC_RELAXED);
	out->deliveries = __atomic_load_n(&s->deliveries, __ATOMIC_RELAXED);
	out->coalesced = __atomic_load_n(&s->coalesced, __ATOMIC_RELAXED);
	out->masked = __atomic_load_n(&s->masked, __ATOMIC_RELAXED);
	out->irqfd_signals = __atomic_load_n(&s->irqfd_signals, __ATOMIC_RELAXED);
	pthread_mutex_lock(&chip->lock);
	out->irqfds_kernel = chip->ops->irqfds_in_kernel(chip, gsi);
	out->irqfds_thread = chip->irqfds[gsi] - out->irqfds_kernel;
	pthread_mutex_unlock(&chip->lock);
	return 0;
}
