// SPDX-License-Identifier: MIT
/*
 * triple_fault: vCPU 0 loads an empty IDT at CPL0 and raises #BP. The IDT
 * limit rejects vector 3, then #GP, then #DF: the CPU shuts down and the
 * host sees KVM_EXIT_SHUTDOWN.
 */
#include "guest.h"

static uint64_t shut_down(uint64_t unused)
{
	static const struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} empty = { 0, 0 };

	__asm__ __volatile__("lidt %0\n\t"
			     "int3"
			     :
			     : "m"(empty)
			     : "memory");
	return 0;
}

int guest_main(unsigned int id, unsigned int count)
{
	if (id != 0)
		return 0;
	serial_puts("triple_fault: empty IDT, then int3 at CPL0\n");
	guest_cpl0_call(shut_down, 0);
	/* Not reached: if it is, fail loudly. */
	return GUEST_STATUS_FAIL;
}
