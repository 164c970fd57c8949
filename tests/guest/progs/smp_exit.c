// SPDX-License-Identifier: MIT
/*
 * smp_exit: every vCPU reports GUEST_SMP_ID_BASE + its index, meets the
 * others at a barrier, then every one of them powers off at once with
 * GUEST_SMP_EXIT_STATUS(index). The host sees one stop request per vCPU
 * arrive while it is already joining the vCPU threads of the first.
 */
#include "guest.h"

static struct guest_barrier all_reported;

int guest_main(unsigned int id, unsigned int count)
{
	report(GUEST_SMP_ID_BASE + id);
	guest_barrier_wait(&all_reported, count);
	power_off(GUEST_SMP_EXIT_STATUS(id));
}
