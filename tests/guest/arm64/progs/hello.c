// SPDX-License-Identifier: MIT
/* Says hello on the UART, then PSCI SYSTEM_OFF (the runtime's). */
#include "a64.h"

void a64_program(unsigned int cpu, unsigned int ncpus)
{
	a64_printf("kvmkit arm64 guest: hello from vCPU %u of %u, PSCI 0x%lx\n", cpu, ncpus,
		   (unsigned long)a64_psci(PSCI_VERSION, 0, 0, 0));
}
