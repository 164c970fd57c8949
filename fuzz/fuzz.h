/* SPDX-License-Identifier: MIT */
/* Shared by the libFuzzer targets: the entry point, an invariant check
 * that traps (libFuzzer reports a trap as a crash with its input), and a
 * reader that turns the input into little-endian values for recipes. */
#ifndef KVMKIT_FUZZ_H
#define KVMKIT_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                          \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

/* What is left of the input. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

/* The next `bytes` (at most 8) input bytes as a little-endian value; once
 * the input runs out the missing bytes read as zero, so a short input is
 * still a whole recipe. */
static inline uint64_t fuzz_take(struct fuzz_in *in, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

/* Whether [a, a + alen) and [b, b + blen) share a byte (empty ones never). */
static inline bool fuzz_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

#endif
