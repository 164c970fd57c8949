/* SPDX-License-Identifier: MIT */
/*
 * The contract between the page-flush guest (progs/flush_storm.c) and
 * tests/kvm/test_testdev.c: where the host puts the run's parameters, the
 * handshake words, and the values the guest reports. Macros only.
 *
 * The guest flushes pages through the test device's port 0xe4 (which the
 * machine must have: kvmkit_machine_config.testdev = ON for this ELF64
 * guest), with `rep outsl` at CPL0: one gate call for a whole batch.
 */
#ifndef KVMKIT_FLUSH_ABI_H
#define KVMKIT_FLUSH_ABI_H

#include "guest_abi.h"

#define FLUSH_PORT 0xe4
#define FLUSH_SCRATCH_PORT 0xe0
#define FLUSH_PROBE_PORT 0xe8

/* Either mode first writes FLUSH_PROBE_VALUE to the scratch port 0xe8 and
 * reads it back; without the test device it powers off with this status. */
#define FLUSH_PROBE_VALUE 0x7e57de50
#define FLUSH_STATUS_NO_TESTDEV 0x10

/* Parameters (u32 each, written by the host before the run). */
#define FLUSH_PARAMS (GUEST_ABI_BASE + 0x100)
#define FLUSH_MODE (FLUSH_PARAMS + 0x0)
#define FLUSH_MAX_TARGETS (FLUSH_PARAMS + 0x4) /* storm: 0 = every target */
#define FLUSH_WAIT (FLUSH_PARAMS + 0x8) /* storm: wait for the host */
/* Handshake (u32): the guest stores the phase it reached, then waits for
 * the host to store the same number into FLUSH_ACK. */
#define FLUSH_PHASE (FLUSH_PARAMS + 0x10)
#define FLUSH_ACK (FLUSH_PARAMS + 0x14)

/* The list of values the guest writes to the flush port (u32 each). */
#define FLUSH_LIST GUEST_U64(0x300000)
#define FLUSH_LIST_MAX 0x40000 /* entries: up to 0x400000 */

/* RAM pages the guest fills, flushes and checks: every other page from
 * FLUSH_FIRST to the end of RAM below 3 GiB. */
#define FLUSH_FIRST GUEST_U64(0x400000)
#define FLUSH_STRIDE GUEST_U64(0x2000)
/* The words at offsets 0 and 0xff8 of target page p. */
#define FLUSH_WORD(p) (((p)*GUEST_U64(0x9e3779b97f4a7c15)) ^ GUEST_U64(0x666c757368696e67))

/*
 * FLUSH_MODE_STORM: fill every target, then (with FLUSH_WAIT) store phase
 * 1 and wait for ack 1, then write the flush list: each target (at some
 * offset inside the page) and, after every FLUSH_HOSTILE_EVERY targets,
 * one hostile value (outside RAM, unaligned, MMIO, garbage, or RAM the
 * guest runs from). Then check both words of every target. Reports:
 *   [0] targets, [1] hostile values, [2] targets whose words changed,
 *   [3] the first such target (0: none)
 * and powers off with GUEST_STATUS_OK if none changed, else FAIL.
 */
#define FLUSH_MODE_STORM 0
#define FLUSH_HOSTILE_EVERY 8
#define FLUSH_STORM_REPORTS 4

/*
 * FLUSH_MODE_REFAULT: FLUSH_REFAULT_PAGES pages, 2 MiB apart (each in a
 * huge-page frame of its own, so that one fault maps one of them), read
 * after each step, with a handshake after each:
 *   phase 1: all read once (mapped in KVM);
 *   phase 2: FLUSH_REFAULT_PAGES writes to the scratch port (the same
 *            exits as a flush), then all read again;
 *   phase 3: each flushed through the port, then all read again.
 * A host reading KVM's fault counters between phases sees what a flush
 * costs. Reports [0] pages, [1] pages whose words changed; status OK/FAIL.
 */
#define FLUSH_MODE_REFAULT 1
#define FLUSH_REFAULT_PAGES 16
#define FLUSH_REFAULT_FIRST GUEST_U64(0x400000)
#define FLUSH_REFAULT_STRIDE GUEST_U64(0x200000)
#define FLUSH_REFAULT_REPORTS 2

#endif
