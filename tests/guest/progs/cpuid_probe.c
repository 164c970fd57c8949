// SPDX-License-Identifier: MIT
/*
 * cpuid_probe: vCPU 0 reports, at CPL3, CPUID leaf 1 ECX and EBX, leaf 7
 * EBX and leaf 0xA EAX (PMU version), then powers off with 0. The host test
 * compares them with the CPU model and --cpu flags it asked for.
 */
#include "guest.h"

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

int guest_main(unsigned int id, unsigned int count)
{
	uint32_t r[4];

	if (id != 0)
		return 0;
	cpuid(1, 0, r);
	report(r[2]);
	report(r[1]);
	cpuid(7, 0, r);
	report(r[1]);
	cpuid(0xa, 0, r);
	report(r[0]);
	return GUEST_STATUS_OK;
}
