// SPDX-License-Identifier: MIT
/*
 * COM1 output and a small printf.
 */
#include "guest.h"

#define UART_THR 0
#define UART_LSR 5
#define UART_LSR_THRE 0x20

static struct guest_spinlock console_lock;

void serial_putc(char c)
{
	/* kvmkit's UART holds THRE clear only while its console is behind. */
	while (!(inb(GUEST_UART_PORT + UART_LSR) & UART_LSR_THRE))
		cpu_relax();
	outb(GUEST_UART_PORT + UART_THR, c);
}

void serial_write(const char *s, size_t len)
{
	while (len--)
		serial_putc(*s++);
}

void serial_puts(const char *s)
{
	guest_spin_lock(&console_lock);
	serial_write(s, strlen(s));
	guest_spin_unlock(&console_lock);
}

struct sink {
	char *buf; /* NULL: the UART */
	size_t size;
	size_t len;
};

static void put(struct sink *o, char c)
{
	if (!o->buf)
		serial_putc(c);
	else if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void pad(struct sink *o, unsigned int width, unsigned int len, char c)
{
	for (; width > len; width--)
		put(o, c);
}

static void put_num(struct sink *o, uint64_t v, unsigned int base, bool upper, bool neg,
		    const char *prefix, unsigned int width, bool zero, bool left)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	unsigned int n = 0, len;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	len = n + neg + strlen(prefix);
	if (!zero && !left)
		pad(o, width, len, ' ');
	if (neg)
		put(o, '-');
	while (*prefix)
		put(o, *prefix++);
	if (zero && !left)
		pad(o, width, len, '0');
	while (n)
		put(o, tmp[--n]);
	if (left)
		pad(o, width, len, ' ');
}

static void format(struct sink *o, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		bool zero = false, alt = false, upper = false, left = false;
		unsigned int width = 0, lng = 0;
		uint64_t u;
		const char *s;

		if (*fmt != '%') {
			put(o, *fmt);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '0')
				zero = true;
			else if (*fmt == '#')
				alt = true;
			else if (*fmt == '-')
				left = true;
			else
				break;
		}
		for (; *fmt >= '0' && *fmt <= '9'; fmt++)
			width = width * 10 + (*fmt - '0');
		for (; *fmt == 'l' || *fmt == 'z'; fmt++)
			lng++;

		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

			u = v < 0 ? -(uint64_t)v : (uint64_t)v;
			put_num(o, u, 10, false, v < 0, "", width, zero, left);
			break;
		}
		case 'u':
			u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
			put_num(o, u, 10, false, false, "", width, zero, left);
			break;
		case 'X':
			upper = true;
			/* fallthrough */
		case 'x':
			u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned int);
			put_num(o, u, 16, upper, false, alt ? "0x" : "", width, zero, left);
			break;
		case 'p':
			u = (uint64_t)va_arg(ap, void *);
			put_num(o, u, 16, false, false, "0x", width, zero, left);
			break;
		case 'c':
			put(o, (char)va_arg(ap, int));
			break;
		case 's':
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			u = strlen(s);
			if (!left)
				pad(o, width, u, ' ');
			while (*s)
				put(o, *s++);
			if (left)
				pad(o, width, u, ' ');
			break;
		case '%':
			put(o, '%');
			break;
		case '\0':
			return;
		default:
			put(o, '%');
			put(o, *fmt);
			break;
		}
	}
}

void guest_vprintf(const char *fmt, va_list ap)
{
	struct sink o = { 0 };

	guest_spin_lock(&console_lock);
	format(&o, fmt, ap);
	guest_spin_unlock(&console_lock);
}

void guest_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	guest_vprintf(fmt, ap);
	va_end(ap);
}

size_t guest_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	struct sink o = { buf, size, 0 };
	va_list ap;

	va_start(ap, fmt);
	format(&o, fmt, ap);
	va_end(ap);
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}
