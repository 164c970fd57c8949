/* SPDX-License-Identifier: MIT */
/*
 * The contract between the dirty_lab guest (progs/dirty_lab.c) and the
 * host programs that drive it (tests/kvm/test_dirty.c, bench/dirty_harvest.c):
 * a per-vCPU mailbox through which the host has the guest write known
 * pages. Macros only.
 *
 * Every vCPU, at CPL3, sets READY = 1 and then polls its mailbox: when the
 * host bumps SEQ (a release store, after CMD and the arguments), the vCPU
 * runs the command and stores ACK = SEQ (release). The guest writes
 * nothing but ACK and READY in its mailbox page, each vCPU's own page, and
 * never SEQ, CMD or the arguments. Its command loop makes no port I/O, so
 * it takes no exit and no trip to CPL0 while it polls.
 */
#ifndef KVMKIT_DIRTY_ABI_H
#define KVMKIT_DIRTY_ABI_H

#include "guest_abi.h"

#define DIRTY_LAB_MAILBOX(cpu) (GUEST_ABI_BASE + 0x80000 + (cpu)*0x1000)
#define DIRTY_LAB_MB_SEQ 0x00 /* u32, written by the host */
#define DIRTY_LAB_MB_ACK 0x04 /* u32, written by the guest */
#define DIRTY_LAB_MB_CMD 0x08 /* u32, written by the host */
#define DIRTY_LAB_MB_READY 0x0c /* u32, 1 once the command loop runs */
#define DIRTY_LAB_MB_ARG(i) (0x10 + 8 * (i)) /* u64 args[0..3] */

/* Acknowledges and does nothing else. */
#define DIRTY_LAB_NOP 0
/* args: base, count, stride, value. Stores the 64-bit value + i at
 * guest-physical base + i * stride for i = 0 .. count - 1 (the first 4 GiB
 * are identity-mapped); one store per page with a stride of 4096. */
#define DIRTY_LAB_WRITE 1
/* args: status. vCPU 0 acknowledges and powers the VM off with it; another
 * vCPU acknowledges and halts for good. */
#define DIRTY_LAB_EXIT 2

/* Where the host has the guest write: well above the image (below 2 MiB),
 * the ABI pages and the mailboxes. */
#define DIRTY_LAB_AREA GUEST_U64(0x800000)

#endif
