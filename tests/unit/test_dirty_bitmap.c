// SPDX-License-Identifier: MIT
/*
 * The dirty-log bitmap walker (src/kvm/dirty_bitmap.c) against a naive
 * bit-by-bit reference, without KVM: random bitmaps of many densities and
 * sizes (most not a multiple of 64 pages, with garbage past the end), runs
 * crossing words, a walk stopped part way, and the atomic set and or-back
 * helpers. The generator is seeded, so a failure repeats; its seed and
 * case are printed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kvm/dirty_bitmap.h"

#define MAX_BITS 4100
#define MAX_WORDS ((MAX_BITS + 63) / 64 + 1)
#define MAX_RUNS (MAX_BITS / 2 + 1)

/* xorshift64*: small, seedable, good enough for test data. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

struct runs {
	unsigned int n;
	uint64_t first[MAX_RUNS], count[MAX_RUNS];
	unsigned int stop_at; /* stop (return 7) on this run, or never */
};

static int collect(uint64_t first, uint64_t count, void *opaque)
{
	struct runs *r = opaque;

	if (r->n == r->stop_at)
		return 7;
	assert_true(r->n < MAX_RUNS);
	r->first[r->n] = first;
	r->count[r->n] = count;
	r->n++;
	return 0;
}

static bool bit(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

/* The reference: one bit at a time, the same runs. */
static void naive_runs(const uint64_t *map, uint64_t nbits, struct runs *out)
{
	out->n = 0;
	for (uint64_t i = 0; i < nbits;) {
		uint64_t j = i;

		if (!bit(map, i)) {
			i++;
			continue;
		}
		while (j < nbits && bit(map, j))
			j++;
		out->first[out->n] = i;
		out->count[out->n] = j - i;
		out->n++;
		i = j;
	}
}

/* A random map of @nbits bits: density from all-clear to all-set, long
 * runs or scattered bits, and random garbage past @nbits. */
static void random_map(uint64_t *map, uint64_t nbits, unsigned int kind)
{
	uint64_t words = kvmk_bitmap_words(nbits);

	memset(map, 0, MAX_WORDS * sizeof(*map));
	switch (kind % 6) {
	case 0: /* all clear */
		break;
	case 1: /* all set */
		memset(map, 0xff, words * sizeof(*map));
		break;
	case 2: /* sparse single bits */
		for (uint64_t i = 0; i < nbits / 50 + 1; i++) {
			uint64_t b = rng() % nbits;

			map[b / 64] |= 1ull << (b % 64);
		}
		break;
	case 3: /* dense noise */
		for (uint64_t i = 0; i < words; i++)
			map[i] = rng() | rng();
		break;
	default: { /* runs of random length, some crossing many words */
		uint64_t b = rng() % 70;

		while (b < nbits) {
			uint64_t len = 1 + rng() % (kind % 6 == 4 ? 8 : 300);

			for (uint64_t i = b; i < b + len && i < nbits; i++)
				map[i / 64] |= 1ull << (i % 64);
			b += len + 1 + rng() % 200;
		}
	}
	}
	/* Whatever lies past the end must never be reported. */
	if (nbits % 64)
		map[words - 1] |= rng() & ~((1ull << (nbits % 64)) - 1);
	map[words] = ~0ull;
}

static void check_map(const uint64_t *map, uint64_t nbits, const char *what)
{
	static struct runs got, want;
	uint64_t stop = 12345, weight = 0;
	int r;

	memset(&got, 0, sizeof(got));
	got.stop_at = ~0u;
	naive_runs(map, nbits, &want);
	r = kvmk_bitmap_walk(map, nbits, collect, &got, &stop);
	assert_int_equal(r, 0);
	assert_int_equal(stop, nbits);
	if (got.n != want.n)
		fail_msg("%s (%llu bits): %u runs, expected %u", what, (unsigned long long)nbits,
			 got.n, want.n);
	for (unsigned int i = 0; i < want.n; i++) {
		if (got.first[i] != want.first[i] || got.count[i] != want.count[i])
			fail_msg("%s (%llu bits): run %u is %llu+%llu, expected %llu+%llu", what,
				 (unsigned long long)nbits, i, (unsigned long long)got.first[i],
				 (unsigned long long)got.count[i],
				 (unsigned long long)want.first[i],
				 (unsigned long long)want.count[i]);
		assert_true(want.first[i] + want.count[i] <= nbits);
		weight += want.count[i];
	}
	assert_int_equal(kvmk_bitmap_weight(map, nbits), weight);
}

/* Thousands of random maps, every size from 1 to 200 bits and then
 * random sizes up to MAX_BITS. */
static void test_random_maps(void **state)
{
	static uint64_t map[MAX_WORDS];
	const uint64_t seed = 0x6b766d6b69746469ull;
	char what[64];

	(void)state;
	rng_state = seed;
	for (unsigned int c = 0; c < 6000; c++) {
		uint64_t nbits = c < 1200 ? 1 + c / 6 : 1 + rng() % MAX_BITS;

		random_map(map, nbits, c);
		snprintf(what, sizeof(what), "seed 0x%llx case %u", (unsigned long long)seed, c);
		check_map(map, nbits, what);
	}
}

/* Hand-made edges: runs that end exactly at a word boundary, cross one or
 * several words, fill the map, or touch its last bit. */
static void test_edges(void **state)
{
	static uint64_t map[MAX_WORDS];
	static const struct {
		uint64_t nbits, first, count;
	} cases[] = {
		{ 64, 0, 64 },	  { 64, 63, 1 },      { 65, 63, 2 },   { 128, 60, 8 },
		{ 130, 0, 130 },  { 130, 129, 1 },    { 200, 1, 190 }, { 1000, 64, 64 },
		{ 1000, 127, 2 }, { 4097, 4032, 65 }, { 100, 99, 1 },  { 1, 0, 1 },
	};

	(void)state;
	for (unsigned int c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct runs got = { .stop_at = ~0u };
		char what[32];

		memset(map, 0, sizeof(map));
		for (uint64_t i = cases[c].first; i < cases[c].first + cases[c].count; i++)
			map[i / 64] |= 1ull << (i % 64);
		map[kvmk_bitmap_words(cases[c].nbits)] = ~0ull; /* past the map */
		snprintf(what, sizeof(what), "edge %u", c);
		check_map(map, cases[c].nbits, what);
		assert_int_equal(kvmk_bitmap_walk(map, cases[c].nbits, collect, &got, NULL), 0);
		assert_int_equal(got.n, 1);
		assert_int_equal(got.first[0], cases[c].first);
		assert_int_equal(got.count[0], cases[c].count);
	}
	/* Zero bits: nothing, and no word read. */
	assert_int_equal(kvmk_bitmap_walk(NULL, 0, collect, NULL, NULL), 0);
	assert_int_equal(kvmk_bitmap_weight(NULL, 0), 0);
}

/* A stopped walk returns the callback's value and where it stopped; the
 * rest, or-ed back from there, is exactly the runs not taken. */
static void test_stop_and_or_back(void **state)
{
	static uint64_t map[MAX_WORDS], back[MAX_WORDS];
	static struct runs all, part, rest;

	(void)state;
	rng_state = 0x1234567;
	for (unsigned int c = 0; c < 300; c++) {
		uint64_t nbits = 1 + rng() % MAX_BITS, stop = 0;
		int r;

		random_map(map, nbits, 4 + c % 2);
		naive_runs(map, nbits, &all);
		if (!all.n)
			continue;
		memset(&part, 0, sizeof(part));
		part.stop_at = (unsigned int)(rng() % all.n);
		r = kvmk_bitmap_walk(map, nbits, collect, &part, &stop);
		assert_int_equal(r, 7);
		assert_int_equal(part.n, part.stop_at);
		assert_int_equal(stop, all.first[part.stop_at]);
		memset(back, 0, sizeof(back));
		kvmk_bitmap_or_from(back, map, stop, nbits);
		naive_runs(back, nbits, &rest);
		assert_int_equal(rest.n, all.n - part.stop_at);
		for (unsigned int i = 0; i < rest.n; i++) {
			assert_int_equal(rest.first[i], all.first[part.stop_at + i]);
			assert_int_equal(rest.count[i], all.count[part.stop_at + i]);
		}
		/* Nothing past the end is or-ed back. */
		if (nbits % 64)
			assert_int_equal(back[nbits / 64] >> (nbits % 64), 0);
	}
}

/* Setting ranges atomically equals setting their bits one by one, and
 * touches nothing outside the range. */
static void test_set_atomic(void **state)
{
	static uint64_t got[MAX_WORDS], want[MAX_WORDS];

	(void)state;
	rng_state = 0x5eed;
	for (unsigned int c = 0; c < 2000; c++) {
		uint64_t first = rng() % MAX_BITS;
		uint64_t count = 1 + rng() % (c % 3 ? 70 : MAX_BITS - first);

		if (first + count > MAX_BITS)
			count = MAX_BITS - first;
		for (unsigned int i = 0; i < MAX_WORDS; i++)
			got[i] = want[i] = rng() & rng() & rng();
		kvmk_bitmap_set_atomic(got, first, count);
		for (uint64_t i = first; i < first + count; i++)
			want[i / 64] |= 1ull << (i % 64);
		assert_memory_equal(got, want, sizeof(got));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_maps),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_stop_and_or_back),
		cmocka_unit_test(test_set_atomic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
