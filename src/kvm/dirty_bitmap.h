/* SPDX-License-Identifier: MIT */
/*
 * Page bitmaps as KVM lays them out (KVM_GET_DIRTY_LOG): 64-bit words, bit
 * i of the map is bit i % 64 of word i / 64, one bit per page. Pure code
 * (no KVM, no locks), so the unit tests use it directly. Internal.
 */
#ifndef KVMKIT_KVM_DIRTY_BITMAP_H
#define KVMKIT_KVM_DIRTY_BITMAP_H

#include <stdint.h>

/* Words that hold @nbits bits. */
static inline uint64_t kvmk_bitmap_words(uint64_t nbits)
{
	return nbits / 64 + (nbits % 64 != 0);
}

/* Called for a run of @count set bits starting at bit @first; 0 goes on,
 * anything else stops the walk. */
typedef int (*kvmk_bitmap_run_fn)(uint64_t first, uint64_t count, void *opaque);

/*
 * Calls @fn once for every maximal run of set bits among the first @nbits
 * bits of @map, in increasing order; a run crossing a word boundary is one
 * run. Bits at and past @nbits (the rest of the last word) are never
 * reported, whatever they hold. Zero words are skipped a word at a time
 * and runs are found with ctz, so a sparse map costs about one load per 64
 * pages. Returns 0 after the last run, or the first non-zero value @fn
 * returned; @stop (may be NULL) gets the first bit of that run, or @nbits.
 */
int kvmk_bitmap_walk(const uint64_t *map, uint64_t nbits, kvmk_bitmap_run_fn fn, void *opaque,
		     uint64_t *stop);

/* Set bits among the first @nbits. */
uint64_t kvmk_bitmap_weight(const uint64_t *map, uint64_t nbits);

/* Sets bits [first, first + count) with one atomic OR per word (release),
 * so that whoever takes the word with an acquiring exchange also sees what
 * was written before the bits were set. The range must lie in the map. */
void kvmk_bitmap_set_atomic(uint64_t *map, uint64_t first, uint64_t count);

/* ORs bits [first, nbits) of @src into @dst atomically (the part of a
 * harvest that was not reported goes back to be reported again). */
void kvmk_bitmap_or_from(uint64_t *dst, const uint64_t *src, uint64_t first, uint64_t nbits);

#endif
