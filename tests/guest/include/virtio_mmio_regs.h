/* SPDX-License-Identifier: MIT */
/*
 * virtio-mmio (version 2) register offsets and device status bits, as the
 * virtio 1.x specification lays them out, for the guest kits' minimal
 * drivers (x86: progs/virtio_drv.c, progs/vnet_drv.c; arm64:
 * arm64/lib/virtio.c). No code: each driver has its own accessors.
 */
#ifndef GUEST_VIRTIO_MMIO_REGS_H
#define GUEST_VIRTIO_MMIO_REGS_H

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_ISR 0x060
#define R_ACK 0x064
#define R_STATUS 0x070
#define R_DESC 0x080
#define R_DRIVER 0x090
#define R_DEVICE 0x0a0
#define R_CONFIG_GEN 0x0fc
#define R_CONFIG 0x100

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 0x40

#endif
