// SPDX-License-Identifier: MIT
/*
 * The virtio-mmio transport's life: the register window, one ioeventfd per
 * queue (QueueNotify, datamatch = queue index), the irqfd on the device's
 * pin (edge, or level with a resamplefd), and the device thread that
 * serves notifications and resamples from an epoll set. Register accesses
 * are in mmio.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "virtio"
#include "virtio/virtio_internal.h"

/* epoll tags: queues are 0..KVMK_VIRTIO_MAX_QUEUES-1. */
enum { TAG_KICK = 100, TAG_STOP, TAG_RESAMPLE, TAG_DEVICE };

/* How long a thread with work deferred (VM not running) waits before it
 * looks at the VM's state again. */
#define DEFER_MS 10

void kvmkit_virtio_mmio_config_init(struct kvmkit_virtio_mmio_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->gsi = -1;
	cfg->trigger = KVMKIT_VIRTIO_IRQ_EDGE;
}

void kvmk_virtio_warn(struct kvmk_virtio *t, const char *fmt, ...)
{
	uint64_t now = kvmk_now_ns();
	char msg[192];
	va_list ap;

	if (t->log_ns && now - t->log_ns < 1000000000ull) {
		t->log_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (t->log_suppressed)
		kvmk_warn("%s at 0x%llx: %s (%u similar messages suppressed)", t->ops->name,
			  (unsigned long long)t->base, msg, t->log_suppressed);
	else
		kvmk_warn("%s at 0x%llx: %s", t->ops->name, (unsigned long long)t->base, msg);
	t->log_ns = now;
	t->log_suppressed = 0;
}

void kvmk_virtio_kick(struct kvmk_virtio *t)
{
	eventfd_write(t->kick_fd, 1);
}

/* The irqfd is bound when first needed, not at creation: a machine
 * restore brings back the irqchip (which must have no irqfd bound then)
 * after creating the devices. */
static int bind_irq(struct kvmk_virtio *t)
{
	int r;

	if (t->irq_bound)
		return 0;
	r = kvmkit_irqfd_bind(t->chip, t->gsi, t->irq_fd, t->resample_fd);
	t->irq_bound = !r;
	return r;
}

int kvmk_virtio_bind_irq(struct kvmk_virtio *t)
{
	return bind_irq(t);
}

void kvmk_virtio_interrupt(struct kvmk_virtio *t, uint32_t bits)
{
	t->isr |= bits;
	t->st.interrupts++;
	if (bind_irq(t) || kvmkit_irqfd_signal(t->chip, t->gsi, t->irq_fd) < 0)
		kvmk_virtio_warn(t, "interrupt lost: %s", kvmkit_strerror());
}

void kvmk_virtio_used(struct kvmk_virtio *t, unsigned int q)
{
	if (kvmk_vq_need_notify(&t->q[q].vq))
		kvmk_virtio_interrupt(t, VIRTIO_INT_USED);
}

void kvmk_virtio_broken(struct kvmk_virtio *t, unsigned int q)
{
	t->st.malformed++;
	kvmk_virtio_warn(t, "queue %u malformed (%s): device needs reset", q, t->q[q].vq.why);
	if (t->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	t->status |= VIRTIO_STATUS_NEEDS_RESET;
	/* 2.1.2: a device entering NEEDS_RESET sends a configuration change
	 * notification when DRIVER_OK is set. */
	if (t->status & VIRTIO_STATUS_DRIVER_OK)
		kvmk_virtio_interrupt(t, VIRTIO_INT_CONFIG);
}

bool kvmk_virtio_queue_live(struct kvmk_virtio *t, unsigned int q)
{
	return q < t->ops->nqueues && t->q[q].vq.ready && !t->q[q].vq.broken &&
	       (t->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) ==
		       VIRTIO_STATUS_DRIVER_OK;
}

void kvmk_virtio_inflight_get(struct kvmk_virtio *t)
{
	t->inflight++;
}

void kvmk_virtio_inflight_put(struct kvmk_virtio *t)
{
	if (--t->inflight == 0)
		pthread_cond_broadcast(&t->idle);
}

static void drain(int fd)
{
	eventfd_t v;

	eventfd_read(fd, &v);
}

/* Lock held. Work is done only while the VM runs, so that a paused VM
 * (a snapshot) sees neither its memory nor the device change. */
static void serve(struct kvmk_virtio *t, uint32_t queues)
{
	t->pending |= queues;
	if (kvmkit_vm_state(t->vm) != KVMKIT_VM_RUNNING)
		return;
	queues = t->pending;
	t->pending = 0;
	for (unsigned int q = 0; q < t->ops->nqueues; q++)
		if ((queues & (1u << q)) && kvmk_virtio_queue_live(t, q))
			t->ops->queue(t, q);
}

static void *device_thread(void *opaque)
{
	struct kvmk_virtio *t = opaque;
	struct epoll_event ev[8];
	int timeout = -1; /* DEFER_MS while work waits for the VM to run */

	for (;;) {
		int n = epoll_wait(t->epoll_fd, ev, 8, timeout);
		uint32_t queues = 0;

		if (n < 0 && errno != EINTR) {
			kvmk_error("%s: epoll_wait: %s", t->ops->name, strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = ev[i].data.u64;

			if (tag == TAG_STOP)
				return NULL;
			if (tag == TAG_DEVICE) {
				t->ops->poll(t);
				continue;
			}
			drain(tag == TAG_KICK	  ? t->kick_fd :
			      tag == TAG_RESAMPLE ? t->resample_fd :
						    t->q[tag].notify_fd);
			pthread_mutex_lock(&t->lock);
			if (tag == TAG_KICK) {
				queues |= (1u << t->ops->nqueues) - 1;
			} else if (tag == TAG_RESAMPLE) {
				/* The guest's EOI lowered the line: raise it
				 * again while something is unacknowledged. */
				t->st.resamples++;
				if (t->isr)
					kvmk_virtio_interrupt(t, 0);
			} else {
				t->st.notifies++;
				queues |= 1u << tag;
			}
			pthread_mutex_unlock(&t->lock);
		}
		pthread_mutex_lock(&t->lock);
		if (queues || t->pending)
			serve(t, queues);
		timeout = t->pending ? DEFER_MS : -1;
		pthread_mutex_unlock(&t->lock);
	}
}

static int watch(struct kvmk_virtio *t, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	if (epoll_ctl(t->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return kvmk_err_sys("virtio", errno, "epoll_ctl");
	return 0;
}

int kvmk_virtio_queue_watch(struct kvmk_virtio *t, unsigned int q, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = q };

	if (epoll_ctl(t->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, t->q[q].notify_fd, &ev) < 0)
		return kvmk_err_sys("virtio", errno, "epoll_ctl");
	return 0;
}

static int new_eventfd(int *fd)
{
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? kvmk_err_sys("virtio", errno, "eventfd") : 0;
}

static int setup_irq(struct kvmk_virtio *t, int gsi)
{
	int r;

	if (gsi < 0) {
		r = kvmkit_gsi_alloc_pin(t->chip);
		if (r < 0)
			return r;
		t->gsi_allocated = true;
		gsi = r;
	}
	t->gsi = (uint32_t)gsi;
	r = new_eventfd(&t->irq_fd);
	if (!r && t->trigger == KVMKIT_VIRTIO_IRQ_LEVEL)
		r = new_eventfd(&t->resample_fd);
	if (r)
		return r;
	/* The pin's route must exist for the bind later: check it now. */
	if (!kvmkit_irq_route_count(t->chip, t->gsi))
		return kvmk_err_param("kvmkit_virtio_create", "gsi", "a routed GSI", "%u", t->gsi);
	return t->resample_fd >= 0 ? watch(t, t->resample_fd, TAG_RESAMPLE) : 0;
}

static int setup_queues(struct kvmk_virtio *t, bool no_ioeventfd)
{
	for (unsigned int i = 0; i < t->ops->nqueues; i++) {
		struct kvmk_virtio_queue *q = &t->q[i];
		int r = new_eventfd(&q->notify_fd);

		if (!r)
			r = watch(t, q->notify_fd, i);
		if (r)
			return r;
		if (no_ioeventfd)
			continue;
		/* QueueNotify (0x50), 4 bytes, value = queue index. */
		r = kvmkit_ioeventfd_add(t->vm, t->base + 0x50, 4, KVMKIT_IOEVENTFD_DATAMATCH, i,
					 q->notify_fd);
		if (r)
			kvmk_info("%s: no ioeventfd (%s): notifications exit to kvmkit",
				  t->ops->name, kvmkit_strerror());
		q->ioeventfd = !r;
	}
	return 0;
}

static void *gmem_map(void *ctx, uint64_t gpa, uint64_t len)
{
	return kvmkit_vm_gpa_to_hva(ctx, gpa, len);
}

static void gmem_dirty(void *ctx, uint64_t gpa, uint64_t len)
{
	kvmkit_vm_mark_dirty(ctx, gpa, len);
}

static int check_config(const struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg)
{
	const char *op = "kvmkit_virtio_create";
	unsigned int qs = cfg->queue_size;

	if (cfg->slot >= KVMKIT_VIRTIO_MMIO_SLOTS)
		return kvmk_err_param(op, "slot", "below 32", "%u", cfg->slot);
	if (qs && (qs > KVMK_VQ_MAX_SIZE || (qs & (qs - 1))))
		return kvmk_err_param(op, "queue_size", "a power of two up to 32768", "%u", qs);
	if ((unsigned int)cfg->trigger > KVMKIT_VIRTIO_IRQ_LEVEL)
		return kvmk_err_param(op, "trigger", "edge or level", "%d", (int)cfg->trigger);
	if (cfg->gsi >= KVMKIT_MAX_GSI)
		return kvmk_err_param(op, "gsi", "a GSI kvmkit tracks", "%d", cfg->gsi);
	return 0;
}

int kvmk_virtio_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
		       const struct kvmk_virtio_ops *ops, void *priv, struct kvmk_virtio **out)
{
	struct kvmkit_virtio_mmio_config defcfg;
	struct kvmkit_virtio *dev;
	struct kvmk_virtio *t;
	int r;

	if (!cfg) {
		kvmkit_virtio_mmio_config_init(&defcfg);
		cfg = &defcfg;
	}
	r = check_config(vm, cfg);
	if (r)
		return r;
	if (!kvmkit_vm_irqchip(vm))
		return kvmk_err_unsupported("kvmkit_virtio_create", ENOTSUP,
					    "virtio-mmio needs the VM's irqchip");
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return kvmk_err_resource("kvmkit_virtio_create", ENOMEM, NULL);
	t = &dev->t;
	t->ops = ops;
	t->priv = priv;
	t->vm = vm;
	t->chip = kvmkit_vm_irqchip(vm);
	t->mem = (struct kvmk_gmem){ vm, gmem_map, gmem_dirty };
	t->base = KVMKIT_VIRTIO_MMIO_BASE + cfg->slot * KVMKIT_VIRTIO_MMIO_STRIDE;
	t->trigger = cfg->trigger;
	t->queue_max = (uint16_t)(cfg->queue_size ? cfg->queue_size : KVMK_VIRTIO_DEFAULT_QSIZE);
	t->epoll_fd = t->kick_fd = t->stop_fd = t->irq_fd = t->resample_fd = -1;
	for (unsigned int i = 0; i < KVMK_VIRTIO_MAX_QUEUES; i++)
		t->q[i].notify_fd = -1;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->idle, NULL);
	*out = t;
	t->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (t->epoll_fd < 0)
		return kvmk_err_sys("kvmkit_virtio_create", errno, "epoll_create1");
	r = new_eventfd(&t->kick_fd);
	if (!r)
		r = new_eventfd(&t->stop_fd);
	if (!r)
		r = watch(t, t->kick_fd, TAG_KICK);
	if (!r)
		r = watch(t, t->stop_fd, TAG_STOP);
	if (!r && ops->poll_fd && ops->poll_fd(t) >= 0)
		r = watch(t, ops->poll_fd(t), TAG_DEVICE);
	if (!r)
		r = setup_irq(t, cfg->gsi);
	if (!r)
		r = setup_queues(t, cfg->no_ioeventfd);
	if (!r) {
		r = -pthread_create(&t->thread, NULL, device_thread, t);
		t->thread_started = !r;
		if (r)
			kvmk_err_sys("kvmkit_virtio_create", -r, "pthread_create");
	}
	if (!r) {
		r = kvmkit_bus_register(kvmkit_vm_mmio_bus(vm), t->base, KVMKIT_VIRTIO_MMIO_SIZE,
					ops->name, &kvmk_virtio_mmio_ops, t);
		t->registered = !r;
	}
	return r; /* on error the caller destroys *out */
}

void kvmkit_virtio_destroy(struct kvmkit_virtio *dev)
{
	struct kvmk_virtio *t;
	struct kvmkit_error saved;

	if (!dev)
		return;
	t = &dev->t;
	kvmk_err_save(&saved);
	/* No vCPU in the handlers after this; the thread still runs, so a
	 * handler waiting in a reset could finish. */
	if (t->registered)
		kvmkit_bus_unregister(kvmkit_vm_mmio_bus(t->vm), t->base);
	for (unsigned int i = 0; i < t->ops->nqueues; i++)
		if (t->q[i].ioeventfd)
			kvmkit_ioeventfd_remove(t->vm, t->base + 0x50, 4,
						KVMKIT_IOEVENTFD_DATAMATCH, i, t->q[i].notify_fd);
	if (t->thread_started) {
		eventfd_write(t->stop_fd, 1);
		pthread_join(t->thread, NULL);
	}
	if (t->ops->destroy)
		t->ops->destroy(t);
	if (t->irq_bound)
		kvmkit_irqfd_unbind(t->chip, t->gsi, t->irq_fd);
	if (t->gsi_allocated)
		kvmkit_gsi_free(t->chip, t->gsi);
	for (unsigned int i = 0; i < KVMK_VIRTIO_MAX_QUEUES; i++)
		if (t->q[i].notify_fd >= 0)
			close(t->q[i].notify_fd);
	int fds[] = { t->epoll_fd, t->kick_fd, t->stop_fd, t->irq_fd, t->resample_fd };
	for (unsigned int i = 0; i < KVMKIT_ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pthread_cond_destroy(&t->idle);
	pthread_mutex_destroy(&t->lock);
	free(dev);
	kvmk_err_restore(&saved);
}

void kvmkit_virtio_get_info(const struct kvmkit_virtio *dev, struct kvmkit_virtio_info *out)
{
	const struct kvmk_virtio *t = &dev->t;

	memset(out, 0, sizeof(*out));
	out->name = t->ops->name;
	out->device_id = t->ops->device_id;
	out->base = t->base;
	out->size = KVMKIT_VIRTIO_MMIO_SIZE;
	out->gsi = t->gsi;
	out->trigger = t->trigger;
	out->ioeventfd = t->ops->nqueues && t->q[0].ioeventfd;
	out->uring = t->uring;
}

int kvmkit_virtio_cmdline(const struct kvmkit_virtio_info *info, char *buf, size_t len)
{
	return snprintf(buf, len, "virtio_mmio.device=0x%llx@0x%llx:%u",
			(unsigned long long)info->size, (unsigned long long)info->base, info->gsi);
}

void kvmkit_virtio_get_stats(struct kvmkit_virtio *dev, struct kvmkit_virtio_stats *out)
{
	struct kvmk_virtio *t = &dev->t;

	pthread_mutex_lock(&t->lock);
	*out = t->st;
	out->status = t->status;
	pthread_mutex_unlock(&t->lock);
}
