// SPDX-License-Identifier: MIT
/* The report device: how guest test programs hand values and an exit status
 * to the host. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "report"
#include "core/internal.h"
#include "devices/devices_internal.h"
#include <kvmkit/devices.h>
#include <kvmkit/vm.h>

struct kvmkit_report {
	struct kvmkit_bus *pio;
	struct kvmk_report_hooks hooks;
	uint16_t port;
	pthread_mutex_t lock;
	size_t count;
	uint64_t values[KVMKIT_REPORT_MAX];
};

static void rep_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	struct kvmkit_report *d = opaque;
	uint64_t v = 0;

	if (off == 8) {
		pthread_mutex_lock(&d->lock);
		v = d->count;
		pthread_mutex_unlock(&d->lock);
	}
	memcpy(data, &v, size);
}

static void rep_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmkit_report *d = opaque;
	uint64_t v = 0;

	memcpy(&v, data, size);
	if (off == 0 && (size == 4 || size == 8)) {
		pthread_mutex_lock(&d->lock);
		if (d->count < KVMKIT_REPORT_MAX)
			d->values[d->count] = v;
		d->count++;
		pthread_mutex_unlock(&d->lock);
		kvmk_debug("guest reported 0x%llx", (unsigned long long)v);
	} else if (off == 4 && size == 4 && d->hooks.power_off) {
		d->hooks.power_off(d->hooks.ctx, (uint32_t)v);
	}
	/* Other offsets and sizes are ignored: the guest cannot hurt us here. */
}

static const struct kvmkit_io_ops rep_ops = { .read = rep_read, .write = rep_write };

int kvmk_report_create_on(struct kvmkit_bus *pio, uint16_t port,
			  const struct kvmk_report_hooks *hooks, struct kvmkit_report **out)
{
	/* 32 KiB of values, mostly never reported: pages made as used. */
	struct kvmkit_report *d = kvmk_zalloc(sizeof(*d));
	int r;

	if (!d)
		return kvmk_err_resource("kvmkit_report_create", ENOMEM, NULL);
	d->pio = pio;
	if (hooks)
		d->hooks = *hooks;
	d->port = port;
	pthread_mutex_init(&d->lock, NULL);
	r = kvmkit_bus_register(pio, port, KVMKIT_REPORT_LEN, "report", &rep_ops, d);
	if (r) {
		pthread_mutex_destroy(&d->lock);
		kvmk_zfree(d, sizeof(*d));
		return r;
	}
	*out = d;
	return 0;
}

static void vm_power_off(void *ctx, uint32_t status)
{
	char detail[48];

	snprintf(detail, sizeof(detail), "guest power-off, status %u", status);
	kvmkit_vm_request_stop(ctx, KVMKIT_STOP_GUEST_EXIT, (int)status, detail);
}

int kvmkit_report_create(struct kvmkit_vm *vm, uint16_t port, struct kvmkit_report **out)
{
	struct kvmk_report_hooks hooks = { vm, vm_power_off };

	return kvmk_report_create_on(kvmkit_vm_pio_bus(vm), port, &hooks, out);
}

void kvmkit_report_destroy(struct kvmkit_report *d)
{
	if (!d)
		return;
	kvmkit_bus_unregister(d->pio, d->port);
	pthread_mutex_destroy(&d->lock);
	kvmk_zfree(d, sizeof(*d));
}

size_t kvmkit_report_values(struct kvmkit_report *d, uint64_t *out, size_t max)
{
	size_t n;

	pthread_mutex_lock(&d->lock);
	n = d->count < KVMKIT_REPORT_MAX ? d->count : KVMKIT_REPORT_MAX;
	memcpy(out, d->values, (n < max ? n : max) * sizeof(*out));
	n = d->count;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* ---- saved state: the count and the values kept ---------------------------- */

int kvmk_report_save(struct kvmkit_report *d, struct kvmk_blob *out)
{
	size_t kept;
	int r;

	pthread_mutex_lock(&d->lock);
	kept = d->count < KVMKIT_REPORT_MAX ? d->count : KVMKIT_REPORT_MAX;
	r = kvmk_blob_put_u32(out, (uint32_t)d->count);
	for (size_t i = 0; !r && i < kept; i++) {
		r = kvmk_blob_put_u32(out, (uint32_t)d->values[i]);
		if (!r)
			r = kvmk_blob_put_u32(out, (uint32_t)(d->values[i] >> 32));
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

int kvmk_report_restore(struct kvmkit_report *d, const uint8_t *p, size_t len)
{
	struct kvmk_reader rd = { p, len, "report restore" };
	uint64_t values[64];
	uint32_t count, kept;
	int r = kvmk_reader_u32(&rd, &count, "report count");

	if (r)
		return r;
	kept = count < KVMKIT_REPORT_MAX ? count : KVMKIT_REPORT_MAX;
	if (rd.left != (size_t)kept * 8)
		return kvmk_err_format(rd.op, "report values: %zu bytes for %u values", rd.left, kept);
	pthread_mutex_lock(&d->lock);
	d->count = count;
	for (uint32_t i = 0; i < kept; i += 64) {
		uint32_t n = kept - i < 64 ? kept - i : 64;

		for (uint32_t j = 0; j < n; j++) {
			uint32_t lo, hi;

			kvmk_reader_u32(&rd, &lo, "report value");
			kvmk_reader_u32(&rd, &hi, "report value");
			values[j] = (uint64_t)hi << 32 | lo;
		}
		memcpy(&d->values[i], values, n * sizeof(values[0]));
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}
