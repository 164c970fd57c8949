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
#include <sys/mman.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "testdev"
#include "core/internal.h"
#include "devices/devices_internal.h"
#include "kvm/kvm_internal.h"
#include <kvmkit/irq.h>

/* One PIO range covers 0xe0..0xeb: scratch 0, flush, scratch 1. */
#define PORTS_BASE KVMKIT_TESTDEV_SCRATCH0
#define PORTS_LEN 12

struct kvmkit_testdev {
	struct kvmkit_bus *pio, *mmio;
	struct kvmk_testdev_hooks hooks;
	pthread_mutex_t lock;
	uint32_t scratch[2];
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
			d->hooks.flush_page(d->hooks.ctx, gpa & ~0xfffull);
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

	if (size != 1 || off >= KVMKIT_TESTDEV_IRQ_LINES || !d->hooks.irq_line)
		return;
	d->hooks.irq_line(d->hooks.ctx, (uint32_t)off, *(const uint8_t *)data != 0);
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

static void vm_irq_line(void *ctx, uint32_t line, bool level)
{
	struct kvmkit_irqchip *chip = kvmkit_vm_irqchip(ctx);
	struct kvmkit_error saved;

	if (!chip)
		return;
	kvmk_err_save(&saved);
	kvmkit_irq_line(chip, line, level, NULL);
	kvmk_err_restore(&saved);
}

/*
 * Replaces the host page behind @gpa by a copy of itself: the old mapping
 * goes away at once (mremap over it), which fires the MMU notifier, so KVM
 * drops its translation and the guest's next access faults in the new page.
 * The page is never absent: other vCPUs see either the old or the new page
 * (a write another vCPU makes to it between the copy and the swap is lost;
 * guests flush pages they are not writing concurrently). Only for RAM that
 * kvmkit allocated (private anonymous memory); memory a caller supplied may
 * be shared and is left alone.
 */
static void vm_flush_page(void *ctx, uint64_t gpa)
{
	struct kvmkit_vm *vm = ctx;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	const struct kvmk_region *e = NULL;
	uint8_t *old, *copy;

	pthread_rwlock_rdlock(&vm->mem_lock);
	for (int i = 0; i < KVMK_MAX_REGIONS; i++) {
		const struct kvmk_region *c = &vm->regions[i];

		if (c->used && gpa >= c->gpa && gpa - c->gpa < c->size) {
			e = c;
			break;
		}
	}
	if (!e || !e->map_base || (e->flags & KVMKIT_MEM_READONLY)) {
		pthread_rwlock_unlock(&vm->mem_lock);
		kvmk_debug("flush 0x%llx: not kvmkit-owned guest RAM, ignored",
			   (unsigned long long)gpa);
		return;
	}
	old = e->hva + ((gpa - e->gpa) & ~(page - 1));
	copy = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (copy == MAP_FAILED) {
		pthread_rwlock_unlock(&vm->mem_lock);
		kvmk_warn("flush 0x%llx: mmap: %s", (unsigned long long)gpa, strerror(errno));
		return;
	}
	memcpy(copy, old, page);
	if (mremap(copy, page, page, MREMAP_MAYMOVE | MREMAP_FIXED, old) == MAP_FAILED) {
		kvmk_warn("flush 0x%llx: mremap: %s", (unsigned long long)gpa, strerror(errno));
		munmap(copy, page);
	}
	pthread_rwlock_unlock(&vm->mem_lock);
	kvmk_trace("flushed page 0x%llx", (unsigned long long)gpa);
}

int kvmkit_testdev_create(struct kvmkit_vm *vm, struct kvmkit_testdev **out)
{
	struct kvmk_testdev_hooks hooks = { vm, vm_irq_line, vm_flush_page };

	return kvmk_testdev_create_on(kvmkit_vm_pio_bus(vm), kvmkit_vm_mmio_bus(vm), &hooks, out);
}
