// SPDX-License-Identifier: MIT
/* Output on kvmkit's 16550 UART on MMIO (byte registers, stride 1). */
#include <stdarg.h>

#include "a64.h"

#define UART_THR 0
#define UART_LSR 5
#define LSR_THRE 0x20

void a64_putc(char c)
{
	/* kvmkit holds THRE clear while its output buffer is full. */
	while (!(mmio_read8(A64_UART + UART_LSR) & LSR_THRE))
		;
	mmio_write8(A64_UART + UART_THR, (uint8_t)c);
}

void a64_puts(const char *s)
{
	while (*s)
		a64_putc(*s++);
}

static void put_num(unsigned long v, unsigned int base)
{
	char buf[24];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		a64_putc(buf[--n]);
}

void a64_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		bool lng = false;

		if (*fmt != '%') {
			a64_putc(*fmt);
			continue;
		}
		if (*++fmt == 'l') {
			lng = true;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			a64_puts(va_arg(ap, const char *));
			break;
		case 'u':
			put_num(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 10);
			break;
		case 'x':
			put_num(lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 16);
			break;
		case 0:
			fmt--;
			break;
		default:
			a64_putc(*fmt);
			break;
		}
	}
	va_end(ap);
}
