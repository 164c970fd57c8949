/* SPDX-License-Identifier: MIT */
/*
 * virtio devices that connect a guest to the host's network stack (virtio.h
 * has the transport, its config and the rng, blk and console devices):
 *
 * - virtio-net over a tap interface, packets moved by the device's thread
 *   (the tap opened with a 12-byte vnet header, offloads set from what the
 *   driver negotiated), or by the kernel's vhost-net (vhost = true).
 * - virtio-vsock through the kernel's vhost-vsock.
 *
 * With vhost the kernel reads the guest's rings and signals the device's
 * irqfd itself. InterruptStatus then reads with the used-buffer bit set for
 * as long as vhost owns the queues (the kernel cannot set the register,
 * and a driver that found it clear would ignore its queues); a driver's
 * interrupt that finds no used buffer is harmless. The kernel checks the
 * rings it serves; what it reports malformed (its vring error eventfd)
 * sets DEVICE_NEEDS_RESET as kvmkit's own checks do. The kernel writes
 * guest memory behind kvmkit's back, and a tap's traffic is outside any
 * saved state: a machine with virtio-net or virtio-vsock refuses to be
 * saved (or migrated).
 *
 * Lifetimes and threads: as virtio.h.
 */
#ifndef KVMKIT_VIRTIO_IO_H
#define KVMKIT_VIRTIO_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvmkit/virtio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVMKIT_VIRTIO_ID_NET 1
#define KVMKIT_VIRTIO_ID_VSOCK 19

/* virtio-net over the tap interface @tap (created if missing, as the
 * kernel does for TUNSETIFF; root or CAP_NET_ADMIN for that). Offers
 * VIRTIO_NET_F_MAC (the config's mac; all zero: a locally administered
 * address derived from the tap's name), STATUS (link up), CSUM,
 * GUEST_CSUM, HOST/GUEST_TSO4/TSO6/ECN and MRG_RXBUF. */
struct kvmkit_virtio_net_config {
	const char *tap; /* interface name, below IFNAMSIZ */
	uint8_t mac[6];
	bool vhost; /* packets moved by /dev/vhost-net */
	const char *vhost_path; /* NULL: /dev/vhost-net */
};

int kvmkit_virtio_net_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
			     const struct kvmkit_virtio_net_config *net,
			     struct kvmkit_virtio **out);

struct kvmkit_virtio_net_stats {
	uint64_t tx_packets, tx_bytes; /* written to the tap */
	uint64_t tx_dropped; /* refused headers (a length or offload lie), tap errors */
	uint64_t rx_packets, rx_bytes; /* delivered to the guest */
	uint64_t rx_dropped; /* did not fit the guest's buffers, or offloads it refused */
	uint64_t rx_stalls; /* times the tap was left unread for want of buffers */
	uint64_t tap_reads; /* read() calls on the tap */
	uint64_t tap_wakeups; /* times the thread woke for the tap */
	uint32_t offloads; /* TUN_F_* set on the tap now */
	bool vhost_running;
};

/* -EINVAL if @dev is not a virtio-net device. */
int kvmkit_virtio_net_stats(struct kvmkit_virtio *dev, struct kvmkit_virtio_net_stats *out);

/* virtio-vsock with the guest's context id @cid (3 .. 0xfffffffe), through
 * /dev/vhost-vsock: rx and tx queues belong to the kernel, the event queue
 * stays with kvmkit (it has no event to send). */
struct kvmkit_virtio_vsock_config {
	uint64_t cid;
	const char *vhost_path; /* NULL: /dev/vhost-vsock */
};

int kvmkit_virtio_vsock_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
			       const struct kvmkit_virtio_vsock_config *vs,
			       struct kvmkit_virtio **out);

#ifdef __cplusplus
}
#endif
#endif
