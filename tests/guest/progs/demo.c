// SPDX-License-Identifier: MIT
/*
 * demo: the guest embedded in libkvmkit (`kvmkit run` without an image).
 * vCPU 0 prints a banner from CPL3 and powers off with status 0.
 */
#include "guest.h"

int guest_main(unsigned int id, unsigned int count)
{
	if (id != 0)
		return 0;
	guest_printf(GUEST_DEMO_BANNER " %u of %u (long mode, CPL%u)\n", id, count, guest_cpl());
	return GUEST_STATUS_OK;
}
