// SPDX-License-Identifier: MIT
/*
 * exits_bench: N MMIO writes, then N port writes, all from CPL3 (N from
 * GUEST_BENCH_ITERS_ADDR, GUEST_BENCH_ITERS_DEFAULT if zero). Reports N and
 * powers off with 0.
 */
#include "guest.h"

int guest_main(unsigned int id, unsigned int count)
{
	uint64_t n, i;

	if (id != 0)
		return 0;
	n = *(volatile uint64_t *)GUEST_BENCH_ITERS_ADDR;
	if (!n)
		n = GUEST_BENCH_ITERS_DEFAULT;

	for (i = 0; i < n; i++)
		mmio_write32(GUEST_TEST_MMIO, (uint32_t)i);
	for (i = 0; i < n; i++)
		outl(GUEST_TEST_PORT, (uint32_t)i);

	report((uint32_t)n);
	return GUEST_STATUS_OK;
}
