// SPDX-License-Identifier: MIT
/* The report device: how guest test programs hand values and an exit status
 * to the host. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "report"
#include "core/internal.h"
#include <kvmkit/devices.h>

struct kvmkit_report {
	struct kvmkit_vm *vm;
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
	} else if (off == 4 && size == 4) {
		char detail[48];

		snprintf(detail, sizeof(detail), "guest power-off, status %u", (uint32_t)v);
		kvmkit_vm_request_stop(d->vm, KVMKIT_STOP_GUEST_EXIT, (int)(uint32_t)v, detail);
	}
	/* Other offsets and sizes are ignored: the guest cannot hurt us here. */
}

static const struct kvmkit_io_ops rep_ops = { .read = rep_read, .write = rep_write };

int kvmkit_report_create(struct kvmkit_vm *vm, uint16_t port, struct kvmkit_report **out)
{
	struct kvmkit_report *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return kvmk_err_resource("kvmkit_report_create", ENOMEM, NULL);
	d->vm = vm;
	d->port = port;
	pthread_mutex_init(&d->lock, NULL);
	r = kvmkit_bus_register(kvmkit_vm_pio_bus(vm), port, KVMKIT_REPORT_LEN, "report", &rep_ops,
				d);
	if (r) {
		pthread_mutex_destroy(&d->lock);
		free(d);
		return r;
	}
	*out = d;
	return 0;
}

void kvmkit_report_destroy(struct kvmkit_report *d)
{
	if (!d)
		return;
	kvmkit_bus_unregister(kvmkit_vm_pio_bus(d->vm), d->port);
	pthread_mutex_destroy(&d->lock);
	free(d);
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
