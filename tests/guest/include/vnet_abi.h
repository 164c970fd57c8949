/* SPDX-License-Identifier: MIT */
/*
 * vnet_drv (tests/guest/progs/vnet_drv.c): a minimal driver for kvmkit's
 * virtio-net and virtio-vsock that the host test (tests/kvm/
 * test_vnet.c) runs. The host fills the parameter block before the guest
 * starts (and writes VNET_P_GO while it runs); the guest fills the result
 * block and powers off with 0 when every check it made passed, else with
 * the number of the failed check (VNET_FAIL_*).
 */
#ifndef KVMKIT_VNET_ABI_H
#define KVMKIT_VNET_ABI_H

#include "guest_abi.h"

#define VNET_PARAMS (GUEST_ABI_BASE + 0x100)
#define VNET_RESULTS (GUEST_ABI_BASE + 0x200)
#define VNET_MAGIC 0x766e6574 /* "vnet" */

/* Modes. */
#define VNET_NET 0 /* send one frame, then receive the host's after VNET_P_GO */
#define VNET_NET_HOSTILE 1 /* garbage and lying transmit chains, then one good frame */
#define VNET_VSOCK 3 /* connect to the host's port, send a line, read its reply */
#define VNET_NET_HOSTILE_VHOST 4 /* a transmit chain vhost-net refuses, then a good frame */

/* Parameter block: u64 words at VNET_PARAMS + 8 * index. */
#define VNET_P_MAGIC 0
#define VNET_P_MODE 1
#define VNET_P_LEVEL 2 /* program the IOAPIC pin level-triggered */
#define VNET_P_BASE 3 /* the device's window */
#define VNET_P_PIN 4
#define VNET_P_FEATURES 5 /* feature bits the driver asks for (with VERSION_1) */
#define VNET_P_MAC 6 /* the MAC the config must show, bytes 0..5 */
#define VNET_P_FRAMES 7 /* frames the host sends */
#define VNET_P_RXBUF 8 /* bytes per receive buffer */
#define VNET_P_GO 9 /* the host's frames are in the tap: post buffers */
#define VNET_P_CID 10 /* vsock: the guest's cid (the config must show it) */
#define VNET_P_PORT 11 /* vsock: the host's listening port */

/* Frames: broadcast from the guest, to the guest's MAC from the host, both
 * with an experimental ethertype and a payload pattern. */
#define VNET_ETHERTYPE 0x88b5
#define VNET_TX_LEN 200 /* frame bytes the guest sends */
#define VNET_RX_LEN(i) (300 + 250 * (i)) /* frame i from the host */
#define VNET_TX_BYTE(j) ((uint8_t)((j)*3 + 5))
#define VNET_RX_BYTE(i, j) ((uint8_t)((i)*31 + (j)))
#define VNET_HOST_MAC 0x010000000002ull /* 02:00:00:00:00:01 as bytes 0..5 */

/* vsock text. */
#define VNET_VSOCK_PING "hello over vsock\n"
#define VNET_VSOCK_PONG "pong from the host\n"
#define VNET_VSOCK_GUEST_PORT 1234

/* Result block: u32 words at VNET_RESULTS + 4 * index. */
#define VNET_R_IRQS 0 /* interrupts with InterruptStatus != 0 */
#define VNET_R_SPURIOUS 1 /* interrupts that found InterruptStatus 0 */
#define VNET_R_CONFIG_IRQS 2
#define VNET_R_TX 3 /* transmit chains the device returned */
#define VNET_R_RX 4 /* frames received and checked */
#define VNET_R_RX_BUFS 5 /* receive buffers those frames took */
#define VNET_R_HOSTILE 6 /* hostile chains that ended in NEEDS_RESET */
#define VNET_R_IN_LEN 7 /* vsock: bytes of the host's reply */
#define VNET_R_STAGE 8 /* 1: sent, waiting for VNET_P_GO */
#define VNET_R_DONE 9 /* VNET_MAGIC once the guest got to the end */

/* Failed checks (the power-off status). */
#define VNET_FAIL_PARAMS 1
#define VNET_FAIL_INIT 2
#define VNET_FAIL_TIMEOUT 3
#define VNET_FAIL_CONFIG 4 /* MAC or link status */
#define VNET_FAIL_TX 5
#define VNET_FAIL_RX 6 /* a frame's header, length or bytes */
#define VNET_FAIL_HOSTILE 7
#define VNET_FAIL_VSOCK 9 /* config, or a packet the host's side did not send */

#endif
