// SPDX-License-Identifier: MIT
/* A machine's virtio-mmio devices: see machine_virtio.h. */
#define KVMK_LOG_MODULE "machine"
#include "virtio/virtio_internal.h"
#include "vmm/machine_virtio.h"

/* virtio_io.h's devices, after the console. */
static int virtio_io_create(struct kvmkit_vm *vm, const struct kvmkit_machine_config *cfg,
			    struct kvmkit_virtio_mmio_config *vc, struct kvmk_machine_virtio *mv)
{
	struct kvmkit_virtio_net_config nc = { .tap = cfg->net_tap, .vhost = cfg->net_vhost };
	struct kvmkit_virtio_vsock_config sc = { .cid = cfg->vsock_cid };
	int r = 0;

	vc->slot = mv->n;
	if (cfg->net_tap)
		r = kvmkit_virtio_net_create(vm, vc, &nc, &mv->dev[mv->n]);
	mv->n += !r && cfg->net_tap;
	vc->slot = mv->n;
	if (!r && cfg->vsock_cid)
		r = kvmkit_virtio_vsock_create(vm, vc, &sc, &mv->dev[mv->n]);
	mv->n += !r && cfg->vsock_cid;
	return r;
}

int kvmk_machine_virtio_create(struct kvmkit_vm *vm, const struct kvmkit_machine_config *cfg,
			       struct kvmk_machine_virtio *mv)
{
	struct kvmkit_virtio_mmio_config vc;
	int r = 0;

	if (!cfg->virtio_rng && !cfg->ndisks && !cfg->virtio_console && !cfg->net_tap &&
	    !cfg->vsock_cid)
		return 0;
	if (cfg->ndisks > KVMKIT_MACHINE_MAX_DISKS)
		return kvmk_err_param("kvmkit_machine_create", "ndisks", "at most 8", "%u",
				      cfg->ndisks);
	if (!cfg->irqchip)
		return kvmk_err_param("kvmkit_machine_create", "irqchip",
				      "virtio devices need an irqchip", "none");
	kvmkit_virtio_mmio_config_init(&vc);
	vc.trigger = cfg->virtio_trigger;
	if (cfg->virtio_rng)
		r = kvmkit_virtio_rng_create(vm, &vc, &mv->dev[mv->n]);
	mv->n += !r && cfg->virtio_rng;
	for (unsigned int i = 0; !r && i < cfg->ndisks; i++) {
		struct kvmkit_virtio_blk_config bc = { cfg->disks[i].path, cfg->disks[i].read_only,
						       cfg->disks[i].serial, false };

		vc.slot = mv->n;
		r = kvmkit_virtio_blk_create(vm, &vc, &bc, &mv->dev[mv->n]);
		mv->n += !r;
	}
	if (!r && cfg->virtio_console) {
		vc.slot = mv->n;
		r = kvmkit_virtio_console_create(vm, &vc, cfg->console_fd, &mv->dev[mv->n]);
		if (!r)
			mv->console = mv->dev[mv->n++];
	}
	return r ? r : virtio_io_create(vm, cfg, &vc, mv);
}

void kvmk_machine_virtio_destroy(struct kvmk_machine_virtio *mv)
{
	mv->console = NULL;
	while (mv->n)
		kvmkit_virtio_destroy(mv->dev[--mv->n]);
}

int kvmk_machine_virtio_save(struct kvmk_machine_virtio *mv, struct kvmk_blob *out)
{
	struct kvmk_blob d = { 0 };
	struct kvmkit_virtio_info info;
	int r;

	/* A tap's traffic and vhost's rings are outside the saved state. */
	for (unsigned int i = 0; i < mv->n; i++) {
		kvmkit_virtio_get_info(mv->dev[i], &info);
		if (info.device_id == KVMKIT_VIRTIO_ID_NET ||
		    info.device_id == KVMKIT_VIRTIO_ID_VSOCK)
			return kvmk_err_unsupported("snapshot", ENOTSUP, "%s cannot be saved (yet)",
						    info.name);
	}
	r = kvmk_blob_put_u32(out, mv->n);

	for (unsigned int i = 0; !r && i < mv->n; i++) {
		d.len = 0;
		r = kvmk_virtio_save(mv->dev[i], &d);
		if (!r)
			r = kvmk_blob_put_u32(out, (uint32_t)d.len);
		if (!r)
			r = kvmk_blob_put(out, d.data, d.len);
	}
	kvmk_blob_free(&d);
	return r;
}

int kvmk_machine_virtio_restore(struct kvmk_machine_virtio *mv, const uint8_t *p, size_t len)
{
	struct kvmk_reader rd = { p, len, "virtio restore" };
	uint32_t n, l;
	int r = kvmk_reader_u32(&rd, &n, "virtio device count");

	if (!r && n != mv->n)
		r = kvmk_err_format(rd.op, "%u virtio devices saved, this machine has %u", n,
				    mv->n);
	for (unsigned int i = 0; !r && i < n; i++) {
		r = kvmk_reader_u32(&rd, &l, "virtio state length");
		if (!r && l > rd.left)
			r = kvmk_err_format(rd.op, "virtio device %u: state truncated", i);
		if (!r)
			r = kvmk_virtio_restore(mv->dev[i], rd.p, l);
		rd.p += r ? 0 : l;
		rd.left -= r ? 0 : l;
	}
	if (!r && rd.left)
		r = kvmk_err_format(rd.op, "%zu bytes past the virtio states", rd.left);
	return r;
}
