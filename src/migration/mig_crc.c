// SPDX-License-Identifier: MIT
/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82f63b78) for the migration
 * stream (mig_wire.h). Every byte of guest RAM a migration sends is
 * checksummed twice, once on each side, so the checksum is chosen for
 * speed: x86_64's SSE4.2 and arm64's CRC extension compute it 8 bytes an
 * instruction, on three streams at once, several times faster than zlib's
 * CRC-32. Elsewhere a table does it a byte at a time.
 */
#include <pthread.h>

#include "migration/mig_wire.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HW_TARGET __attribute__((target("sse4.2")))
#define HW_U8(c, b) _mm_crc32_u8((c), (b))
#define HW_U64(c, w) ((uint32_t)_mm_crc32_u64((c), (w)))
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#define HW_TARGET
#define HW_U8(c, b) __crc32cb((c), (b))
#define HW_U64(c, w) __crc32cd((c), (w))
#endif

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		table[i] = c;
	}
}

static uint32_t sw(uint32_t c, const uint8_t *p, size_t len)
{
	pthread_once(&table_once, table_init);
	while (len--)
		c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#ifdef HW_TARGET
/* One instruction has a latency of several cycles but starts every cycle:
 * three independent streams over three consecutive blocks keep it busy,
 * and their registers are combined with the polynomial arithmetic below
 * (the CRC register is linear in the data: the state after A then B is
 * A's state advanced over |B| zero bytes, xor B's state from zero). */
#define BLOCK 1024u

static uint32_t shift_1, shift_2; /* x^(8 * BLOCK), x^(16 * BLOCK) mod P */
static pthread_once_t shifts_once = PTHREAD_ONCE_INIT;

/* a * b mod P, both reflected (bit 31 is x^0). */
static uint32_t gf2_mul(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	for (int i = 0; i < 32; i++, a <<= 1) {
		if (a & 0x80000000u)
			p ^= b;
		b = b & 1 ? (b >> 1) ^ 0x82f63b78u : b >> 1;
	}
	return p;
}

static void shifts_init(void)
{
	uint32_t x = 0x80000000u; /* x^0 */

	for (uint32_t i = 0; i < 16 * BLOCK; i++) {
		x = x & 1 ? (x >> 1) ^ 0x82f63b78u : x >> 1;
		if (i + 1 == 8 * BLOCK)
			shift_1 = x;
	}
	shift_2 = x;
}

HW_TARGET static uint32_t hw(uint32_t c, const uint8_t *p, size_t len)
{
	for (; len && ((uintptr_t)p & 7); len--)
		c = HW_U8(c, *p++);
	if (len >= 3 * BLOCK)
		pthread_once(&shifts_once, shifts_init);
	for (; len >= 3 * BLOCK; len -= 3 * BLOCK, p += 3 * BLOCK) {
		uint32_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < BLOCK; i += 8) {
			uint64_t w0, w1, w2;

			__builtin_memcpy(&w0, p + i, 8);
			__builtin_memcpy(&w1, p + BLOCK + i, 8);
			__builtin_memcpy(&w2, p + 2 * BLOCK + i, 8);
			c = HW_U64(c, w0);
			c1 = HW_U64(c1, w1);
			c2 = HW_U64(c2, w2);
		}
		c = gf2_mul(c, shift_2) ^ gf2_mul(c1, shift_1) ^ c2;
	}
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;

		__builtin_memcpy(&w, p, 8);
		c = HW_U64(c, w);
	}
	while (len--)
		c = HW_U8(c, *p++);
	return c;
}

static bool have_hw(void)
{
#if defined(__x86_64__)
	return __builtin_cpu_supports("sse4.2");
#else
	return true;
#endif
}
#endif

uint32_t kvmk_mig_crc_bytewise(uint32_t crc, const void *p, size_t len)
{
	return ~sw(~crc, p, len);
}

uint32_t kvmk_mig_crc(uint32_t crc, const void *p, size_t len)
{
	uint32_t c = ~crc;

#ifdef HW_TARGET
	if (have_hw())
		return ~hw(c, p, len);
#endif
	return ~sw(c, p, len);
}
