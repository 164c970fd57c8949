// SPDX-License-Identifier: MIT
/*
 * virtio-vsock (virtio 1.x 5.10) through the kernel's vhost-vsock: the
 * guest's context id goes to the kernel when the device is created (so a
 * cid another VM holds fails then, not at boot), the rx and tx queues go to
 * the kernel at DRIVER_OK (vhost.c) and come back at a reset. The event
 * queue stays with kvmkit: the only event the spec defines is a transport
 * reset after migration, which kvmkit does not do, so its buffers are
 * left with the device untouched.
 */
#include <linux/vhost.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <kvmkit/virtio_io.h>

#define KVMK_LOG_MODULE "virtio"
#include "virtio/vhost.h"
#include "virtio/virtio_internal.h"

#define EVENTQ 2

struct vsock {
	struct kvmk_vhost vhost;
	uint64_t cid;
};

static int set_running(struct vsock *v, int on)
{
	if (ioctl(v->vhost.fd, VHOST_VSOCK_SET_RUNNING, &on) < 0)
		return kvmk_err_ioctl("vhost-vsock", errno, "VHOST_VSOCK_SET_RUNNING %d", on);
	return 0;
}

static void vsock_queue(struct kvmk_virtio *t, unsigned int q)
{
	struct vsock *v = t->priv;
	int r;

	if (q == EVENTQ || v->vhost.running || !kvmk_virtio_queue_live(t, 0) ||
	    !kvmk_virtio_queue_live(t, 1))
		return;
	r = kvmk_vhost_start(&v->vhost, t);
	if (!r) {
		r = set_running(v, 1);
		if (r)
			kvmk_vhost_stop(&v->vhost, t);
	}
	if (r) {
		snprintf(t->q[0].vq.why, sizeof(t->q[0].vq.why), "vhost-vsock: %s",
			 kvmkit_strerror());
		t->q[0].vq.broken = true;
		kvmk_virtio_broken(t, 0);
		return;
	}
	kvmk_vhost_kick(&v->vhost, t);
}

static void vsock_reset(struct kvmk_virtio *t)
{
	struct vsock *v = t->priv;

	if (!v->vhost.running)
		return;
	set_running(v, 0);
	kvmk_vhost_stop(&v->vhost, t);
}

static int vsock_poll_fd(struct kvmk_virtio *t)
{
	struct vsock *v = t->priv;

	return v->vhost.err_fd;
}

static void vsock_poll(struct kvmk_virtio *t)
{
	struct vsock *v = t->priv;

	kvmk_vhost_error(&v->vhost, t);
}

static void free_vsock(struct vsock *v)
{
	if (v)
		kvmk_vhost_close(&v->vhost);
	free(v);
}

static void vsock_destroy(struct kvmk_virtio *t)
{
	vsock_reset(t);
	free_vsock(t->priv);
}

static const struct kvmk_virtio_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_id = KVMKIT_VIRTIO_ID_VSOCK,
	.nqueues = 3,
	.queue = vsock_queue,
	.reset = vsock_reset,
	.poll_fd = vsock_poll_fd,
	.poll = vsock_poll,
	.destroy = vsock_destroy,
};

#define VHOST_NEEDED                                                   \
	((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) | \
	 (1ull << VIRTIO_F_INDIRECT_DESC))

static int open_vhost(struct vsock *v, const struct kvmkit_virtio_vsock_config *vc)
{
	const char *op = "kvmkit_virtio_vsock_create";
	int r = kvmk_vhost_open(&v->vhost, vc->vhost_path ? vc->vhost_path : "/dev/vhost-vsock", 2);

	if (!r && (v->vhost.features & VHOST_NEEDED) != VHOST_NEEDED)
		r = kvmk_err_unsupported(op, ENOTSUP, "vhost-vsock features 0x%llx lack 0x%llx",
					 (unsigned long long)v->vhost.features,
					 (unsigned long long)(VHOST_NEEDED & ~v->vhost.features));
	if (!r && ioctl(v->vhost.fd, VHOST_VSOCK_SET_GUEST_CID, &v->cid) < 0)
		r = kvmk_err_sys(op, errno, "guest cid %llu", (unsigned long long)v->cid);
	return r;
}

int kvmkit_virtio_vsock_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
			       const struct kvmkit_virtio_vsock_config *vc,
			       struct kvmkit_virtio **out)
{
	const char *op = "kvmkit_virtio_vsock_create";
	struct kvmk_virtio *t = NULL;
	struct vsock *v;
	int r;

	/* 0-2 are the hypervisor's, the local and the host's; -1 is "any". */
	if (!vc || vc->cid < 3 || vc->cid >= 0xffffffffull)
		return kvmk_err_param(op, "cid", "3 to 4294967294", "%llu",
				      vc ? (unsigned long long)vc->cid : 0ull);
	v = calloc(1, sizeof(*v));
	if (!v)
		return kvmk_err_resource(op, ENOMEM, NULL);
	v->vhost.fd = v->vhost.err_fd = -1;
	v->cid = vc->cid;
	r = open_vhost(v, vc);
	if (r) {
		free_vsock(v);
		return r;
	}
	r = kvmk_virtio_create(vm, cfg, &vsock_ops, v, &t);
	if (r) {
		if (t)
			kvmkit_virtio_destroy(kvmk_virtio_dev(t));
		else
			free_vsock(v);
		return r;
	}
	pthread_mutex_lock(&t->lock);
	memcpy(t->config, &v->cid, 8); /* guest_cid, le64 (5.10.4) */
	t->config_len = 8;
	pthread_mutex_unlock(&t->lock);
	*out = kvmk_virtio_dev(t);
	return 0;
}
