// SPDX-License-Identifier: MIT
/*
 * irqfd binding with the ordering rules every back end shares (an irqfd
 * only on a GSI with a committed route; a route or GSI cannot go while an
 * irqfd is bound: api.rst 4.75 and the kernel fix a80ced6ea514), and the
 * MSI vector handles built on it.
 */
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "irq"
#include "core/internal.h"
#include "irq/irq_backend.h"

/* Room for one more binding (chip->lock held). */
static int bindings_reserve(struct kvmkit_irqchip *chip)
{
	struct kvmk_irqfd_binding *b;
	unsigned int c;

	if (chip->nbindings < chip->cbindings)
		return 0;
	c = chip->cbindings ? 2 * chip->cbindings : 16;
	b = realloc(chip->bindings, c * sizeof(*b));
	if (!b)
		return kvmk_err_resource("kvmkit_irqfd_bind", ENOMEM, "%u irqfds", c);
	chip->bindings = b;
	chip->cbindings = c;
	return 0;
}

int kvmkit_irqfd_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd)
{
	bool routed = false;
	int r = kvmk_irq_check_gsi("kvmkit_irqfd_bind", gsi);

	if (r)
		return r;
	if (fd < 0)
		return kvmk_err_param("kvmkit_irqfd_bind", "fd", "not a file descriptor", "%d", fd);
	pthread_mutex_lock(&chip->lock);
	for (unsigned int i = 0; i < chip->ncommitted && !routed; i++)
		routed = chip->committed[i].gsi == gsi;
	if (!routed)
		r = kvmk_err_state("gsi", "unrouted", "a committed route", "irqfd_bind");
	else
		r = bindings_reserve(chip);
	if (!r)
		r = chip->ops->irqfd_bind(chip, gsi, fd, resample_fd);
	if (!r) {
		chip->bindings[chip->nbindings++] = (struct kvmk_irqfd_binding){ gsi, fd, false };
		chip->irqfds[gsi]++;
	}
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int kvmkit_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	struct kvmk_irqfd_binding *b = NULL;
	unsigned int i;
	int r = kvmk_irq_check_gsi("kvmkit_irqfd_unbind", gsi);

	if (r)
		return r;
	pthread_mutex_lock(&chip->lock);
	for (i = 0; i < chip->nbindings && !b; i++)
		if (chip->bindings[i].gsi == gsi && chip->bindings[i].fd == fd &&
		    !chip->bindings[i].unbinding)
			b = &chip->bindings[i];
	if (!b) {
		pthread_mutex_unlock(&chip->lock);
		kvmk_err_param("kvmkit_irqfd_unbind", "fd", "not bound to this gsi", "%d (gsi %u)",
			       fd, gsi);
		return -ENOENT;
	}
	/* Claimed: a concurrent unbind of the same pair finds nothing. */
	b->unbinding = true;
	pthread_mutex_unlock(&chip->lock);
	r = chip->ops->irqfd_unbind(chip, gsi, fd);
	pthread_mutex_lock(&chip->lock);
	/* The array may have moved or been compacted meanwhile. */
	for (i = 0; i < chip->nbindings; i++)
		if (chip->bindings[i].gsi == gsi && chip->bindings[i].fd == fd &&
		    chip->bindings[i].unbinding)
			break;
	if (r) {
		chip->bindings[i].unbinding = false;
	} else {
		chip->bindings[i] = chip->bindings[--chip->nbindings];
		chip->irqfds[gsi]--;
	}
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int kvmkit_irqfd_signal(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	uint64_t one = 1;
	int r = kvmk_irq_check_gsi("kvmkit_irqfd_signal", gsi);

	if (r)
		return r;
	r = chip->ops->irqfd_signal ? chip->ops->irqfd_signal(chip, gsi, fd) : 0;
	if (r < 0)
		return r;
	/* An eventfd write only fails if the counter would overflow, i.e. the
	 * interrupt is already pending: not an error for an edge. */
	if (!r && write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return kvmk_err_sys("write", errno, "irqfd %d of gsi %u", fd, gsi);
	__atomic_add_fetch(&chip->stats[gsi].irqfd_signals, 1, __ATOMIC_RELAXED);
	return 0;
}

/* ---- MSI vector handles --------------------------------------------------- */

struct kvmkit_msi {
	struct kvmk_irq_handle h; /* h.chip: NULL once the irqchip is gone */
	struct kvmkit_irqchip *chip; /* h.chip while it lives */
	uint32_t gsi;
	int fd;
	bool routed; /* its route is committed */
	bool bound; /* the irqfd is bound (only while routed) */
	bool configured;
	bool masked;
	uint64_t address;
	uint32_t data;
	int32_t devid;
};

int kvmkit_msi_open(struct kvmkit_irqchip *chip, struct kvmkit_msi **out)
{
	struct kvmkit_msi *m;
	int gsi;

	if (!chip)
		return kvmk_err_param("kvmkit_msi_open", "chip", "no irqchip", "NULL");
	m = calloc(1, sizeof(*m));
	if (!m)
		return kvmk_err_resource("kvmkit_msi_open", ENOMEM, NULL);
	m->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->fd < 0) {
		free(m);
		return kvmk_err_sys("eventfd", errno, "MSI vector");
	}
	gsi = kvmkit_gsi_alloc_msi(chip);
	if (gsi < 0) {
		close(m->fd);
		free(m);
		return gsi;
	}
	m->chip = chip;
	m->gsi = (uint32_t)gsi;
	m->devid = -1;
	kvmk_irq_handle_attach(chip, &m->h);
	*out = m;
	return 0;
}

/* Unbinds the irqfd and removes the route (unbind first: the ordering). */
static int msi_unroute(struct kvmkit_msi *m)
{
	int r;

	if (m->bound) {
		r = kvmkit_irqfd_unbind(m->chip, m->gsi, m->fd);
		if (r)
			return r;
		m->bound = false;
	}
	/* Also a route whose irqfd could not be bound. */
	if (!m->routed)
		return 0;
	r = kvmkit_irq_route_remove(m->chip, m->gsi);
	if (!r)
		r = kvmkit_irq_routes_commit(m->chip);
	if (!r)
		m->routed = false;
	return r;
}

/* Commits the route, then binds the irqfd (route first: the ordering). */
static int msi_route(struct kvmkit_msi *m)
{
	int r;

	if (!m->configured)
		return 0;
	r = kvmkit_irq_route_msi(m->chip, m->gsi, m->address, m->data, m->devid);

	if (!r)
		r = kvmkit_irq_routes_commit(m->chip);
	if (!r)
		m->routed = true;
	if (!r && !m->bound) {
		r = kvmkit_irqfd_bind(m->chip, m->gsi, m->fd, -1);
		m->bound = !r;
	}
	return r;
}

int kvmkit_msi_configure(struct kvmkit_msi *m, uint64_t address, uint32_t data, int32_t devid)
{
	if (!m->h.chip)
		return kvmk_irq_handle_gone("kvmkit_msi_configure");
	m->address = address;
	m->data = data;
	m->devid = devid;
	m->configured = true;
	/* A re-route with the irqfd bound is fine: the GSI keeps its route. */
	return m->masked ? 0 : msi_route(m);
}

int kvmkit_msi_mask(struct kvmkit_msi *m, bool masked)
{
	int r;

	if (!m->h.chip)
		return kvmk_irq_handle_gone("kvmkit_msi_mask");
	if (masked == m->masked)
		return 0;
	r = masked ? msi_unroute(m) : msi_route(m);
	if (!r)
		m->masked = masked;
	return r;
}

int kvmkit_msi_signal(struct kvmkit_msi *m)
{
	if (!m->h.chip)
		return kvmk_irq_handle_gone("kvmkit_msi_signal");
	if (!m->bound) {
		/* Masked or never configured: dropped, as a masked MSI-X
		 * vector without a pending bit would be; counted. */
		__atomic_add_fetch(&m->chip->stats[m->gsi].irqfd_signals, 1, __ATOMIC_RELAXED);
		return 0;
	}
	return kvmkit_irqfd_signal(m->chip, m->gsi, m->fd);
}

uint32_t kvmkit_msi_gsi(const struct kvmkit_msi *m)
{
	return m->gsi;
}

void kvmkit_msi_close(struct kvmkit_msi *m)
{
	struct kvmkit_error saved;

	if (!m)
		return;
	kvmk_err_save(&saved);
	/* Once the irqchip is gone so is its VM, and KVM's irqfd with it. */
	if (m->h.chip) {
		msi_unroute(m);
		kvmkit_gsi_free(m->chip, m->gsi);
		kvmk_irq_handle_detach(&m->h);
	}
	close(m->fd);
	free(m);
	kvmk_err_restore(&saved);
}
