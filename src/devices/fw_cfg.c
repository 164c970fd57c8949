// SPDX-License-Identifier: MIT
/*
 * fw_cfg, QEMU's firmware configuration device, legacy I/O interface only
 * (selector at 0x510, data at 0x511; no DMA, no file directory). The items
 * are fixed at creation; the only state is the selected item and the offset
 * into it, shared by all vCPUs as on the real device.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "fw_cfg"
#include "core/internal.h"
#include "devices/devices_internal.h"
#include <kvmkit/vm.h>

#define FWCFG_ID_TRADITIONAL (1u << 0)
#define ITEM_MAX 8

struct fwcfg_item {
	uint16_t key;
	uint8_t len;
	uint8_t data[ITEM_MAX];
};

struct kvmkit_fwcfg {
	struct kvmkit_bus *pio;
	pthread_mutex_t lock;
	const struct fwcfg_item *cur; /* NULL: no such key */
	uint32_t offset;
	unsigned int nitems;
	struct fwcfg_item items[6];
};

static void add_item(struct kvmkit_fwcfg *d, uint16_t key, uint64_t v, uint8_t len)
{
	struct fwcfg_item *it = &d->items[d->nitems++];

	it->key = key;
	it->len = len;
	for (uint8_t i = 0; i < len; i++)
		it->data[i] = (uint8_t)(v >> (8 * i));
}

static void fw_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	struct kvmkit_fwcfg *d = opaque;
	uint8_t v = 0;

	memset(data, 0, size);
	if (off != 1 || size != 1)
		return;
	pthread_mutex_lock(&d->lock);
	if (d->cur && d->offset < d->cur->len)
		v = d->cur->data[d->offset];
	/* The offset keeps counting past the end (it cannot wrap back in). */
	if (d->cur && d->offset <= d->cur->len)
		d->offset++;
	pthread_mutex_unlock(&d->lock);
	*(uint8_t *)data = v;
}

static void fw_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmkit_fwcfg *d = opaque;
	uint16_t key;

	if (off != 0 || size != 2)
		return; /* data-port writes and odd-sized selects are ignored */
	memcpy(&key, data, 2);
	pthread_mutex_lock(&d->lock);
	d->cur = NULL;
	d->offset = 0;
	for (unsigned int i = 0; i < d->nitems; i++)
		if (d->items[i].key == key)
			d->cur = &d->items[i];
	pthread_mutex_unlock(&d->lock);
	kvmk_trace("select 0x%04x%s", key, d->cur ? "" : " (unknown)");
}

static const struct kvmkit_io_ops fw_ops = { .read = fw_read, .write = fw_write };

int kvmk_fwcfg_create_on(struct kvmkit_bus *pio, const struct kvmkit_fwcfg_config *cfg,
			 struct kvmkit_fwcfg **out)
{
	struct kvmkit_fwcfg *d;
	uint64_t max_ram = cfg->max_ram;
	int r;

	if (!max_ram)
		max_ram = cfg->ram_size <= KVMKIT_X86_MMIO_HOLE ?
				  cfg->ram_size :
				  (1ull << 32) + (cfg->ram_size - KVMKIT_X86_MMIO_HOLE);
	d = calloc(1, sizeof(*d));
	if (!d)
		return kvmk_err_resource("kvmkit_fwcfg_create", ENOMEM, NULL);
	d->pio = pio;
	pthread_mutex_init(&d->lock, NULL);
	add_item(d, KVMKIT_FWCFG_SIGNATURE, 0x554d4551, 4); /* "QEMU" */
	add_item(d, KVMKIT_FWCFG_ID, FWCFG_ID_TRADITIONAL, 4);
	add_item(d, KVMKIT_FWCFG_RAM_SIZE, cfg->ram_size, 8);
	add_item(d, KVMKIT_FWCFG_NB_CPUS, cfg->nb_cpus, 2);
	add_item(d, KVMKIT_FWCFG_MAX_CPUS, cfg->max_cpus ? cfg->max_cpus : cfg->nb_cpus, 2);
	add_item(d, KVMKIT_FWCFG_MAX_RAM, max_ram, 8);
	r = kvmkit_bus_register(pio, KVMKIT_FWCFG_PORT, KVMKIT_FWCFG_LEN, "fw_cfg", &fw_ops, d);
	if (r) {
		pthread_mutex_destroy(&d->lock);
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

int kvmkit_fwcfg_create(struct kvmkit_vm *vm, const struct kvmkit_fwcfg_config *cfg,
			struct kvmkit_fwcfg **out)
{
	struct kvmkit_fwcfg_config def;

	if (!cfg) {
		memset(&def, 0, sizeof(def));
		def.ram_size = kvmkit_vm_ram_size(vm);
		def.nb_cpus = (uint16_t)kvmkit_vm_config(vm)->vcpus;
		cfg = &def;
	}
	return kvmk_fwcfg_create_on(kvmkit_vm_pio_bus(vm), cfg, out);
}

void kvmkit_fwcfg_destroy(struct kvmkit_fwcfg *d)
{
	if (!d)
		return;
	kvmkit_bus_unregister(d->pio, KVMKIT_FWCFG_PORT);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* ---- saved state: the selection (u32 key, or ~0 for none) and offset ---- */

int kvmk_fwcfg_save(struct kvmkit_fwcfg *d, struct kvmk_blob *out)
{
	uint32_t key, off;
	int r;

	pthread_mutex_lock(&d->lock);
	key = d->cur ? d->cur->key : UINT32_MAX;
	off = d->offset;
	pthread_mutex_unlock(&d->lock);
	r = kvmk_blob_put_u32(out, key);
	return r ? r : kvmk_blob_put_u32(out, off);
}

int kvmk_fwcfg_restore(struct kvmkit_fwcfg *d, const uint8_t *p, size_t len)
{
	struct kvmk_reader rd = { p, len, "fw_cfg restore" };
	const struct fwcfg_item *cur = NULL;
	uint32_t key, off;
	int r = kvmk_reader_u32(&rd, &key, "fw_cfg key");

	if (!r)
		r = kvmk_reader_u32(&rd, &off, "fw_cfg offset");
	if (!r && rd.left)
		r = kvmk_err_format(rd.op, "%zu bytes past the fw_cfg state", rd.left);
	for (unsigned int i = 0; !r && key != UINT32_MAX && i < d->nitems; i++)
		if (d->items[i].key == key)
			cur = &d->items[i];
	if (!r && key != UINT32_MAX && !cur)
		r = kvmk_err_format(rd.op, "fw_cfg key 0x%x is not an item here", key);
	if (!r && cur && off > cur->len)
		r = kvmk_err_format(rd.op, "fw_cfg offset %u past item 0x%x (%u bytes)", off, key,
				    cur->len);
	if (r)
		return r;
	pthread_mutex_lock(&d->lock);
	d->cur = cur;
	d->offset = cur ? off : 0;
	pthread_mutex_unlock(&d->lock);
	return 0;
}
