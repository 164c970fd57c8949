// SPDX-License-Identifier: MIT
/*
 * Saving and restoring an irqchip: kvmkit's committed routing table and
 * allocator here, the controller's registers by the back end. The blob is
 * little-endian and versioned:
 *
 *   u32 magic "KIRQ"   u32 version (1)   u32 mode   u32 route count N
 *   N x { u32 gsi, type, flags, a, b, c, d }   (irqchip: a = chip, b = pin;
 *                                              MSI: address lo/hi, data, devid)
 *   KVMKIT_MAX_GSI / 8 bytes: the allocator's bitmap
 *   u32 length L, then L bytes of the back end's own state
 *
 * A restored blob is untrusted input (a file): every count and length is
 * checked, every route goes through the back end's route check, and
 * nothing changes unless the whole blob is valid.
 */
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "irq"
#include "core/internal.h"
#include "irq/irq_backend.h"

#define STATE_MAGIC 0x5152494bu /* "KIRQ" */
#define STATE_VERSION 1u

static int put_route(struct kvmk_blob *b, const struct kvm_irq_routing_entry *e)
{
	uint32_t w[7] = { e->gsi, e->type, e->flags };
	int r = 0;

	if (e->type == KVM_IRQ_ROUTING_IRQCHIP) {
		w[3] = e->u.irqchip.irqchip;
		w[4] = e->u.irqchip.pin;
	} else {
		w[3] = e->u.msi.address_lo;
		w[4] = e->u.msi.address_hi;
		w[5] = e->u.msi.data;
		w[6] = e->u.msi.devid;
	}
	for (unsigned int i = 0; !r && i < 7; i++)
		r = kvmk_blob_put_u32(b, w[i]);
	return r;
}

int kvmkit_irqchip_save(struct kvmkit_irqchip *chip, void **buf, size_t *len)
{
	struct kvmk_blob b = { 0 }, be = { 0 };
	uint8_t bitmap[KVMKIT_MAX_GSI / 8] = { 0 };
	int r;

	pthread_mutex_lock(&chip->lock);
	r = kvmk_blob_put_u32(&b, STATE_MAGIC);
	if (!r)
		r = kvmk_blob_put_u32(&b, STATE_VERSION);
	if (!r)
		r = kvmk_blob_put_u32(&b, chip->mode);
	if (!r)
		r = kvmk_blob_put_u32(&b, chip->ncommitted);
	for (unsigned int i = 0; !r && i < chip->ncommitted; i++)
		r = put_route(&b, &chip->committed[i]);
	for (unsigned int g = 0; g < KVMKIT_MAX_GSI; g++)
		if (chip->allocated[g])
			bitmap[g / 8] |= (uint8_t)(1u << (g % 8));
	pthread_mutex_unlock(&chip->lock);
	if (!r)
		r = kvmk_blob_put(&b, bitmap, sizeof(bitmap));
	if (!r)
		r = chip->ops->save(chip, &be);
	if (!r)
		r = kvmk_blob_put_u32(&b, (uint32_t)be.len);
	if (!r && be.len)
		r = kvmk_blob_put(&b, be.data, be.len);
	kvmk_blob_free(&be);
	if (r) {
		kvmk_blob_free(&b);
		return r;
	}
	*buf = b.data;
	*len = b.len;
	return 0;
}

static int get_route(struct kvmkit_irqchip *chip, struct kvmk_reader *rd,
		     struct kvm_irq_routing_entry *e)
{
	uint32_t w[7];
	int r = 0;

	for (unsigned int i = 0; !r && i < 7; i++)
		r = kvmk_reader_u32(rd, &w[i], "route");
	if (r)
		return r;
	memset(e, 0, sizeof(*e));
	e->gsi = w[0];
	e->type = w[1];
	e->flags = w[2];
	if (w[0] >= KVMKIT_MAX_GSI)
		return kvmk_err_format(rd->op, "route: gsi %u beyond %u", w[0], KVMKIT_MAX_GSI - 1);
	if (w[1] == KVM_IRQ_ROUTING_IRQCHIP) {
		if (w[2] || w[5] || w[6])
			return kvmk_err_format(
				rd->op, "route: gsi %u: stray bits in an irqchip route", w[0]);
		e->u.irqchip.irqchip = w[3];
		e->u.irqchip.pin = w[4];
		return chip->ops->check_route(chip, w[3], w[4]);
	}
	if (w[1] != KVM_IRQ_ROUTING_MSI)
		return kvmk_err_format(rd->op, "route: gsi %u: type %u is not irqchip or MSI", w[0],
				       w[1]);
	if (w[2] & ~KVM_MSI_VALID_DEVID)
		return kvmk_err_format(rd->op, "route: gsi %u: flags 0x%x", w[0], w[2]);
	if ((w[2] & KVM_MSI_VALID_DEVID) && !chip->has_msi_devid)
		return kvmk_err_unsupported(rd->op, ENOTSUP,
					    "MSI device ids (KVM_CAP_MSI_DEVID) in a saved route");
	e->u.msi.address_lo = w[3];
	e->u.msi.address_hi = w[4];
	e->u.msi.data = w[5];
	e->u.msi.devid = w[6];
	return 0;
}

int kvmkit_irqchip_restore(struct kvmkit_irqchip *chip, const void *buf, size_t len)
{
	struct kvmk_reader rd = { buf, len, "kvmkit_irqchip_restore" };
	uint8_t bitmap[KVMKIT_MAX_GSI / 8], old_alloc[KVMKIT_MAX_GSI];
	struct kvm_irq_routing_entry *tab = NULL, *old = NULL;
	unsigned int nold = 0;
	uint32_t magic, version, mode, n, belen;
	int r;

	r = kvmk_reader_u32(&rd, &magic, "magic");
	if (!r && magic != STATE_MAGIC)
		r = kvmk_err_format(rd.op, "not an irqchip state (magic 0x%08x)", magic);
	if (!r)
		r = kvmk_reader_u32(&rd, &version, "version");
	if (!r && version != STATE_VERSION)
		r = kvmk_err_format(rd.op, "irqchip state version %u, this kvmkit reads %u",
				    version, STATE_VERSION);
	if (!r)
		r = kvmk_reader_u32(&rd, &mode, "mode");
	if (!r && mode != chip->mode)
		r = kvmk_err_format(rd.op, "saved from a %s irqchip, this one is %s",
				    kvmkit_irqchip_mode_name(mode),
				    kvmkit_irqchip_mode_name(chip->mode));
	if (!r)
		r = kvmk_reader_u32(&rd, &n, "route count");
	if (!r && n > chip->capacity)
		r = kvmk_err_format(rd.op, "%u routes, the host takes %u", n, chip->capacity);
	if (r)
		return r;
	tab = calloc(n ? n : 1, sizeof(*tab));
	old = kvmk_zalloc(chip->capacity * sizeof(*old));
	if (!tab || !old) {
		free(tab);
		kvmk_zfree(old, chip->capacity * sizeof(*old));
		return kvmk_err_resource(rd.op, ENOMEM, "%u routes", n);
	}
	for (uint32_t i = 0; !r && i < n; i++)
		r = get_route(chip, &rd, &tab[i]);
	if (!r)
		r = kvmk_reader_get(&rd, bitmap, sizeof(bitmap), "allocator");
	if (!r)
		r = kvmk_reader_u32(&rd, &belen, "back-end state length");
	if (!r && belen != rd.left)
		r = kvmk_err_format(rd.op, "back-end state: %u bytes announced, %zu present", belen,
				    rd.left);
	if (r)
		goto out;
	pthread_mutex_lock(&chip->lock);
	for (unsigned int g = 0; g < KVMKIT_MAX_GSI && !r; g++)
		if (chip->irqfds[g])
			r = kvmk_err_state("irqchip", "has irqfds bound", "fresh (no irqfd bound)",
					   "restore");
	/* Routes first (the controller's own state may refer to them), then
	 * the registers; a refused table leaves everything as it was. */
	if (!r) {
		nold = chip->ncommitted;
		memcpy(old, chip->committed, nold * sizeof(*old));
		memcpy(old_alloc, chip->allocated, sizeof(old_alloc));
		r = chip->ops->commit(chip, tab, n);
	}
	if (!r) {
		memcpy(chip->committed, tab, n * sizeof(*tab));
		memcpy(chip->staged, tab, n * sizeof(*tab));
		chip->ncommitted = chip->nstaged = n;
		for (unsigned int g = chip->line_lo; g < KVMKIT_MAX_GSI; g++)
			chip->allocated[g] = (bitmap[g / 8] >> (g % 8)) & 1;
	}
	pthread_mutex_unlock(&chip->lock);
	if (r)
		goto out;
	r = chip->ops->restore(chip, rd.p, rd.left);
	if (r) {
		/* The registers were refused (and left alone): put the table
		 * and the allocator back as well. */
		struct kvmkit_error saved;

		kvmk_err_save(&saved);
		pthread_mutex_lock(&chip->lock);
		if (!chip->ops->commit(chip, old, nold)) {
			memcpy(chip->committed, old, nold * sizeof(*old));
			memcpy(chip->staged, old, nold * sizeof(*old));
			chip->ncommitted = chip->nstaged = nold;
			memcpy(chip->allocated, old_alloc, sizeof(old_alloc));
		}
		pthread_mutex_unlock(&chip->lock);
		kvmk_err_restore(&saved);
	}
out:
	free(tab);
	kvmk_zfree(old, chip->capacity * sizeof(*old));
	return r;
}
