// SPDX-License-Identifier: MIT
/*
 * A minimal virtio-mmio (version 2) driver for virtio-rng: the smallest
 * device that shows the whole path (features, one queue, buffers the
 * device fills, its used-buffer interrupt). One request in flight; after
 * each, the driver waits for the interrupt the IRQ handler counts, then
 * reads and acknowledges InterruptStatus, as Linux's driver does.
 */
#include "a64.h"

#include "../../include/virtio_mmio_regs.h"

#define QN 4
#define REQ_BYTES 16
#define SPIN (1u << 26) /* bounded waits: the host's own time-out is 30 s */

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* The queue's rings and buffers in A64_VIRTIO_AREA. */
#define DESC A64_VIRTIO_AREA
#define AVAIL (A64_VIRTIO_AREA + 0x100)
#define USED (A64_VIRTIO_AREA + 0x200)
#define BUF(i) (A64_VIRTIO_AREA + 0x1000 + (i)*64)

static void put64(uint64_t base, uint32_t reg, uint64_t v)
{
	mmio_write32(base + reg, (uint32_t)v);
	mmio_write32(base + reg + 4, (uint32_t)(v >> 32));
}

static void zero(uint64_t gpa, unsigned int len)
{
	volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)gpa;

	for (unsigned int i = 0; i < len; i++)
		p[i] = 0;
}

static uint64_t setup(uint64_t base)
{
	if (mmio_read32(base + R_MAGIC) != 0x74726976 || mmio_read32(base + R_VERSION) != 2 ||
	    mmio_read32(base + R_DEVICE_ID) != 4)
		return A64_VIRTIO_ERR_ID;
	mmio_write32(base + R_STATUS, 0);
	mmio_write32(base + R_STATUS, S_ACK);
	mmio_write32(base + R_STATUS, S_ACK | S_DRIVER);
	mmio_write32(base + R_DEV_FEATURES_SEL, 1);
	if (!(mmio_read32(base + R_DEV_FEATURES) & 1)) /* VIRTIO_F_VERSION_1 */
		return A64_VIRTIO_ERR_FEATURES;
	mmio_write32(base + R_DRV_FEATURES_SEL, 1);
	mmio_write32(base + R_DRV_FEATURES, 1);
	mmio_write32(base + R_DRV_FEATURES_SEL, 0);
	mmio_write32(base + R_DRV_FEATURES, 0);
	mmio_write32(base + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(mmio_read32(base + R_STATUS) & S_FEATURES_OK))
		return A64_VIRTIO_ERR_FEATURES;
	mmio_write32(base + R_QUEUE_SEL, 0);
	if (mmio_read32(base + R_QUEUE_NUM_MAX) < QN)
		return A64_VIRTIO_ERR_QUEUE;
	mmio_write32(base + R_QUEUE_NUM, QN);
	zero(A64_VIRTIO_AREA, 0x1000);
	put64(base, R_DESC, DESC);
	put64(base, R_DRIVER, AVAIL);
	put64(base, R_DEVICE, USED);
	mmio_write32(base + R_QUEUE_READY, 1);
	mmio_write32(base + R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return 0;
}

uint64_t a64_virtio_rng(unsigned int cpu, uint64_t base, unsigned int n, uint32_t intid)
{
	volatile struct desc *d = (volatile struct desc *)(uintptr_t)DESC;
	volatile uint16_t *avail = (volatile uint16_t *)(uintptr_t)AVAIL;
	volatile uint16_t *used_idx = (volatile uint16_t *)(uintptr_t)(USED + 2);
	volatile uint32_t *used_ring = (volatile uint32_t *)(uintptr_t)(USED + 4);
	volatile uint32_t *count = (volatile uint32_t *)(uintptr_t)A64_COUNT(cpu, intid);
	uint32_t first = *count;
	uint64_t r = setup(base);

	for (unsigned int i = 0; !r && i < n; i++) {
		const uint8_t *b = (const uint8_t *)(uintptr_t)BUF(i % QN);
		unsigned int spin = 0, nonzero = 0;

		zero(BUF(i % QN), REQ_BYTES);
		d[i % QN].addr = BUF(i % QN);
		d[i % QN].len = REQ_BYTES;
		d[i % QN].flags = 2; /* device-writable */
		d[i % QN].next = 0;
		avail[2 + i % QN] = (uint16_t)(i % QN);
		a64_dsb();
		avail[1] = (uint16_t)(i + 1);
		a64_dsb();
		mmio_write32(base + R_QUEUE_NOTIFY, 0);
		while (*used_idx != (uint16_t)(i + 1) && ++spin < SPIN)
			__asm__ volatile("yield");
		while (*count != first + i + 1 && ++spin < SPIN)
			__asm__ volatile("yield");
		if (spin >= SPIN)
			return A64_VIRTIO_ERR_TIMEOUT;
		mmio_write32(base + R_ACK, mmio_read32(base + R_ISR));
		a64_dsb();
		if (used_ring[2 * (i % QN) + 1] != REQ_BYTES)
			return A64_VIRTIO_ERR_LEN;
		for (unsigned int k = 0; k < REQ_BYTES; k++)
			nonzero += b[k] != 0;
		if (!nonzero)
			return A64_VIRTIO_ERR_DATA;
	}
	mmio_write32(base + R_STATUS, 0); /* reset: the device lets go of the rings */
	return r ? r : n;
}
