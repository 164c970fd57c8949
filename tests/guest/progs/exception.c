// SPDX-License-Identifier: MIT
/*
 * exception: reports the address of a ud2, then executes it at CPL3. The
 * runtime's #UD handler reports [6, rip low, rip high, 0] and powers off
 * with GUEST_STATUS_EXCEPTION(6).
 */
#include "guest.h"

extern const char exception_ud2_site[];

static __attribute__((noinline)) void raise_ud(void)
{
	__asm__ __volatile__(".globl exception_ud2_site\n"
			     "exception_ud2_site:\n\t"
			     "ud2"
			     :
			     :
			     : "memory");
}

int guest_main(unsigned int id, unsigned int count)
{
	if (id != 0)
		return 0;
	guest_printf("exception: ud2 at %p, CPL%u\n", (void *)exception_ud2_site, guest_cpl());
	report((uint32_t)(uint64_t)exception_ud2_site);
	raise_ud();
	return GUEST_STATUS_FAIL;
}
