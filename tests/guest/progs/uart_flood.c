// SPDX-License-Identifier: MIT
/*
 * uart_flood: a guest that treats the 16550 UART as badly as it can (see
 * guest_abi.h for the contract). It writes garbage to every register, then
 * floods THR without ever waiting for THRE, and reports what it saw: a
 * console nobody reads must cost the host nothing but dropped bytes.
 * Bulk bytes go out with one `rep outsb` gate call per string: a gate call
 * per byte would make the flood too slow to fill anything.
 */
#include "guest.h"

#define THR 0
#define DLL 0
#define DLM 1
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

static uint8_t chunk[GUEST_FLOOD_CHUNK];

static void uart_out(unsigned int reg, uint8_t v)
{
	outb(GUEST_UART_PORT + reg, v);
}

static uint8_t uart_in(unsigned int reg)
{
	return inb(GUEST_UART_PORT + reg);
}

/* IIR values a 16550A can show: bits 5:4 zero, FIFO bits both or neither,
 * an interrupt id of none, MS, THRE, RDA, RLS or character timeout. */
static bool iir_valid(uint8_t v)
{
	uint8_t id = v & 0x0f;

	if (v & 0x30)
		return false;
	if ((v & 0xc0) != 0 && (v & 0xc0) != 0xc0)
		return false;
	return id == 0x01 || id == 0x00 || id == 0x02 || id == 0x04 || id == 0x06 || id == 0x0c;
}

/* TEMT (shift register empty too) without THRE is impossible. */
static bool lsr_valid(uint8_t v)
{
	return !(v & LSR_TEMT) || (v & LSR_THRE);
}

/* Step 1: garbage everywhere. Returns the bytes it transmitted; counts
 * impossible register values in *bad. */
static uint32_t torture(uint32_t *bad)
{
	uint32_t seed = 0x9e3779b9, tx = 0;
	uint8_t lcr = 0x03, mcr = 0;

	for (unsigned int i = 0; i < GUEST_FLOOD_ROUNDS; i++) {
		unsigned int reg;
		uint8_t v;

		seed = seed * 1664525u + 1013904223u;
		reg = (seed >> 24) & 7;
		v = (uint8_t)(seed >> 8);
		uart_out(reg, v);
		if (reg == LCR)
			lcr = v;
		else if (reg == MCR)
			mcr = v;
		else if (reg == THR && !(lcr & LCR_DLAB) && !(mcr & MCR_LOOP))
			tx++;
		/* IIR sits at offset 2 whatever DLAB says. */
		*bad += !iir_valid(uart_in(IIR));
		*bad += !lsr_valid(uart_in(LSR));
		uart_in(MSR);
	}
	return tx;
}

static void probes(void)
{
	uint32_t v;

	uart_out(LCR, 0x83);
	uart_out(DLL, 0x34);
	uart_out(DLM, 0x12);
	v = uart_in(DLL) | (uint32_t)uart_in(DLM) << 8;
	uart_out(LCR, 0x03);
	report(v);

	uart_out(SCR, 0x5a);
	report(uart_in(SCR));

	uart_out(MCR, MCR_LOOP);
	uart_out(FCR, 0x07); /* FIFO on, both FIFOs cleared */
	uart_out(THR, 0xa5);
	report(uart_in(THR));
	uart_out(MCR, 0x1f);
	report(uart_in(MSR));
	uart_out(THR, 0x11);
	uart_out(THR, 0x22);
	uart_out(FCR, 0x03);
	report(uart_in(LSR) & LSR_DR);

	/* A sane line: 8N1, FIFO on, no loopback, OUT2 off, no interrupts. */
	uart_out(LCR, 0x03);
	uart_out(MCR, 0x03);
	uart_out(IER, 0);
	uart_out(FCR, 0x07);
}

int guest_main(unsigned int id, unsigned int count)
{
	volatile uint64_t *total = (volatile uint64_t *)GUEST_FLOOD_BYTES_ADDR;
	volatile uint64_t *sent_out = (volatile uint64_t *)GUEST_FLOOD_SENT_ADDR;
	volatile uint64_t *held_out = (volatile uint64_t *)GUEST_FLOOD_HELD_ADDR;
	uint64_t want = *total, sent = 0, held = 0, bad_temt = 0;
	uint32_t bad = 0, tx;

	if (id != 0)
		return 0;
	for (unsigned int i = 0; i < sizeof(chunk); i++)
		chunk[i] = (i % 64 == 63) ? '\n' : (uint8_t)('a' + i % 26);

	tx = torture(&bad);
	report(bad);
	report(tx);
	probes();

	while (!want || sent < want) {
		uint8_t lsr;

		outsb(GUEST_UART_PORT + THR, chunk, sizeof(chunk));
		sent += sizeof(chunk);
		lsr = uart_in(LSR);
		if (!(lsr & LSR_THRE)) {
			held++;
			bad_temt += !!(lsr & LSR_TEMT);
		}
		atomic_store_release(held_out, held);
		atomic_store_release(sent_out, sent);
	}
	report64(sent);
	report((uint32_t)held);
	report((uint32_t)bad_temt);
	return GUEST_STATUS_OK;
}
