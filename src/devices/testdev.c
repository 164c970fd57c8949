// SPDX-License-Identifier: MIT
/*
 * The test device: kvm-unit-tests' pc-testdev conventions (scratch ports,
 * page flush, IRQ-line ports, scratch MMIO). Register semantics are in
 * kvmkit/devices.h. What the device does outside its registers (IRQ lines,
 * flushing a page from KVM's MMU) goes through hooks, so unit tests can
 * stub them (devices_internal.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "testdev"
#include "core/internal.h"
#include "devices/devices_internal.h"
#include <kvmkit/irq.h>

/* One PIO range covers 0xe0..0xeb: scratch 0, flush, scratch 1. */
#define PORTS_BASE KVMKIT_TESTDEV_SCRATCH0
#define PORTS_LEN 12

/* A guest can ask for flushes as fast as it exits: after the first failed
 * flush, at most one line per this interval, with the count since. */
#define FLUSH_WARN_INTERVAL_NS 1000000000ull

struct kvmkit_testdev {
	struct kvmkit_bus *pio, *mmio;
	struct kvmk_testdev_hooks hooks;
	/* Line n's handle (kvmkit_testdev_connect_irq), not owned. */
	struct kvmkit_line *lines[KVMKIT_TESTDEV_IRQ_LINES];
	pthread_mutex_t lock;
	uint32_t scratch[2];
	/* Failed flushes (under lock): in all, and since the last line. */
	uint64_t flush_failed, flush_unlogged;
	uint64_t flush_logged_ns;
	bool ports_reg, irq_reg, mmio_reg;
	uint8_t mem[KVMKIT_TESTDEV_MMIO_LEN];
};

/* Bytes [k, k + size) of a 32-bit little-endian register; bytes past 3 are
 * dropped. */
static void scratch_read(uint32_t reg, unsigned int k, uint8_t *data, unsigned int size)
{
	for (unsigned int i = 0; i < size; i++)
		data[i] = k + i < 4 ? (uint8_t)(reg >> (8 * (k + i))) : 0;
}

static uint32_t scratch_write(uint32_t reg, unsigned int k, const uint8_t *data, unsigned int size)
{
	for (unsigned int i = 0; i < size && k + i < 4; i++) {
		unsigned int sh = 8 * (k + i);

		reg = (reg & ~(0xffu << sh)) | ((uint32_t)data[i] << sh);
	}
	return reg;
}

/* Values outside guest RAM are the guest's mistake and are ignored; any
 * other failure is the host's, worth a (throttled) warning. */
static void flush(struct kvmkit_testdev *d, uint64_t gpa)
{
	int r = d->hooks.flush_page(d->hooks.ctx, gpa);
	uint64_t now;

	if (r == 0 || r == -EFAULT) {
		kvmk_trace("flush 0x%llx: %s", (unsigned long long)gpa, r ? "not RAM" : "done");
		return;
	}
	pthread_mutex_lock(&d->lock);
	now = kvmk_now_ns(); /* under the lock: never before the last line's */
	if (d->flush_failed++ == 0) {
		kvmk_warn("page flush of 0x%llx failed: %s (later failures: one line a second)",
			  (unsigned long long)gpa, strerror(-r));
		d->flush_logged_ns = now;
	} else {
		d->flush_unlogged++;
		if (now - d->flush_logged_ns >= FLUSH_WARN_INTERVAL_NS) {
			kvmk_warn("%llu more page flushes failed (%llu in all), last 0x%llx: %s",
				  (unsigned long long)d->flush_unlogged,
				  (unsigned long long)d->flush_failed, (unsigned long long)gpa,
				  strerror(-r));
			d->flush_unlogged = 0;
			d->flush_logged_ns = now;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

static void ports_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	struct kvmkit_testdev *d = opaque;

	memset(data, 0, size);
	if (off >= 4 && off < 8)
		return; /* the flush port reads 0 */
	pthread_mutex_lock(&d->lock);
	scratch_read(d->scratch[off >= 8], (unsigned int)(off & 3), data, size);
	pthread_mutex_unlock(&d->lock);
}

static void ports_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmkit_testdev *d = opaque;

	if (off >= 4 && off < 8) {
		uint32_t gpa = 0;

		if (off != 4 || size != 4)
			return;
		memcpy(&gpa, data, 4);
		if (d->hooks.flush_page)
			flush(d, gpa & ~0xfffull);
		return;
	}
	pthread_mutex_lock(&d->lock);
	d->scratch[off >= 8] =
		scratch_write(d->scratch[off >= 8], (unsigned int)(off & 3), data, size);
	pthread_mutex_unlock(&d->lock);
}

static void irq_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	memset(data, 0, size);
}

static void irq_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmkit_testdev *d = opaque;

	struct kvmkit_line *l;
	bool level;

	if (size != 1 || off >= KVMKIT_TESTDEV_IRQ_LINES)
		return;
	level = *(const uint8_t *)data != 0;
	l = __atomic_load_n(&d->lines[off], __ATOMIC_ACQUIRE);
	if (l) {
		struct kvmkit_error saved;

		/* One port per line: writes to it come from one vCPU at a time
		 * only if the guest says so, hence the device lock. */
		kvmk_err_save(&saved);
		pthread_mutex_lock(&d->lock);
		kvmkit_line_force(l, level, NULL);
		pthread_mutex_unlock(&d->lock);
		kvmk_err_restore(&saved);
	} else if (d->hooks.irq_line) {
		d->hooks.irq_line(d->hooks.ctx, (uint32_t)off, level);
	}
}

int kvmkit_testdev_connect_irq(struct kvmkit_testdev *d, unsigned int n, struct kvmkit_line *line)
{
	if (n >= KVMKIT_TESTDEV_IRQ_LINES)
		return kvmk_err_param("kvmkit_testdev_connect_irq", "n", "beyond the IRQ-line ports",
				      "%u (max %u)", n, KVMKIT_TESTDEV_IRQ_LINES - 1);
	__atomic_store_n(&d->lines[n], line, __ATOMIC_RELEASE);
	return 0;
}

static void mem_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	struct kvmkit_testdev *d = opaque;

	/* The bus only hands over accesses that fit inside the range. */
	pthread_mutex_lock(&d->lock);
	memcpy(data, d->mem + off, size);
	pthread_mutex_unlock(&d->lock);
}

static void mem_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmkit_testdev *d = opaque;

	pthread_mutex_lock(&d->lock);
	memcpy(d->mem + off, data, size);
	pthread_mutex_unlock(&d->lock);
}

static const struct kvmkit_io_ops ports_ops = { .read = ports_read, .write = ports_write };
static const struct kvmkit_io_ops irq_ops = { .read = irq_read, .write = irq_write };
static const struct kvmkit_io_ops mem_ops = { .read = mem_read, .write = mem_write };

void kvmkit_testdev_destroy(struct kvmkit_testdev *d)
{
	if (!d)
		return;
	if (d->flush_unlogged)
		kvmk_warn("%llu more page flushes failed (%llu in all)",
			  (unsigned long long)d->flush_unlogged,
			  (unsigned long long)d->flush_failed);
	if (d->ports_reg)
		kvmkit_bus_unregister(d->pio, PORTS_BASE);
	if (d->irq_reg)
		kvmkit_bus_unregister(d->pio, KVMKIT_TESTDEV_IRQ_PORT);
	if (d->mmio_reg)
		kvmkit_bus_unregister(d->mmio, KVMKIT_TESTDEV_MMIO);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int kvmk_testdev_create_on(struct kvmkit_bus *pio, struct kvmkit_bus *mmio,
			   const struct kvmk_testdev_hooks *hooks, struct kvmkit_testdev **out)
{
	struct kvmkit_testdev *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return kvmk_err_resource("kvmkit_testdev_create", ENOMEM, NULL);
	d->pio = pio;
	d->mmio = mmio;
	if (hooks)
		d->hooks = *hooks;
	pthread_mutex_init(&d->lock, NULL);
	r = kvmkit_bus_register(pio, PORTS_BASE, PORTS_LEN, "testdev", &ports_ops, d);
	if (r)
		goto fail;
	d->ports_reg = true;
	r = kvmkit_bus_register(pio, KVMKIT_TESTDEV_IRQ_PORT, KVMKIT_TESTDEV_IRQ_LINES,
				"testdev-irq", &irq_ops, d);
	if (r)
		goto fail;
	d->irq_reg = true;
	r = kvmkit_bus_register(mmio, KVMKIT_TESTDEV_MMIO, KVMKIT_TESTDEV_MMIO_LEN, "testdev-mem",
				&mem_ops, d);
	if (r)
		goto fail;
	d->mmio_reg = true;
	*out = d;
	return 0;
fail:
	kvmkit_testdev_destroy(d);
	return r;
}

/* ---- the real hooks ------------------------------------------------------ */

/* The memory layer does the work (kvmkit_vm_flush_page). */
static int vm_flush_page(void *ctx, uint64_t gpa)
{
	struct kvmkit_error saved;
	int r;

	kvmk_err_save(&saved);
	r = kvmkit_vm_flush_page(ctx, gpa);
	kvmk_err_restore(&saved);
	return r;
}

int kvmkit_testdev_create(struct kvmkit_vm *vm, struct kvmkit_testdev **out)
{
	struct kvmk_testdev_hooks hooks = { .ctx = vm, .flush_page = vm_flush_page };

	return kvmk_testdev_create_on(kvmkit_vm_pio_bus(vm), kvmkit_vm_mmio_bus(vm), &hooks, out);
}

/* ---- saved state: the scratch registers and the MMIO scratch memory ------ */

int kvmk_testdev_save(struct kvmkit_testdev *d, struct kvmk_blob *out)
{
	int r;

	pthread_mutex_lock(&d->lock);
	r = kvmk_blob_put_u32(out, d->scratch[0]);
	if (!r)
		r = kvmk_blob_put_u32(out, d->scratch[1]);
	if (!r)
		r = kvmk_blob_put(out, d->mem, sizeof(d->mem));
	pthread_mutex_unlock(&d->lock);
	return r;
}

int kvmk_testdev_restore(struct kvmkit_testdev *d, const uint8_t *p, size_t len)
{
	struct kvmk_reader rd = { p, len, "testdev restore" };
	uint32_t s0, s1;
	int r = kvmk_reader_u32(&rd, &s0, "testdev scratch");

	if (!r)
		r = kvmk_reader_u32(&rd, &s1, "testdev scratch");
	if (!r && rd.left != sizeof(d->mem))
		r = kvmk_err_format(rd.op, "testdev memory: %zu bytes, not %zu", rd.left,
				    sizeof(d->mem));
	if (r)
		return r;
	pthread_mutex_lock(&d->lock);
	d->scratch[0] = s0;
	d->scratch[1] = s1;
	memcpy(d->mem, rd.p, sizeof(d->mem));
	pthread_mutex_unlock(&d->lock);
	return 0;
}
