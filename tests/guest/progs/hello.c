// SPDX-License-Identifier: MIT
/*
 * hello: prints a line, reports GUEST_HELLO_REPORT, powers off with 0.
 */
#include "guest.h"

int guest_main(unsigned int id, unsigned int count)
{
	if (id != 0)
		return 0;
	serial_puts(GUEST_HELLO_TEXT "\n");
	report(GUEST_HELLO_REPORT);
	return GUEST_STATUS_OK;
}
