// SPDX-License-Identifier: MIT
/*
 * pause_loop: vCPU 0 increments a 64-bit counter at GUEST_PAUSE_COUNTER_ADDR
 * forever, after storing GUEST_PAUSE_MAGIC at GUEST_PAUSE_MAGIC_ADDR. The
 * host pauses, resumes and stops the VM and watches the counter.
 */
#include "guest.h"

int guest_main(unsigned int id, unsigned int count)
{
	volatile uint64_t *counter = (volatile uint64_t *)GUEST_PAUSE_COUNTER_ADDR;

	if (id != 0)
		return 0;
	*counter = 0;
	atomic_store_release((uint64_t *)GUEST_PAUSE_MAGIC_ADDR, GUEST_PAUSE_MAGIC);
	for (;;)
		(*counter)++;
}
