// SPDX-License-Identifier: MIT
/*
 * flush_storm: a hostile guest of the test device's page flush (port 0xe4).
 * It fills pages across its RAM, flushes them, thousands at a time, mixed
 * with values that are not RAM pages at all, and checks that every filled
 * page kept its data. The mode and sizes come from the host (flush_abi.h).
 * Only vCPU 0 works; the flushes go out with `rep outsl` at CPL0, one gate
 * call per batch, since each gate call is slow where CPL0 is emulated.
 */
#include "guest.h"
#include "flush_abi.h"

#define PAGE 0x1000u
#define LOW_RAM_END GUEST_U64(0xc0000000) /* the x86 MMIO hole */
#define BATCH 4096u

struct outs_req {
	uint16_t port;
	const uint32_t *buf;
	uint64_t count;
};

static uint64_t outs32(uint64_t arg)
{
	const struct outs_req *q = (const struct outs_req *)arg;
	const uint32_t *src = q->buf;
	uint64_t n = q->count;

	__asm__ __volatile__("cld; rep outsl" : "+S"(src), "+c"(n) : "d"(q->port) : "memory");
	return 0;
}

/* Writes @n values from @buf to @port, in batches. */
static void send(uint16_t port, const uint32_t *buf, uint64_t n)
{
	for (uint64_t i = 0; i < n; i += BATCH) {
		struct outs_req q = { port, buf + i, n - i < BATCH ? n - i : BATCH };

		guest_cpl0_call(outs32, (uint64_t)&q);
	}
}

static volatile uint32_t *param(uint64_t addr)
{
	return (volatile uint32_t *)addr;
}

static void handshake(uint32_t phase)
{
	atomic_store_release(param(FLUSH_PHASE), phase);
	while (atomic_load_acquire(param(FLUSH_ACK)) != phase)
		cpu_relax();
}

static void fill(uint64_t p)
{
	*(volatile uint64_t *)p = FLUSH_WORD(p);
	*(volatile uint64_t *)(p + PAGE - 8) = ~FLUSH_WORD(p);
}

static bool intact(uint64_t p)
{
	return *(volatile uint64_t *)p == FLUSH_WORD(p) &&
	       *(volatile uint64_t *)(p + PAGE - 8) == ~FLUSH_WORD(p);
}

/* Hostile values: not pages of RAM, or RAM the guest itself runs from. */
static uint32_t hostile(uint32_t k, uint64_t ram_end, uint32_t *seed)
{
	const uint32_t fixed[] = {
		0, /* page 0 (RAM, boot area) */
		0xfff, /* unaligned */
		(uint32_t)ram_end, /* one past RAM */
		(uint32_t)ram_end - 1, /* the last RAM page, unaligned */
		(uint32_t)ram_end + 0x123456, /* past RAM */
		0xbffff000, /* below the MMIO hole */
		0xfec00000, /* IOAPIC */
		0xfee00000, /* LAPIC */
		0xff000000, /* the test device's own MMIO */
		0xfffff000,
		0xffffffff,
		GUEST_ABI_BASE, /* the page holding the parameters */
		GUEST_LOAD_ADDR, /* the guest's own code */
		(uint32_t)FLUSH_LIST, /* the list being sent */
	};

	if (k % 2)
		return fixed[(k / 2) % ARRAY_SIZE(fixed)];
	*seed = *seed * 1664525u + 1013904223u; /* garbage, anywhere */
	return *seed;
}

static int storm(uint64_t ram_end)
{
	uint32_t *list = (uint32_t *)FLUSH_LIST;
	uint32_t max = *param(FLUSH_MAX_TARGETS), seed = 0x5eed;
	uint64_t targets = (ram_end - FLUSH_FIRST) / FLUSH_STRIDE, n = 0, nh = 0, bad = 0;
	uint64_t first_bad = 0;

	if (max && max < targets)
		targets = max;
	while ((targets + targets / FLUSH_HOSTILE_EVERY) > FLUSH_LIST_MAX)
		targets--;
	for (uint64_t i = 0; i < targets; i++)
		fill(FLUSH_FIRST + i * FLUSH_STRIDE);
	for (uint64_t i = 0; i < targets; i++) {
		/* Anywhere inside the page: the device flushes the page. */
		list[n++] = (uint32_t)(FLUSH_FIRST + i * FLUSH_STRIDE + ((i * 0x35) & 0xffc));
		if (i % FLUSH_HOSTILE_EVERY == FLUSH_HOSTILE_EVERY - 1)
			list[n++] = hostile((uint32_t)nh++, ram_end, &seed);
	}
	if (*param(FLUSH_WAIT))
		handshake(1);
	send(FLUSH_PORT, list, n);
	for (uint64_t i = 0; i < targets; i++) {
		uint64_t p = FLUSH_FIRST + i * FLUSH_STRIDE;

		if (!intact(p) && !bad++)
			first_bad = p;
	}
	report((uint32_t)targets);
	report((uint32_t)nh);
	report((uint32_t)bad);
	report((uint32_t)first_bad);
	return bad ? GUEST_STATUS_FAIL : GUEST_STATUS_OK;
}

static uint64_t read_all(void)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < FLUSH_REFAULT_PAGES; i++)
		sum += *(volatile uint64_t *)(FLUSH_REFAULT_FIRST + i * FLUSH_REFAULT_STRIDE);
	return sum;
}

static int refault(void)
{
	uint32_t *list = (uint32_t *)FLUSH_LIST;
	uint64_t bad = 0;

	for (uint64_t i = 0; i < FLUSH_REFAULT_PAGES; i++) {
		list[i] = (uint32_t)(FLUSH_REFAULT_FIRST + i * FLUSH_REFAULT_STRIDE);
		fill(list[i]);
	}
	read_all();
	handshake(1);
	send(FLUSH_SCRATCH_PORT, list, FLUSH_REFAULT_PAGES);
	read_all();
	handshake(2);
	send(FLUSH_PORT, list, FLUSH_REFAULT_PAGES);
	read_all();
	handshake(3);
	for (uint64_t i = 0; i < FLUSH_REFAULT_PAGES; i++)
		bad += !intact(list[i]);
	report(FLUSH_REFAULT_PAGES);
	report((uint32_t)bad);
	return bad ? GUEST_STATUS_FAIL : GUEST_STATUS_OK;
}

int guest_main(unsigned int id, unsigned int count)
{
	uint64_t ram_end = guest_this_cpu()->ram_size;

	if (id != 0)
		return 0;
	if (ram_end > LOW_RAM_END)
		ram_end = LOW_RAM_END;
	outl(FLUSH_PROBE_PORT, FLUSH_PROBE_VALUE);
	if (inl(FLUSH_PROBE_PORT) != FLUSH_PROBE_VALUE)
		return FLUSH_STATUS_NO_TESTDEV;
	if (*param(FLUSH_MODE) == FLUSH_MODE_REFAULT)
		return refault();
	return storm(ram_end);
}
