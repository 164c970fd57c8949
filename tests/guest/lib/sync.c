// SPDX-License-Identifier: MIT
/*
 * SMP helpers.
 */
#include "guest.h"

void guest_barrier_wait(struct guest_barrier *b, unsigned int n)
{
	uint32_t sense = atomic_load_acquire(&b->sense);

	if (atomic_add_fetch(&b->arrived, 1) == n) {
		atomic_store(&b->arrived, 0);
		atomic_store_release(&b->sense, !sense);
		return;
	}
	while (atomic_load_acquire(&b->sense) == sense)
		cpu_relax();
}
