// SPDX-License-Identifier: MIT
/* Walking and setting page bitmaps a word at a time (dirty_bitmap.h). */
#include "kvm/dirty_bitmap.h"

/* Bits below @bit cleared (bit < 64). */
static inline uint64_t from_bit(uint64_t w, unsigned int bit)
{
	return w & (~0ull << bit);
}

/* Word @i with the bits at and past @nbits cleared. */
static inline uint64_t word(const uint64_t *map, uint64_t i, uint64_t nwords, uint64_t nbits)
{
	if (i + 1 == nwords && nbits % 64)
		return map[i] & ((1ull << (nbits % 64)) - 1);
	return map[i];
}

int kvmk_bitmap_walk(const uint64_t *map, uint64_t nbits, kvmk_bitmap_run_fn fn, void *opaque,
		     uint64_t *stop)
{
	uint64_t nwords = kvmk_bitmap_words(nbits), i = 0, w;

	if (stop)
		*stop = nbits;
	if (!nwords)
		return 0;
	w = word(map, 0, nwords, nbits);
	for (;;) {
		uint64_t start, end, inv;
		int r;

		while (!w) {
			if (++i == nwords)
				return 0;
			w = word(map, i, nwords, nbits);
		}
		start = i * 64 + (uint64_t)__builtin_ctzll(w);
		/* The run ends at the first clear bit after its start, maybe
		 * words later; the masked last word always has one past
		 * @nbits unless @nbits is a multiple of 64. */
		inv = from_bit(~w, (unsigned int)(start % 64));
		while (!inv && ++i < nwords)
			inv = ~word(map, i, nwords, nbits);
		end = inv ? i * 64 + (uint64_t)__builtin_ctzll(inv) : nbits;
		r = fn(start, end - start, opaque);
		if (r) {
			if (stop)
				*stop = start;
			return r;
		}
		if (end >= nbits)
			return 0;
		w = from_bit(word(map, i, nwords, nbits), (unsigned int)(end % 64));
	}
}

uint64_t kvmk_bitmap_weight(const uint64_t *map, uint64_t nbits)
{
	uint64_t nwords = kvmk_bitmap_words(nbits), n = 0;

	for (uint64_t i = 0; i < nwords; i++)
		n += (uint64_t)__builtin_popcountll(word(map, i, nwords, nbits));
	return n;
}

/* Bits [lo, hi) of a word, 0 <= lo < hi <= 64. */
static inline uint64_t span(unsigned int lo, unsigned int hi)
{
	return (hi == 64 ? ~0ull : (1ull << hi) - 1) & (~0ull << lo);
}

void kvmk_bitmap_set_atomic(uint64_t *map, uint64_t first, uint64_t count)
{
	uint64_t end = first + count;

	while (first < end) {
		uint64_t i = first / 64;
		unsigned int lo = (unsigned int)(first % 64);
		unsigned int hi = end - i * 64 >= 64 ? 64 : (unsigned int)(end - i * 64);

		__atomic_fetch_or(&map[i], span(lo, hi), __ATOMIC_RELEASE);
		first = i * 64 + hi;
	}
}

void kvmk_bitmap_or_from(uint64_t *dst, const uint64_t *src, uint64_t first, uint64_t nbits)
{
	uint64_t nwords = kvmk_bitmap_words(nbits);

	for (uint64_t i = first / 64; i < nwords; i++) {
		uint64_t w = word(src, i, nwords, nbits);

		if (i == first / 64)
			w = from_bit(w, (unsigned int)(first % 64));
		if (w)
			__atomic_fetch_or(&dst[i], w, __ATOMIC_RELEASE);
	}
}
