// SPDX-License-Identifier: MIT
/*
 * 16550A UART (8 registers). Output goes to a file descriptor and an
 * in-memory log; input comes from kvmkit_uart_feed(). The transmitter is
 * always ready: a byte written to THR is sent at once, so LSR shows THRE and
 * TEMT whenever the guest looks (guests poll bit 5 before every byte).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "uart"
#include "core/internal.h"
#include <kvmkit/devices.h>
#include <kvmkit/irq.h>

enum {
	UART_RBR_THR = 0,
	UART_IER = 1,
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define IER_RDA 0x01  /* received data available */
#define IER_THRE 0x02 /* transmitter holding register empty */
#define IER_RLS 0x04  /* receiver line status */
#define IER_MS 0x08   /* modem status */
#define IIR_RLS 0x06
#define IIR_RDA 0x04
#define IIR_THRE 0x02
#define IIR_MS 0x00
#define MCR_OUT2 0x08 /* gates the interrupt line on PC serial ports */
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define IIR_NONE 0x01
#define IIR_FIFO 0xc0

#define RX_CAP 4096
#define OUT_LOG 65536

struct kvmkit_uart {
	struct kvmkit_vm *vm;
	uint16_t port;
	int out_fd;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool overrun;
	bool thre_pending; /* THR-empty interrupt latched, cleared by IIR read or THR write */
	struct kvmkit_line *line; /* NULL: no interrupt line (not owned) */
	uint8_t rx[RX_CAP];
	size_t rx_head, rx_len;
	char out[OUT_LOG];
	size_t out_len;
};

static void emit(struct kvmkit_uart *u, uint8_t c)
{
	if (u->out_len < OUT_LOG)
		u->out[u->out_len++] = (char)c;
	if (u->out_fd >= 0) {
		ssize_t n;

		do
			n = write(u->out_fd, &c, 1);
		while (n < 0 && errno == EINTR);
	}
}

static void rx_push(struct kvmkit_uart *u, uint8_t c)
{
	if (u->rx_len == RX_CAP) {
		u->overrun = true;
		return;
	}
	u->rx[(u->rx_head + u->rx_len) % RX_CAP] = c;
	u->rx_len++;
}

/* The highest-priority pending interrupt source, as IIR reports it. */
static uint8_t pending_iir(const struct kvmkit_uart *u)
{
	if ((u->ier & IER_RLS) && u->overrun)
		return IIR_RLS;
	if ((u->ier & IER_RDA) && u->rx_len)
		return IIR_RDA;
	if ((u->ier & IER_THRE) && u->thre_pending)
		return IIR_THRE;
	return IIR_NONE;
}

/* Drives the interrupt line from the device state (lock held). The line is a
 * level; on an edge-programmed IOAPIC pin each 0->1 change is one interrupt. */
static void update_irq(struct kvmkit_uart *u)
{
	bool level = pending_iir(u) != IIR_NONE && (u->mcr & MCR_OUT2);

	/* The handle only calls the irqchip when the level changes. */
	if (u->line)
		kvmkit_line_set(u->line, level, NULL);
}

static uint8_t reg_read(struct kvmkit_uart *u, unsigned int reg)
{
	uint8_t v = 0;

	switch (reg) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (u->rx_len) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % RX_CAP;
			u->rx_len--;
		}
		return v;
	case UART_IER:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case UART_IIR_FCR:
		v = pending_iir(u);
		/* Reading IIR acknowledges a THR-empty interrupt it reports. */
		if (v == IIR_THRE)
			u->thre_pending = false;
		return v | ((u->fcr & FCR_ENABLE) ? IIR_FIFO : 0);
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		v = LSR_THRE | LSR_TEMT | (u->rx_len ? LSR_DR : 0) | (u->overrun ? LSR_OE : 0);
		u->overrun = false; /* OE clears on read */
		return v;
	case UART_MSR:
		/* In loopback, MCR outputs appear on the modem inputs; otherwise
		 * report carrier, DSR and CTS so guests think a terminal is there. */
		if (u->mcr & MCR_LOOP)
			return (uint8_t)(((u->mcr & 0x0c) << 4) | ((u->mcr & 0x01) << 5) |
					 ((u->mcr & 0x02) << 3));
		return 0xb0;
	default:
		return u->scr;
	}
}

static void reg_write(struct kvmkit_uart *u, unsigned int reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			break;
		}
		if (u->mcr & MCR_LOOP)
			rx_push(u, v);
		else
			emit(u, v);
		/* Sent at once: the holding register is empty again. */
		u->thre_pending = true;
		break;
	case UART_IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling THRE interrupts while THR is empty raises one. */
		if ((v & IER_THRE) && !(u->ier & IER_THRE))
			u->thre_pending = true;
		u->ier = v & 0x0f;
		break;
	case UART_IIR_FCR:
		u->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			u->rx_len = 0;
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		u->mcr = v & 0x1f;
		break;
	case UART_SCR:
		u->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

static void uart_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	struct kvmkit_uart *u = opaque;

	memset(data, 0, size);
	pthread_mutex_lock(&u->lock);
	/* Byte registers: wider accesses read the first register only. */
	((uint8_t *)data)[0] = reg_read(u, (unsigned int)off);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static void uart_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmkit_uart *u = opaque;

	pthread_mutex_lock(&u->lock);
	reg_write(u, (unsigned int)off, ((const uint8_t *)data)[0]);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
}

static const struct kvmkit_io_ops uart_ops = { .read = uart_read, .write = uart_write };

int kvmkit_uart_create(struct kvmkit_vm *vm, uint16_t port, int out_fd, struct kvmkit_uart **out)
{
	struct kvmkit_uart *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return kvmk_err_resource("kvmkit_uart_create", ENOMEM, NULL);
	u->vm = vm;
	u->port = port;
	u->out_fd = out_fd;
	u->lcr = 0x03; /* 8N1 */
	u->dll = 0x0c; /* 9600 baud */
	pthread_mutex_init(&u->lock, NULL);
	r = kvmkit_bus_register(kvmkit_vm_pio_bus(vm), port, 8, "uart16550", &uart_ops, u);
	if (r) {
		pthread_mutex_destroy(&u->lock);
		free(u);
		return r;
	}
	*out = u;
	return 0;
}

void kvmkit_uart_destroy(struct kvmkit_uart *u)
{
	if (!u)
		return;
	kvmkit_bus_unregister(kvmkit_vm_pio_bus(u->vm), u->port);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

size_t kvmkit_uart_feed(struct kvmkit_uart *u, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t n;

	pthread_mutex_lock(&u->lock);
	for (n = 0; n < len && u->rx_len < RX_CAP; n++)
		rx_push(u, b[n]);
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

int kvmkit_uart_connect_irq(struct kvmkit_uart *u, struct kvmkit_line *line)
{
	if (!line)
		return kvmk_err_param("kvmkit_uart_connect_irq", "line", "no line", "NULL");
	pthread_mutex_lock(&u->lock);
	u->line = line;
	update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

size_t kvmkit_uart_output(struct kvmkit_uart *u, char *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&u->lock);
	n = u->out_len < len ? u->out_len : len;
	memcpy(buf, u->out, n);
	pthread_mutex_unlock(&u->lock);
	return n;
}
