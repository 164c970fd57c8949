// SPDX-License-Identifier: MIT
/*
 * smp_id: every vCPU reports GUEST_SMP_ID_BASE + its index; vCPU 0 waits
 * until all of them have, then powers off with 0.
 */
#include "guest.h"

static uint32_t reported;

int guest_main(unsigned int id, unsigned int count)
{
	report(GUEST_SMP_ID_BASE + id);
	/* The port write has completed (the exit is synchronous) before this. */
	atomic_fetch_add(&reported, 1);
	if (id != 0)
		return 0;
	while (atomic_load_acquire(&reported) < count)
		cpu_relax();
	return GUEST_STATUS_OK;
}
