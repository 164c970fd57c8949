/* SPDX-License-Identifier: MIT */
/*
 * virtio_drv (tests/guest/progs/virtio_drv.c): a minimal virtio-mmio
 * driver the host test (tests/kvm/test_virtio.c) points at kvmkit's
 * virtio-rng and virtio-blk. The host fills the parameter block before
 * the guest starts; the guest fills the result block and powers off with
 * 0 when every check it made passed, else with the number of the failed
 * check (VDRV_FAIL_*) after reporting the values that disagreed.
 */
#ifndef KVMKIT_VIRTIO_ABI_H
#define KVMKIT_VIRTIO_ABI_H

#include "guest_abi.h"

#define VDRV_PARAMS (GUEST_ABI_BASE + 0x100)
#define VDRV_RESULTS (GUEST_ABI_BASE + 0x200)
#define VDRV_MAGIC 0x76647276 /* "vdrv" */

/* Modes. */
#define VDRV_NORMAL 0 /* rng requests, then blk write/flush/read/get-id/zeroes */
#define VDRV_HOSTILE 1 /* garbage rings on rng (and blk), then a reset and normal use */

/* Parameter block: u64 words at VDRV_PARAMS + 8 * index. */
#define VDRV_P_MAGIC 0
#define VDRV_P_MODE 1
#define VDRV_P_LEVEL 2 /* program the IOAPIC pins level-triggered */
#define VDRV_P_RNG_BASE 3
#define VDRV_P_RNG_PIN 4
#define VDRV_P_BLK_BASE 5 /* 0: no blk device */
#define VDRV_P_BLK_PIN 6
#define VDRV_P_BLK_SECTORS 7 /* the capacity the guest must read */
#define VDRV_P_BLK_RO 8 /* the disk is read-only: writes must fail */
#define VDRV_P_FEATURES 9 /* bit 0: EVENT_IDX, bit 1: INDIRECT_DESC */
#define VDRV_P_SERIAL 10 /* 24 bytes (3 words): GET_ID's expected 20 */
#define VDRV_P_CON_BASE 13 /* 0: no console device */
#define VDRV_P_CON_PIN 14
#define VDRV_P_COUNT 15

/* The console test: the host feeds VDRV_CON_INPUT, the guest answers
 * VDRV_CON_REPLY followed by what it read. */
#define VDRV_CON_INPUT "kvmkit-ping"
#define VDRV_CON_REPLY "pong:"

/* The blk test's layout: the pattern goes to sectors 8..15, sectors
 * 16..23 are written with the pattern then zeroed (WRITE_ZEROES). */
#define VDRV_PATTERN_SECTOR 8
#define VDRV_ZERO_SECTOR 16
#define VDRV_PATTERN(i) ((uint8_t)((i) * 7 + 1))

/* Result block: u32 words at VDRV_RESULTS + 4 * index. */
#define VDRV_R_RNG_IRQS 0 /* interrupts with InterruptStatus != 0 */
#define VDRV_R_RNG_SPURIOUS 1 /* interrupts that found InterruptStatus 0 */
#define VDRV_R_RNG_REQS 2 /* requests completed */
#define VDRV_R_RNG_CONFIG_IRQS 3 /* interrupts with the config-change bit */
#define VDRV_R_BLK_IRQS 4
#define VDRV_R_BLK_SPURIOUS 5
#define VDRV_R_BLK_REQS 6
#define VDRV_R_HOSTILE_CASES 7 /* hostile rings that ended in NEEDS_RESET */
#define VDRV_R_BLK_CONFIG_IRQS 8
/* Interrupts (spurious ones too) around the blk read a reset cut short:
 * 0 or 1, never counted as a request's. */
#define VDRV_R_BLK_RESET_IRQS 9
/* 1 if that read had completed (used entry) before the reset, else 0. */
#define VDRV_R_BLK_RESET_DONE 10
#define VDRV_R_CON_IRQS 11
#define VDRV_R_CON_SPURIOUS 12
#define VDRV_R_CON_REQS 13
#define VDRV_R_DONE 14 /* VDRV_MAGIC once the guest got to the end */

/* Failed checks (the power-off status). */
#define VDRV_FAIL_PARAMS 1
#define VDRV_FAIL_INIT 2 /* probing, negotiation or queue set-up */
#define VDRV_FAIL_TIMEOUT 3 /* a request or interrupt never came */
#define VDRV_FAIL_RNG 4
#define VDRV_FAIL_BLK_CONFIG 5
#define VDRV_FAIL_BLK_STATUS 6 /* a request's status byte or used length */
#define VDRV_FAIL_BLK_DATA 7
#define VDRV_FAIL_HOSTILE 8 /* a hostile ring did not end in NEEDS_RESET */
#define VDRV_FAIL_IRQ_COUNT 9
#define VDRV_FAIL_REGS 10 /* a register rule (access size, legacy driver) */
#define VDRV_FAIL_CONSOLE 11 /* the console's input or used lengths */

#endif
