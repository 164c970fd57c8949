/* SPDX-License-Identifier: MIT */
/*
 * Runtime internals shared by start.S and the C runtime: descriptor table
 * layout, stack sizes, flag values. Macros only (used from assembly).
 */
#ifndef GUEST_ARCH_H
#define GUEST_ARCH_H

#include "guest_abi.h"

/* GDT: the first three entries match kvmkit's boot GDT. */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA (0x18 | 3)
#define SEL_UCODE (0x20 | 3)
#define SEL_TSS0 0x28 /* vCPU i's TSS: SEL_TSS0 + 16 * i */
#define GDT_ENTRIES (5 + 2 * GUEST_MAX_VCPUS)

/* Per-vCPU stacks. The kernel stack takes the TSS RSP0 entries (exceptions
 * and the gate); the user stack is where guest_main() runs. */
#define KSTACK_SHIFT 13 /* 8 KiB */
#define KSTACK_SIZE (1 << KSTACK_SHIFT)
#define USTACK_SHIFT 14 /* 16 KiB */
#define USTACK_SIZE (1 << USTACK_SHIFT)

/* RFLAGS at CPL3: IOPL = 0, IF = 0, bit 1. Port I/O and cli/sti at
 * CPL3 go through the gate: KVM-PVM ignores IOPL for guest ring 3 (#GP). */
#define RFLAGS_USER 0x0002
#define RFLAGS_IF 0x200

/* Gate types: present 64-bit interrupt gate, DPL 0 or 3. */
#define GATE_INT_DPL0 0x8e
#define GATE_INT_DPL3 0xee

#define NUM_VECTORS 256

/* Gate requests (EAX), see start.S and guest.h. */
#define GATE_CALL 0
#define GATE_OUT 1
#define GATE_IN 2
#define GATE_IRQ_ON 3
#define GATE_IRQ_OFF 4
#define GATE_OUTS 5 /* rep outsb: a byte string to one port */

#define MSR_GS_BASE 0xc0000101

#endif
