/* SPDX-License-Identifier: MIT */
/*
 * virtio 1.x devices on the virtio-mmio transport, version 2 (modern only:
 * a driver that does not accept VIRTIO_F_VERSION_1 is refused at
 * FEATURES_OK). Split virtqueues with indirect descriptors and
 * VIRTIO_F_EVENT_IDX.
 *
 * Each device has a 0x200-byte register window in the MMIO bus at
 * KVMKIT_VIRTIO_MMIO_BASE + slot * KVMKIT_VIRTIO_MMIO_STRIDE and one
 * interrupt pin (by default from kvmkit_gsi_alloc_pin(): an IOAPIC pin on
 * x86, an SPI on arm64). Queue
 * notifications reach the device through one ioeventfd per queue (KVM
 * signals an eventfd on a write of the queue's index to QueueNotify; the
 * vCPU does not leave KVM), and a thread owned by the device serves them,
 * so a vCPU never waits for device work; where KVM refuses the ioeventfd
 * the MMIO handler signals the same eventfd. Interrupts go out through an
 * irqfd on the device's GSI: edge (the default: a pulse per notification)
 * or level (irqfd with resample: the line stays asserted until the guest's
 * EOI and is asserted again while InterruptStatus is not 0). Firmware
 * tables must declare the trigger kvmkit_virtio_get_info() reports (ACPI:
 * LNRO0005 with the window and the interrupt, Edge or Level, ActiveHigh).
 *
 * The guest is hostile: a malformed ring sets DEVICE_NEEDS_RESET (status
 * 0x40) with a configuration-change interrupt and the device does nothing
 * more until the driver resets it; it is logged, at most once a second.
 * A reset (status 0) returns once requests in flight have finished (their
 * data may still land in guest memory, never after the reset).
 *
 * Needs the VM's irqchip (irq.h). Threads and lifetimes: as devices.h
 * (create before the VM runs; destroy from any thread but the device's own,
 * before the VM). The device's thread processes queues only while the VM
 * is RUNNING, so a paused VM's memory and device state stay still.
 */
#ifndef KVMKIT_VIRTIO_H
#define KVMKIT_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvmkit/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x86: below the 4 GiB PCI hole's top; arm64: the device window of
 * kvmkit's map (kvmkit/arm64.h), each device's interrupt an SPI. */
#if defined(__aarch64__)
#define KVMKIT_VIRTIO_MMIO_BASE 0x0a000000ULL
#else
#define KVMKIT_VIRTIO_MMIO_BASE 0xd0000000ULL
#endif
#define KVMKIT_VIRTIO_MMIO_STRIDE 0x1000ULL
#define KVMKIT_VIRTIO_MMIO_SIZE 0x200ULL
#define KVMKIT_VIRTIO_MMIO_SLOTS 32

/* Device ids (virtio 1.x 5). */
#define KVMKIT_VIRTIO_ID_BLOCK 2
#define KVMKIT_VIRTIO_ID_CONSOLE 3
#define KVMKIT_VIRTIO_ID_RNG 4

enum kvmkit_virtio_trigger {
	KVMKIT_VIRTIO_IRQ_EDGE = 0, /* irqfd: one pulse per interrupt */
	KVMKIT_VIRTIO_IRQ_LEVEL, /* irqfd + resamplefd */
};

struct kvmkit_virtio_mmio_config {
	unsigned int slot; /* < KVMKIT_VIRTIO_MMIO_SLOTS: the window's place */
	int gsi; /* -1 (default): kvmkit_gsi_alloc_pin(), freed on destroy */
	enum kvmkit_virtio_trigger trigger; /* default EDGE */
	unsigned int queue_size; /* QueueNumMax, a power of two <= 32768; 0: 256 */
	bool no_ioeventfd; /* serve QueueNotify in the MMIO handler only */
};

void kvmkit_virtio_mmio_config_init(struct kvmkit_virtio_mmio_config *cfg);

struct kvmkit_virtio;

/* virtio-rng: one queue, filled from getrandom(). */
int kvmkit_virtio_rng_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
			     struct kvmkit_virtio **out);

/* virtio-blk over a raw image file (its size rounded down to 512-byte
 * sectors). Reads and writes go through io_uring where the host has it
 * (liburing), else pread/pwrite on the device's thread, as they do for an
 * image on tmpfs, ramfs or hugetlbfs (io_uring would only hand them to
 * worker threads there: those file systems cannot do I/O without
 * blocking). Offers FLUSH
 * (fdatasync), DISCARD (punching holes) and WRITE_ZEROES (zeroing ranges)
 * and GET_ID. read_only opens the file O_RDONLY and offers
 * VIRTIO_BLK_F_RO: writes, discards and zeroing then fail with IOERR. */
struct kvmkit_virtio_blk_config {
	const char *path;
	bool read_only;
	const char *serial; /* GET_ID, up to 20 bytes; NULL: none */
	bool sync_io; /* never io_uring */
};

int kvmkit_virtio_blk_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
			     const struct kvmkit_virtio_blk_config *blk,
			     struct kvmkit_virtio **out);

/* virtio-console: one port, no feature bits. What the guest sends goes to
 * @out_fd through a bounded buffer (16 KiB) and a writer thread of the
 * device's own: while the buffer is full the guest's transmit buffers wait,
 * and no vCPU ever waits for out_fd (borrowed, never closed, its file
 * description never changed). -1: output only kept in memory. At destroy
 * the writer has up to 1 s to drain; a write() stuck on @out_fd is then
 * interrupted with the VM's kick signal (its pause_signal). */
int kvmkit_virtio_console_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
				 int out_fd, struct kvmkit_virtio **out);
/* Queues input for the guest's receive buffers (at most 4 KiB waiting);
 * returns the bytes taken. Any thread. */
size_t kvmkit_virtio_console_feed(struct kvmkit_virtio *dev, const void *buf, size_t len);
/* Copies what the guest has sent so far (the first 64 KiB). Any thread. */
size_t kvmkit_virtio_console_output(struct kvmkit_virtio *dev, char *buf, size_t len);

/* Unregisters the window, stops the thread (after requests in flight
 * finished), releases the ioeventfds, the irqfd and the pin. NULL: no-op. */
void kvmkit_virtio_destroy(struct kvmkit_virtio *dev);

/* What a machine needs to describe the device to the guest. */
struct kvmkit_virtio_info {
	const char *name; /* "virtio-rng", "virtio-blk", "virtio-console" (static) */
	uint32_t device_id;
	uint64_t base, size; /* the register window */
	uint32_t gsi; /* x86: the IOAPIC pin; arm64: the SPI (INTID gsi + 32) */
	enum kvmkit_virtio_trigger trigger;
	bool ioeventfd; /* notifications through ioeventfds (else MMIO exits) */
	bool uring; /* virtio-blk: io_uring in use */
};

void kvmkit_virtio_get_info(const struct kvmkit_virtio *dev, struct kvmkit_virtio_info *out);

/* Linux's command-line description of the device, for kernels without
 * ACPI or device tree discovery (drivers/virtio/virtio_mmio.c):
 * "virtio_mmio.device=0x200@0xd0000000:5". Returns what snprintf() does
 * (the string is cut to @len - 1 bytes if longer). Linux takes the
 * interrupt from it as edge-triggered. */
int kvmkit_virtio_cmdline(const struct kvmkit_virtio_info *info, char *buf, size_t len);

struct kvmkit_virtio_stats {
	uint64_t notifies; /* queue notifications served (eventfd reads) */
	uint64_t mmio_notifies; /* of which came through the MMIO handler */
	uint64_t interrupts; /* irqfd signals, resample re-assertions included */
	uint64_t resamples; /* level: EOIs seen on the resamplefd */
	uint64_t chains; /* descriptor chains completed */
	uint64_t malformed; /* times a ring was found malformed */
	uint64_t resets; /* driver resets */
	uint64_t bad_accesses; /* register accesses of a wrong size or offset */
	uint32_t status; /* the device status register now */
};

void kvmkit_virtio_get_stats(struct kvmkit_virtio *dev, struct kvmkit_virtio_stats *out);

#ifdef __cplusplus
}
#endif
#endif
