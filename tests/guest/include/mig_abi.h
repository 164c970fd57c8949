/* SPDX-License-Identifier: MIT */
/*
 * The contract between the mig_loop guest (progs/mig_loop.c) and the
 * migration tests and benchmark (tests/kvm/test_migrate.c,
 * bench/migrate.c). Macros only.
 *
 * Each vCPU owns an equal slice of the pattern area (MIG_PAGES pages from
 * MIG_AREA) and rewrites it page after page, pass after pass, at CPL3:
 * every 8-byte word w of page p holds MIG_WORD(pass, p, w). Before it
 * rewrites a page it checks that the page holds the previous pass's
 * pattern (zeros before pass 1) and counts a page that does not in ERRORS:
 * a page a migration lost or sent stale shows there. The first pass runs
 * flat out (it fills the area); later ones are paced by the LAPIC timer's
 * ticks (about 200 Hz): at most MIG_RATE pages per tick per vCPU (0: no
 * more writing; MIG_RATE_MAX: no pacing); ahead of its pace it halts until
 * the next tick. Each tick adds one to TICKS.
 *
 * A host that writes nothing (`kvmkit run`) gets MIG_DEFAULT_PAGES pages at
 * MIG_DEFAULT_RATE.
 *
 * On MIG_CMD_FINISH each vCPU stops its timer and sets DONE; vCPU 0 then
 * reports, per vCPU, PASS, INDEX, TICKS and ERRORS (four 64-bit values),
 * then the area's checksum (h = MIG_FNV_OFFSET; for each 64-bit word w in
 * address order: h = (h ^ w) * MIG_FNV_PRIME) as one 64-bit value, and
 * powers off with GUEST_STATUS_OK if no vCPU counted an
 * error, else GUEST_STATUS_FAIL.
 */
#ifndef KVMKIT_MIG_ABI_H
#define KVMKIT_MIG_ABI_H

#include "guest_abi.h"

#define MIG_BASE (GUEST_ABI_BASE + 0x40000)
#define MIG_PAGES (MIG_BASE + 0x0) /* u64, host, before the start */
#define MIG_RATE (MIG_BASE + 0x8) /* u64, host: pages per tick per vCPU after pass 1 */
#define MIG_CMD (MIG_BASE + 0x10) /* u32, host */
#define MIG_CPU(cpu) (MIG_BASE + 0x100 + (cpu)*0x40)
/* u64 the pass being written (1: the first). A host that fills the area
 * with pass 1's pattern itself sets it to 2 before the start. */
#define MIG_PASS 0x00
#define MIG_INDEX 0x08 /* u64 next page of the vCPU's slice in this pass */
#define MIG_TICKS 0x10 /* u64 timer interrupts taken */
#define MIG_ERRORS 0x18 /* u32 pages found without the expected pattern */
#define MIG_READY 0x1c /* u32 1 once the loop runs */
#define MIG_DONE 0x20 /* u32 1 once FINISH is done */
#define MIG_PACE_TICKS 0x28 /* u64 guest-private: TICKS when pass 2 began */
#define MIG_PACE_PAGES 0x30 /* u64 guest-private: pages written since */

#define MIG_DEFAULT_PAGES 4096 /* when MIG_PAGES is 0 at the start */
#define MIG_DEFAULT_RATE 64

#define MIG_CMD_RUN 0
#define MIG_CMD_FINISH 1
#define MIG_RATE_MAX GUEST_U64(0xffffffffffffffff)
#define MIG_VECTOR 0x41
#define MIG_REPORTS_PER_CPU 8 /* 32-bit values: four 64-bit ones */

/* Where the pattern lives: above the image, the ABI pages and the other
 * programs' areas. */
#define MIG_AREA GUEST_U64(0x1000000)

#define MIG_WORD(pass, page, w) \
	(((pass) << 40) ^ ((page) << 12) ^ ((w) << 3) ^ GUEST_U64(0x5a5aa5a5c3c30000))
#define MIG_FNV_OFFSET GUEST_U64(0xcbf29ce484222325)
#define MIG_FNV_PRIME GUEST_U64(0x100000001b3)

#endif
