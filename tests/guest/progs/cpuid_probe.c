// SPDX-License-Identifier: MIT
/*
 * cpuid_probe: vCPU 0 reports CPUID leaf 1 ECX and EBX, leaf 7 EBX and leaf
 * 0xA EAX (PMU version), then powers off with 0. The host test compares them
 * with the CPU model and --cpu flags it asked for.
 *
 * CPUID runs at CPL0, as a kernel would see it: on KVM-PVM CPUID at CPL3
 * executes natively (no CPUID faulting) and shows the host CPU, not the
 * guest's model.
 */
#include "guest.h"

static uint32_t regs[4];

static uint64_t cpuid_cpl0(uint64_t leaf)
{
	asm volatile("cpuid"
		     : "=a"(regs[0]), "=b"(regs[1]), "=c"(regs[2]), "=d"(regs[3])
		     : "a"((uint32_t)leaf), "c"(0));
	return 0;
}

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	guest_cpl0_call(cpuid_cpl0, leaf);
	memcpy(r, regs, sizeof(regs));
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
