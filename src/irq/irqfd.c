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
		r = chip->ops->irqfd_bind(chip, gsi, fd, resample_fd);
	if (!r)
		chip->irqfds[gsi]++;
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int kvmkit_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	int r = kvmk_irq_check_gsi("kvmkit_irqfd_unbind", gsi);

	if (r)
		return r;
	r = chip->ops->irqfd_unbind(chip, gsi, fd);
	if (r)
		return r;
	pthread_mutex_lock(&chip->lock);
	if (chip->irqfds[gsi])
		chip->irqfds[gsi]--;
	pthread_mutex_unlock(&chip->lock);
	return 0;
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
	struct kvmkit_irqchip *chip;
	uint32_t gsi;
	int fd;
	bool bound; /* the irqfd is bound: the route is committed */
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
	*out = m;
	return 0;
}

/* Unbinds the irqfd and removes the route (unbind first: the ordering). */
static int msi_unroute(struct kvmkit_msi *m)
{
	int r;

	if (!m->bound)
		return 0;
	r = kvmkit_irqfd_unbind(m->chip, m->gsi, m->fd);
	if (r)
		return r;
	m->bound = false;
	r = kvmkit_irq_route_remove(m->chip, m->gsi);
	return r ? r : kvmkit_irq_routes_commit(m->chip);
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
	if (!r && !m->bound) {
		r = kvmkit_irqfd_bind(m->chip, m->gsi, m->fd, -1);
		m->bound = !r;
	}
	return r;
}

int kvmkit_msi_configure(struct kvmkit_msi *m, uint64_t address, uint32_t data, int32_t devid)
{
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

	if (masked == m->masked)
		return 0;
	r = masked ? msi_unroute(m) : msi_route(m);
	if (!r)
		m->masked = masked;
	return r;
}

int kvmkit_msi_signal(struct kvmkit_msi *m)
{
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
	msi_unroute(m);
	kvmkit_gsi_free(m->chip, m->gsi);
	close(m->fd);
	free(m);
	kvmk_err_restore(&saved);
}
