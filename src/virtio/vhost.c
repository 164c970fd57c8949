// SPDX-License-Identifier: MIT
/*
 * vhost set-up shared by vhost-net and vhost-vsock (see vhost.h). The
 * ioctls and their order are those of the kernel's vhost documentation:
 * owner, features, memory table, then per queue its size, base index,
 * addresses, kick and call fds.
 */
#include <fcntl.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "virtio"
#include "virtio/vhost.h"

#define MAX_REGIONS 16

int kvmk_vhost_open(struct kvmk_vhost *v, const char *path, unsigned int nq)
{
	const char *op = "vhost";

	memset(v, 0, sizeof(*v));
	v->nq = nq;
	v->fd = -1;
	v->err_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->err_fd < 0)
		return kvmk_err_sys(op, errno, "eventfd");
	v->fd = open(path, O_RDWR | O_CLOEXEC);
	if (v->fd < 0) {
		int e = errno;

		if (e == ENOENT)
			return kvmk_err_unsupported(
				op, e, "%s: no such device (load the %s module)", path,
				strstr(path, "vsock") ? "vhost_vsock" : "vhost_net");
		return kvmk_err_sys(op, e, "%s", path);
	}
	if (ioctl(v->fd, VHOST_SET_OWNER) < 0)
		return kvmk_err_ioctl(op, errno, "%s: VHOST_SET_OWNER", path);
	if (ioctl(v->fd, VHOST_GET_FEATURES, &v->features) < 0)
		return kvmk_err_ioctl(op, errno, "%s: VHOST_GET_FEATURES", path);
	return 0;
}

/* The VM's RAM as the kernel should see it: guest address, size, our
 * mapping. */
static int set_mem_table(struct kvmk_vhost *v, struct kvmk_virtio *t)
{
	struct kvmkit_mem_region reg[MAX_REGIONS];
	unsigned int n = kvmkit_vm_memory_regions(t->vm, reg, MAX_REGIONS);
	struct vhost_memory *mem;
	int r = 0;

	if (n > MAX_REGIONS)
		return kvmk_err_resource("vhost", E2BIG, "%u memory regions, vhost here takes %d",
					 n, MAX_REGIONS);
	mem = calloc(1, sizeof(*mem) + n * sizeof(mem->regions[0]));
	if (!mem)
		return kvmk_err_resource("vhost", ENOMEM, NULL);
	mem->nregions = n;
	for (unsigned int i = 0; i < n; i++) {
		void *hva = kvmkit_vm_gpa_to_hva(t->vm, reg[i].gpa, reg[i].size);

		if (!hva) {
			r = kvmk_err_state("vhost", "memory region without a mapping", "mapped RAM",
					   "VHOST_SET_MEM_TABLE");
			break;
		}
		mem->regions[i].guest_phys_addr = reg[i].gpa;
		mem->regions[i].memory_size = reg[i].size;
		mem->regions[i].userspace_addr = (uint64_t)(uintptr_t)hva;
	}
	if (!r && ioctl(v->fd, VHOST_SET_MEM_TABLE, mem) < 0)
		r = kvmk_err_ioctl("vhost", errno, "VHOST_SET_MEM_TABLE");
	free(mem);
	return r;
}

static int set_vring(struct kvmk_vhost *v, struct kvmk_virtio *t, unsigned int i)
{
	struct kvmk_vq *vq = &t->q[i].vq;
	struct vhost_vring_state num = { i, vq->size }, base = { i, vq->last_avail };
	struct vhost_vring_addr addr = {
		.index = i,
		.desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
		.avail_user_addr = (uint64_t)(uintptr_t)vq->avail,
		.used_user_addr = (uint64_t)(uintptr_t)vq->used,
	};
	struct vhost_vring_file kick = { i, t->q[i].notify_fd }, call = { i, t->irq_fd },
				err = { i, v->err_fd };

	if (ioctl(v->fd, VHOST_SET_VRING_NUM, &num) < 0)
		return kvmk_err_ioctl("vhost", errno, "VHOST_SET_VRING_NUM %u", i);
	if (ioctl(v->fd, VHOST_SET_VRING_BASE, &base) < 0)
		return kvmk_err_ioctl("vhost", errno, "VHOST_SET_VRING_BASE %u", i);
	if (ioctl(v->fd, VHOST_SET_VRING_ADDR, &addr) < 0)
		return kvmk_err_ioctl("vhost", errno, "VHOST_SET_VRING_ADDR %u", i);
	if (ioctl(v->fd, VHOST_SET_VRING_CALL, &call) < 0)
		return kvmk_err_ioctl("vhost", errno, "VHOST_SET_VRING_CALL %u", i);
	if (ioctl(v->fd, VHOST_SET_VRING_ERR, &err) < 0)
		return kvmk_err_ioctl("vhost", errno, "VHOST_SET_VRING_ERR %u", i);
	if (ioctl(v->fd, VHOST_SET_VRING_KICK, &kick) < 0)
		return kvmk_err_ioctl("vhost", errno, "VHOST_SET_VRING_KICK %u", i);
	return 0;
}

/* Takes queues 0 .. @n-1 back; @watched of them had left the transport's
 * epoll set. */
static void release(struct kvmk_vhost *v, struct kvmk_virtio *t, unsigned int n,
		    unsigned int watched)
{
	for (unsigned int i = 0; i < n; i++) {
		struct vhost_vring_state base = { i, 0 };
		struct vhost_vring_file off = { i, -1 };

		/* Getting the base stops the ring; then no kick, no call. */
		ioctl(v->fd, VHOST_GET_VRING_BASE, &base);
		ioctl(v->fd, VHOST_SET_VRING_KICK, &off);
		ioctl(v->fd, VHOST_SET_VRING_CALL, &off);
		ioctl(v->fd, VHOST_SET_VRING_ERR, &off);
		if (i < watched)
			kvmk_virtio_queue_watch(t, i, true);
	}
}

int kvmk_vhost_start(struct kvmk_vhost *v, struct kvmk_virtio *t)
{
	uint64_t f = t->driver_features & v->features;
	unsigned int i;
	int r = 0;

	if (ioctl(v->fd, VHOST_SET_FEATURES, &f) < 0)
		return kvmk_err_ioctl("vhost", errno, "VHOST_SET_FEATURES 0x%llx",
				      (unsigned long long)f);
	r = set_mem_table(v, t);
	/* The call fd must reach the guest from the kernel's first signal. */
	if (!r)
		r = kvmk_virtio_bind_irq(t);
	if (r)
		return r;
	for (i = 0; i < v->nq; i++) {
		r = set_vring(v, t, i);
		if (r) {
			release(v, t, i + 1, i);
			return r;
		}
		/* From here the kernel polls the kick fd: a notification the
		 * transport's thread drained would be lost to it. */
		r = kvmk_virtio_queue_watch(t, i, false);
		if (r) {
			release(v, t, i + 1, i);
			return r;
		}
	}
	v->running = true;
	t->isr_forced = VIRTIO_INT_USED;
	return 0;
}

void kvmk_vhost_kick(struct kvmk_vhost *v, struct kvmk_virtio *t)
{
	for (unsigned int i = 0; i < v->nq; i++)
		eventfd_write(t->q[i].notify_fd, 1);
}

void kvmk_vhost_stop(struct kvmk_vhost *v, struct kvmk_virtio *t)
{
	if (!v->running)
		return;
	release(v, t, v->nq, v->nq);
	t->isr_forced = 0;
	v->running = false;
}

void kvmk_vhost_error(struct kvmk_vhost *v, struct kvmk_virtio *t)
{
	eventfd_t n;

	eventfd_read(v->err_fd, &n);
	pthread_mutex_lock(&t->lock);
	/* An error of a ring since taken back (a reset) is old news. */
	if (v->running) {
		struct kvmk_vq *vq = &t->q[0].vq;

		snprintf(vq->why, sizeof(vq->why), "the kernel (vhost) found a ring malformed");
		vq->broken = true;
		kvmk_virtio_broken(t, 0);
	}
	pthread_mutex_unlock(&t->lock);
}

void kvmk_vhost_close(struct kvmk_vhost *v)
{
	if (v->fd >= 0)
		close(v->fd);
	if (v->err_fd >= 0)
		close(v->err_fd);
	v->fd = v->err_fd = -1;
}
