// SPDX-License-Identifier: MIT
/*
 * Split irqchip irqfds. KVM refuses resample irqfds in this mode and cannot
 * see kvmkit's IOAPIC pins, so an irqfd that needs the IOAPIC model is
 * serviced by kvmkit's interrupt thread (epoll): a signal looks up the GSI's
 * route when it arrives (re-routing works as in KVM) and pulses the pin,
 * asserts it (level irqfd with a resamplefd) or sends the MSI. An edge
 * irqfd is bound in the kernel instead whenever KVM alone can inject it
 * (kernel_gsi() says when and through which kernel route), and moves
 * between the two sides when a commit of kvmkit's table or a guest write to
 * the IOAPIC changes that: out of the kernel before the kernel route
 * changes, into it after.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "irq-split"
#include "core/internal.h"
#include "arch/x86/split.h"

/* Serves one signal of a thread-served irqfd: pulses the GSI (edge), or
 * asserts it until the EOI resamples it (level). */
static void serve(struct kvmk_split *s, const struct kvmk_user_irqfd *u)
{
	if (u->resample_fd >= 0) {
		kvmk_split_set_gsi(s, u->gsi, true, u->resample_fd);
	} else {
		kvmk_split_set_gsi(s, u->gsi, true, -1);
		kvmk_split_set_gsi(s, u->gsi, false, -1);
	}
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void *irq_thread(void *arg)
{
	struct kvmk_split *s = arg;

	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(s->epfd, ev, 16, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			kvmk_error("interrupt thread: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint32_t idx = ev[i].data.u32;
			struct kvmk_user_irqfd u = { 0 };
			uint64_t cnt;
			bool got;

			if (idx == KVMK_SPLIT_EV_WAKE)
				return NULL; /* shutting down */
			if (idx == KVMK_SPLIT_EV_PIT) {
				kvmk_split_pit_expired(s);
				continue;
			}
			if (idx >= KVMK_SPLIT_MAX_IRQFDS)
				continue;
			/* Read the fd under the lock, so that an unbind (after
			 * which the owner may close it) cannot race with us. It
			 * is polled first: the event may be stale (the irqfd
			 * moved to the kernel, which took the count) and a
			 * caller's eventfd may be blocking. */
			pthread_mutex_lock(&s->chip->lock);
			u = s->user_irqfds[idx];
			got = u.used && readable(u.fd) &&
			      read(u.fd, &cnt, sizeof(cnt)) == sizeof(cnt);
			pthread_mutex_unlock(&s->chip->lock);
			if (got)
				serve(s, &u);
		}
	}
}

int kvmk_split_thread_setup(struct kvmk_split *s)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = KVMK_SPLIT_EV_WAKE };

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0)
		return kvmk_err_sys("epoll_create1", errno, "split irqchip");
	if (pipe2(s->wake, O_CLOEXEC) < 0)
		return kvmk_err_sys("pipe2", errno, "split irqchip");
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake[0], &ev) < 0)
		return kvmk_err_sys("epoll_ctl", errno, "split irqchip");
	return 0;
}

int kvmk_split_thread_start(struct kvmk_split *s)
{
	int r = pthread_create(&s->thread, NULL, irq_thread, s);

	if (r)
		return kvmk_err_sys("pthread_create", r, "split irqchip interrupt thread");
	s->thread_started = true;
	return 0;
}

void kvmk_split_thread_stop(struct kvmk_split *s)
{
	ssize_t w;

	if (!s->thread_started)
		return;
	w = write(s->wake[1], "x", 1);
	(void)w;
	pthread_join(s->thread, NULL);
	s->thread_started = false;
}

/* Frees slot @u (chip->lock held), keeping user_hw just past the last
 * used slot. */
static void user_free(struct kvmk_split *s, struct kvmk_user_irqfd *u)
{
	u->used = false;
	while (s->user_hw && !s->user_irqfds[s->user_hw - 1].used)
		s->user_hw--;
}

/* The thread watches @fd (chip->lock held). */
static int user_add(struct kvmk_split *s, uint32_t gsi, int fd, int resample_fd)
{
	struct epoll_event ev = { .events = EPOLLIN };

	for (uint32_t i = 0; i < KVMK_SPLIT_MAX_IRQFDS; i++) {
		struct kvmk_user_irqfd *u = &s->user_irqfds[i];

		if (u->used)
			continue;
		ev.data.u32 = i;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return kvmk_err_sys("epoll_ctl", errno, "irqfd %d of gsi %u", fd, gsi);
		*u = (struct kvmk_user_irqfd){
			.used = true, .fd = fd, .resample_fd = resample_fd, .gsi = gsi
		};
		if (i + 1 > s->user_hw)
			s->user_hw = i + 1;
		return 0;
	}
	return kvmk_err_resource("kvmkit_irqfd_bind", ENOSPC, "more than %d irqfds in split mode",
				 KVMK_SPLIT_MAX_IRQFDS);
}

/* KVM injects @fd (the irqfd of @gsi) through kernel route @kgsi
 * (chip->lock held). */
static int kernel_add(struct kvmk_split *s, uint32_t gsi, uint32_t kgsi, int fd)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = kgsi };

	for (uint32_t i = 0; i < KVMK_SPLIT_MAX_IRQFDS; i++) {
		struct kvmk_kernel_irqfd *k = &s->kernel_irqfd[i];

		if (k->used)
			continue;
		if (ioctl(s->vm_fd, KVM_IRQFD, &irqfd) < 0)
			return kvmk_err_ioctl("KVM_IRQFD", errno,
					      "gsi %u fd %d (split, kernel gsi %u)", gsi, fd, kgsi);
		*k = (struct kvmk_kernel_irqfd){ .used = true, .fd = fd, .gsi = gsi, .kgsi = kgsi };
		return 0;
	}
	return kvmk_err_resource("kvmkit_irqfd_bind", ENOSPC,
				 "more than %d kernel irqfds in split mode", KVMK_SPLIT_MAX_IRQFDS);
}

static int kernel_drop(struct kvmk_split *s, struct kvmk_kernel_irqfd *k)
{
	int r = kvmk_x86_irqfd_deassign(s->vm_fd, k->kgsi, k->fd);

	if (!r)
		k->used = false;
	return r;
}

/*
 * The kernel route through which KVM can inject an irqfd of @gsi under
 * table @tab and the current mirrors, or -1 if kvmkit must serve it
 * (chip->lock held):
 *  - an edge irqfd on a GSI past the IOAPIC's reserved routes whose route
 *    is one MSI: that GSI's own route, as in kernel mode;
 *  - an edge irqfd on a GSI whose only route is IOAPIC pin p, while p's
 *    entry is unmasked, edge-triggered, with fixed or lowest-priority
 *    delivery: p's mirror, the very message the model would send. A masked
 *    edge is dropped either way, and a pulse leaves the model's input low
 *    either way. (One difference: the model sees no new edge on a pin a
 *    device holds asserted through a line; KVM then sends the mirror.)
 * A level irqfd needs the model's remote IRR and resampling: never.
 */
static int kernel_gsi(struct kvmk_split *s, const struct kvm_irq_routing_entry *tab, unsigned int n,
		      uint32_t gsi, int resample_fd)
{
	const struct kvm_irq_routing_entry *e = NULL;
	unsigned int routes = 0;
	uint32_t pin, data;

	if (resample_fd >= 0)
		return -1;
	if (gsi >= s->split_routes && kvmk_irq_only_msi(tab, n, gsi))
		return (int)gsi;
	for (unsigned int i = 0; i < n; i++)
		if (tab[i].gsi == gsi) {
			e = &tab[i];
			routes++;
		}
	if (routes != 1 || e->type != KVM_IRQ_ROUTING_IRQCHIP ||
	    e->u.irqchip.irqchip != KVMKIT_IRQCHIP_IOAPIC || e->u.irqchip.pin >= KVMKIT_IOAPIC_PINS)
		return -1;
	pin = e->u.irqchip.pin;
	data = s->mirrors[pin].u.msi.data;
	if (!s->mirror_valid[pin] || (data & 1u << 15) || ((data >> 8) & 7) > 1)
		return -1;
	return (int)pin;
}

/* KVM takes only eventfds, and the thread could not service anything else
 * (a pipe's hang-up would keep it spinning). Where /proc cannot tell, the
 * fd is taken on trust. */
static bool is_eventfd(int fd)
{
	static const char want[] = "anon_inode:[eventfd]";
	char path[32], link[sizeof(want)];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link));
	return n < 0 || (n == sizeof(want) - 1 && !memcmp(link, want, (size_t)n));
}

/*
 * A level irqfd bound to a GSI whose IOAPIC pin is already asserted with
 * no resamplefd to tell of its EOI (a machine restored with a level
 * irqfd's interrupt in flight: irqfds are not in a snapshot, the pin's
 * level is) takes that level over, as KVM's resampler does in kernel mode
 * (there the restored level has no source, and the resampler's EOI lowers
 * it): the EOI then lowers the GSI and signals @rfd instead of delivering
 * the stale level again and again. chip->lock is held: the routes are read
 * from the committed table, the pin's input without the model's lock (the
 * lock order is model, then chip->lock).
 */
static void adopt_level(struct kvmk_split *s, uint32_t gsi, int rfd)
{
	const struct kvmkit_irqchip *chip = s->chip;

	for (unsigned int i = 0; i < chip->ncommitted; i++) {
		const struct kvm_irq_routing_entry *e = &chip->committed[i];
		uint32_t pin = e->u.irqchip.pin;
		int none = -1;

		if (e->gsi != gsi || e->type != KVM_IRQ_ROUTING_IRQCHIP ||
		    e->u.irqchip.irqchip != KVMKIT_IRQCHIP_IOAPIC || pin >= KVMKIT_IOAPIC_PINS ||
		    !kvmk_ioapic_input(s->ioapic, pin))
			continue;
		/* An owner already there keeps the pin (and its GSI). */
		if (__atomic_load_n(&s->pin_resample_fd[pin], __ATOMIC_ACQUIRE) != -1)
			continue;
		__atomic_store_n(&s->pin_resample_gsi[pin], gsi, __ATOMIC_RELEASE);
		__atomic_compare_exchange_n(&s->pin_resample_fd[pin], &none, rfd, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
}

int kvmk_split_irqfd_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd)
{
	struct kvmk_split *s = chip->priv;
	int kgsi = kernel_gsi(s, chip->committed, chip->ncommitted, gsi, resample_fd);
	int r;

	if (!is_eventfd(fd))
		return kvmk_err_param("kvmkit_irqfd_bind", "fd", "not an eventfd", "%d", fd);
	if (resample_fd >= 0 && !is_eventfd(resample_fd))
		return kvmk_err_param("kvmkit_irqfd_bind", "resample_fd", "not an eventfd", "%d",
				      resample_fd);
	if (kgsi >= 0)
		return kernel_add(s, gsi, (uint32_t)kgsi, fd);
	r = user_add(s, gsi, fd, resample_fd);
	if (!r && resample_fd >= 0)
		adopt_level(s, gsi, resample_fd);
	return r;
}

int kvmk_split_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	struct kvmk_split *s = chip->priv;
	struct kvmk_user_irqfd u = { 0 };

	pthread_mutex_lock(&chip->lock);
	for (uint32_t i = 0; i < KVMK_SPLIT_MAX_IRQFDS; i++) {
		struct kvmk_kernel_irqfd *k = &s->kernel_irqfd[i];
		int r;

		if (!k->used || k->fd != fd || k->gsi != gsi)
			continue;
		r = kernel_drop(s, k);
		pthread_mutex_unlock(&chip->lock);
		return r;
	}
	for (uint32_t i = 0; i < s->user_hw; i++) {
		struct kvmk_user_irqfd *e = &s->user_irqfds[i];

		if (e->used && e->fd == fd && e->gsi == gsi) {
			u = *e;
			user_free(s, e);
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
			break;
		}
	}
	pthread_mutex_unlock(&chip->lock);
	if (!u.used)
		return kvmk_err_param("kvmkit_irqfd_unbind", "fd", "not bound to this gsi",
				      "%d (gsi %u)", fd, gsi);
	/* As in KVM: deassigning a level irqfd de-asserts its line. */
	if (u.resample_fd >= 0 && kvmk_split_clear_resample(s, u.resample_fd))
		kvmk_split_set_gsi(s, gsi, false, -1);
	return 0;
}

/*
 * kvmkit_irqfd_signal() on an irqfd kvmkit serves: served here, on the
 * caller's thread, instead of waking the interrupt thread through the
 * eventfd (a thread wake-up per interrupt, tens of microseconds where
 * cross-CPU wake-ups are slow). What the caller could observe is the same:
 * the thread, too, asserts or pulses the GSI the signal is for. Irqfds in
 * the kernel, or not bound, get the eventfd write.
 */
int kvmk_split_irqfd_signal(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	struct kvmk_split *s = chip->priv;
	struct kvmk_user_irqfd u = { 0 };

	pthread_mutex_lock(&chip->lock);
	for (uint32_t i = 0; i < s->user_hw && !u.used; i++)
		if (s->user_irqfds[i].used && s->user_irqfds[i].fd == fd &&
		    s->user_irqfds[i].gsi == gsi)
			u = s->user_irqfds[i];
	pthread_mutex_unlock(&chip->lock);
	if (!u.used)
		return 0;
	serve(s, &u);
	return 1;
}

unsigned int kvmk_split_irqfds_in_kernel(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	struct kvmk_split *s = chip->priv;
	unsigned int n = 0;

	for (unsigned int i = 0; i < KVMK_SPLIT_MAX_IRQFDS; i++)
		n += s->kernel_irqfd[i].used && s->kernel_irqfd[i].gsi == gsi;
	return n;
}

int kvmk_split_irqfds_before_commit(struct kvmk_split *s, const struct kvm_irq_routing_entry *tab,
				    unsigned int n)
{
	/* Deassigned before the kernel route goes or changes kind; a signal in
	 * between waits in the eventfd and is seen by the thread. */
	for (unsigned int i = 0; i < KVMK_SPLIT_MAX_IRQFDS; i++) {
		struct kvmk_kernel_irqfd *k = &s->kernel_irqfd[i];
		int r;

		if (!k->used || kernel_gsi(s, tab, n, k->gsi, -1) == (int)k->kgsi)
			continue;
		r = kernel_drop(s, k);
		if (r)
			return r;
		r = user_add(s, k->gsi, k->fd, -1);
		if (r) {
			struct kvmkit_error saved;

			/* The commit fails and the kernel keeps the old table,
			 * which routes it: back where it was, not lost. */
			kvmk_err_save(&saved);
			if (kernel_add(s, k->gsi, k->kgsi, k->fd))
				kvmk_warn("irqfd %d of gsi %u lost: %s", k->fd, k->gsi,
					  kvmkit_strerror());
			kvmk_err_restore(&saved);
			return r;
		}
		kvmk_debug("irqfd %d of gsi %u moved to the interrupt thread", k->fd, k->gsi);
	}
	return 0;
}

void kvmk_split_irqfds_after_commit(struct kvmk_split *s, const struct kvm_irq_routing_entry *tab,
				    unsigned int n)
{
	/* Out of epoll first; KVM picks up a signal that came in between when
	 * assigned. The table is in by now: a failure only leaves the irqfd
	 * with the thread (delivered, just slower), it does not fail the
	 * commit. */
	for (unsigned int i = 0; i < KVMK_SPLIT_MAX_IRQFDS; i++) {
		struct kvmk_user_irqfd *u = &s->user_irqfds[i];
		int kgsi;

		if (!u->used)
			continue;
		kgsi = kernel_gsi(s, tab, n, u->gsi, u->resample_fd);
		if (kgsi < 0)
			continue;
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, u->fd, NULL);
		user_free(s, u);
		if (kernel_add(s, u->gsi, (uint32_t)kgsi, u->fd)) {
			kvmk_warn("irqfd %d of gsi %u stays with the interrupt thread: %s", u->fd,
				  u->gsi, kvmkit_strerror());
			/* Its slot and epoll entry were just freed: this cannot fail. */
			user_add(s, u->gsi, u->fd, -1);
			continue;
		}
		kvmk_debug("irqfd %d of gsi %u moved to the kernel", u->fd, u->gsi);
	}
}
