// SPDX-License-Identifier: MIT
/*
 * uart_echo: vCPU 0 reads bytes from the UART (polling LSR.DR at CPL3) and
 * writes each back, until it reads 'q'; then it powers off with the number
 * of bytes it echoed. Lets a test drive `kvmkit run`'s console end to end.
 */
#include "guest.h"

#define UART_RBR 0
#define UART_LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

int guest_main(unsigned int id, unsigned int count)
{
	unsigned int n = 0;

	if (id != 0)
		return 0;
	serial_puts("echo ready\n");
	for (;;) {
		uint8_t c;

		while (!(inb(GUEST_UART_PORT + UART_LSR) & LSR_DR))
			cpu_relax();
		c = inb(GUEST_UART_PORT + UART_RBR);
		if (c == 'q')
			return (int)n;
		while (!(inb(GUEST_UART_PORT + UART_LSR) & LSR_THRE))
			cpu_relax();
		outb(GUEST_UART_PORT + UART_RBR, c);
		n++;
	}
}
