// SPDX-License-Identifier: MIT
/*
 * virtio_drv: a minimal virtio 1.x driver for virtio-mmio (version 2)
 * devices, run at CPL3 (see virtio_abi.h for what the host passes and
 * reads back). One request in flight per device at a time, a queue of 16
 * entries, used-buffer interrupts counted by a CPL0 handler that reads
 * and acknowledges InterruptStatus before the EOI, as Linux's does.
 *
 * Normal mode: three virtio-rng requests; on virtio-blk the capacity
 * (config space, with the generation check), a pattern write, a flush, the
 * read-back through an indirect table, GET_ID, WRITE_ZEROES, and the errors
 * for a read past the end and an unknown request type. Hostile mode: each
 * of several garbage rings must make the rng device set NEEDS_RESET with a
 * config interrupt; then register abuse and a notify flood; then a reset
 * and an ordinary request must work.
 */
#include "guest.h"
#include "virtio_abi.h"

#define LAPIC_BASE GUEST_U64(0xfee00000)
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define IOAPIC_BASE GUEST_U64(0xfec00000)

#include "virtio_mmio_regs.h"

#define F_INDIRECT 28
#define F_EVENT_IDX 29

#define D_NEXT 1
#define D_WRITE 2
#define D_INDIRECT 4

#define QN 16
#define VEC_BASE 0x40
#define SPIN_LIMIT 100000000u

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct dev {
	uint64_t base;
	unsigned int pin;
	uint64_t features; /* negotiated */
	struct desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[QN], used_event */
	volatile uint8_t *used;
	uint16_t avail_idx, last_used;
	volatile uint32_t irqs, spurious, config_irqs;
	/* Interrupts of a request cut short by a reset: not a request's. */
	uint32_t reset_irqs, reset_spurious;
	uint32_t want_irqs; /* set before a request is published */
	uint32_t reqs;
	/* The fields above from desc to last_used are queue @cur's; the
	 * other queue's wait here (select_q). */
	struct qsave {
		struct desc *desc;
		volatile uint16_t *avail;
		volatile uint8_t *used;
		uint16_t avail_idx, last_used;
	} saved[2];
	unsigned int cur;
};

/* [device][queue][descriptors, driver area, device area] */
static uint8_t rings[3][2][3][4096] __attribute__((aligned(4096)));
static uint8_t cbuf[64];
static struct desc itable[8] __attribute__((aligned(16)));
static uint8_t wbuf[4096], rbuf[4096], rngbuf[3][64];
static struct {
	uint32_t type, reserved;
	uint64_t sector;
} hdr;
static struct {
	uint64_t sector;
	uint32_t num, flags;
} range;
static volatile uint8_t status;
static char serial[24];
static struct dev devs[3];
static const volatile uint64_t *params = (const volatile uint64_t *)VDRV_PARAMS;
static volatile uint32_t *results = (volatile uint32_t *)VDRV_RESULTS;

static uint32_t rd(struct dev *d, uint32_t off)
{
	return mmio_read32(d->base + off);
}

static void wr(struct dev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->base + off, v);
}

static int fail(int why, uint64_t a, uint64_t b)
{
	guest_printf("virtio_drv: check %d failed: 0x%llx 0x%llx\n", why, (unsigned long long)a,
		     (unsigned long long)b);
	report((uint32_t)why);
	report64(a);
	report64(b);
	return why;
}

#define CHECK(c, why, a, b)                           \
	do {                                          \
		if (!(c))                             \
			return fail((why), (a), (b)); \
	} while (0)

/* CPL0, IF = 0: read and acknowledge what the device signalled, then EOI. */
static void virtio_irq(unsigned int vector)
{
	struct dev *d = &devs[vector - VEC_BASE];
	uint32_t isr = rd(d, R_ISR);

	if (isr) {
		wr(d, R_ACK, isr);
		d->irqs++;
		if (isr & 2)
			d->config_irqs++;
	} else {
		d->spurious++;
	}
	mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

static void ioapic_route(unsigned int pin, unsigned int vector, bool level)
{
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin + 1);
	mmio_write32(IOAPIC_BASE + 0x10, 0); /* APIC id 0, physical */
	mmio_write32(IOAPIC_BASE, 0x10 + 2 * pin);
	mmio_write32(IOAPIC_BASE + 0x10, vector | (level ? 1u << 15 : 0));
}

/* Makes queue @q the one submit() and complete() work on. */
static void select_q(struct dev *d, unsigned int q)
{
	struct qsave *o = &d->saved[d->cur], *n = &d->saved[q];

	o->desc = d->desc;
	o->avail = d->avail;
	o->used = d->used;
	o->avail_idx = d->avail_idx;
	o->last_used = d->last_used;
	d->desc = n->desc;
	d->avail = n->avail;
	d->used = n->used;
	d->avail_idx = n->avail_idx;
	d->last_used = n->last_used;
	d->cur = q;
}

static int dev_init_n(struct dev *d, unsigned int idx, uint32_t device_id, uint64_t want,
		      unsigned int nq);

/* Reset, negotiate @want (VERSION_1 always), set up queue 0. */
static int dev_init(struct dev *d, unsigned int idx, uint32_t device_id, uint64_t want)
{
	return dev_init_n(d, idx, device_id, want, 1);
}

static int queue_init(struct dev *d, unsigned int idx, unsigned int q)
{
	select_q(d, q);
	memset(rings[idx][q], 0, sizeof(rings[idx][q]));
	d->desc = (struct desc *)rings[idx][q][0];
	d->avail = (volatile uint16_t *)rings[idx][q][1];
	d->used = rings[idx][q][2];
	d->avail_idx = d->last_used = 0;
	wr(d, R_QUEUE_SEL, q);
	CHECK(rd(d, R_QUEUE_READY) == 0 && rd(d, R_QUEUE_NUM_MAX) >= QN, VDRV_FAIL_INIT, 6,
	      rd(d, R_QUEUE_NUM_MAX));
	wr(d, R_QUEUE_NUM, QN);
	wr(d, R_DESC, (uint32_t)(uint64_t)d->desc);
	wr(d, R_DESC + 4, 0);
	wr(d, R_DRIVER, (uint32_t)(uint64_t)d->avail);
	wr(d, R_DRIVER + 4, 0);
	wr(d, R_DEVICE, (uint32_t)(uint64_t)d->used);
	wr(d, R_DEVICE + 4, 0);
	wr(d, R_QUEUE_READY, 1);
	CHECK(rd(d, R_QUEUE_READY) == 1, VDRV_FAIL_INIT, 7, 0);
	return 0;
}

static int dev_init_n(struct dev *d, unsigned int idx, uint32_t device_id, uint64_t want,
		      unsigned int nq)
{
	uint64_t offered;
	int r;

	wr(d, R_STATUS, 0);
	CHECK(rd(d, R_STATUS) == 0, VDRV_FAIL_INIT, 1, rd(d, R_STATUS));
	CHECK(rd(d, R_MAGIC) == 0x74726976 && rd(d, R_VERSION) == 2, VDRV_FAIL_INIT, 2,
	      rd(d, R_VERSION));
	CHECK(rd(d, R_DEVICE_ID) == device_id, VDRV_FAIL_INIT, 3, rd(d, R_DEVICE_ID));
	wr(d, R_STATUS, S_ACK);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DEV_FEATURES_SEL, 0);
	offered = rd(d, R_DEV_FEATURES);
	wr(d, R_DEV_FEATURES_SEL, 1);
	offered |= (uint64_t)rd(d, R_DEV_FEATURES) << 32;
	CHECK(offered & (1ull << 32), VDRV_FAIL_INIT, 4, offered);
	d->features = (want | 1ull << 32) & offered;
	wr(d, R_DRV_FEATURES_SEL, 0);
	wr(d, R_DRV_FEATURES, (uint32_t)d->features);
	wr(d, R_DRV_FEATURES_SEL, 1);
	wr(d, R_DRV_FEATURES, (uint32_t)(d->features >> 32));
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	CHECK(rd(d, R_STATUS) & S_FEATURES_OK, VDRV_FAIL_INIT, 5, rd(d, R_STATUS));
	for (unsigned int q = 0; q < nq; q++) {
		r = queue_init(d, idx, q);
		if (r)
			return r;
	}
	select_q(d, 0);
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return 0;
}

static bool has(const struct dev *d, unsigned int bit)
{
	return d->features & (1ull << bit);
}

static uint16_t used_idx(struct dev *d)
{
	return __atomic_load_n((volatile uint16_t *)(d->used + 2), __ATOMIC_ACQUIRE);
}

/* Publishes chain @head and notifies the device if it asked for it. */
static void submit(struct dev *d, uint16_t head)
{
	uint16_t old = d->avail_idx, now = (uint16_t)(old + 1);

	/* The interrupt may come before submit() returns. */
	d->want_irqs = d->irqs + 1;
	d->avail[2 + old % QN] = head;
	if (has(d, F_EVENT_IDX))
		d->avail[2 + QN] = d->last_used; /* an interrupt for the next used entry */
	__atomic_store_n(&d->avail[1], now, __ATOMIC_SEQ_CST);
	d->avail_idx = now;
	if (has(d, F_EVENT_IDX)) {
		uint16_t ev = *(volatile uint16_t *)(d->used + 4 + 8 * QN);

		if ((uint16_t)(now - ev - 1) >= (uint16_t)(now - old))
			return;
	} else if (*(volatile uint16_t *)d->used & 1) {
		return; /* VIRTQ_USED_F_NO_NOTIFY */
	}
	wr(d, R_QUEUE_NOTIFY, d->cur);
}

/* Waits for the request's used entry and its interrupt; *len: used len. */
static int complete(struct dev *d, uint32_t *len)
{
	uint32_t id;
	unsigned int i;

	for (i = 0; i < SPIN_LIMIT && used_idx(d) == d->last_used; i++)
		cpu_relax();
	CHECK(i < SPIN_LIMIT, VDRV_FAIL_TIMEOUT, d->base, 1);
	for (i = 0; i < SPIN_LIMIT && d->irqs < d->want_irqs; i++)
		cpu_relax();
	CHECK(i < SPIN_LIMIT, VDRV_FAIL_TIMEOUT, d->base, 2);
	id = *(volatile uint32_t *)(d->used + 4 + 8 * (d->last_used % QN));
	*len = *(volatile uint32_t *)(d->used + 8 + 8 * (d->last_used % QN));
	CHECK(id == 0, VDRV_FAIL_TIMEOUT, d->base, id);
	d->last_used++;
	d->reqs++;
	return 0;
}

static void set_desc(struct desc *t, unsigned int i, const volatile void *buf, uint32_t len,
		     uint16_t flags)
{
	t[i].addr = (uint64_t)buf;
	t[i].len = len;
	t[i].flags = flags;
	t[i].next = (uint16_t)(i + 1);
}

static int rng_request(struct dev *d, uint8_t *buf)
{
	uint32_t len;
	int r;

	set_desc(d->desc, 0, buf, 64, D_WRITE);
	submit(d, 0);
	r = complete(d, &len);
	if (r)
		return r;
	CHECK(len == 64, VDRV_FAIL_RNG, len, 0);
	return 0;
}

static int rng_test(struct dev *d)
{
	int r;

	for (unsigned int i = 0; i < 3; i++) {
		r = rng_request(d, rngbuf[i]);
		if (r)
			return r;
	}
	/* 64 random bytes twice the same, or all zero: not random. */
	CHECK(memcmp(rngbuf[0], rngbuf[1], 64) && memcmp(rngbuf[1], rngbuf[2], 64), VDRV_FAIL_RNG,
	      1, 0);
	return 0;
}

/* One blk request: header, then @data (@len bytes, written by the device
 * when @in), then the status byte; through an indirect table if asked. */
static int blk_request(struct dev *d, uint32_t type, uint64_t sector, volatile void *data,
		       uint32_t len, bool in, bool indirect, uint32_t *used_len)
{
	struct desc *t = indirect ? itable : d->desc;
	unsigned int n = 0;

	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = sector;
	status = 0xee;
	set_desc(t, n++, &hdr, sizeof(hdr), D_NEXT);
	if (len)
		set_desc(t, n++, data, len, D_NEXT | (in ? D_WRITE : 0));
	set_desc(t, n++, &status, 1, D_WRITE);
	if (indirect)
		set_desc(d->desc, 0, itable, n * sizeof(struct desc), D_INDIRECT);
	submit(d, 0);
	return complete(d, used_len);
}

static int blk_expect(struct dev *d, uint32_t type, uint64_t sector, volatile void *data,
		      uint32_t len, bool in, bool indirect, uint8_t want_status)
{
	uint32_t used_len;
	int r = blk_request(d, type, sector, data, len, in, indirect, &used_len);

	if (r)
		return r;
	CHECK(status == want_status, VDRV_FAIL_BLK_STATUS, type << 8 | status, want_status);
	CHECK(used_len >= 1, VDRV_FAIL_BLK_STATUS, type, used_len);
	return 0;
}

static int blk_test(struct dev *d)
{
	bool ro = params[VDRV_P_BLK_RO], ind = has(d, F_INDIRECT);
	uint32_t gen, lo, hi;
	int r;

	/* Capacity: two 32-bit reads, consistent under one generation. */
	do {
		gen = rd(d, R_CONFIG_GEN);
		lo = rd(d, R_CONFIG);
		hi = rd(d, R_CONFIG + 4);
	} while (gen != rd(d, R_CONFIG_GEN));
	CHECK(((uint64_t)hi << 32 | lo) == params[VDRV_P_BLK_SECTORS], VDRV_FAIL_BLK_CONFIG,
	      (uint64_t)hi << 32 | lo, params[VDRV_P_BLK_SECTORS]);
	wr(d, R_DEV_FEATURES_SEL, 0);
	CHECK(!!(rd(d, R_DEV_FEATURES) & (1u << 5)) == ro, VDRV_FAIL_BLK_CONFIG, 5, ro);
	for (unsigned int i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = VDRV_PATTERN(i);
	if (ro)
		return blk_expect(d, 1, VDRV_PATTERN_SECTOR, wbuf, sizeof(wbuf), false, false, 1);
	r = blk_expect(d, 1, VDRV_PATTERN_SECTOR, wbuf, sizeof(wbuf), false, false, 0);
	if (!r)
		r = blk_expect(d, 4, 0, NULL, 0, false, false, 0); /* flush */
	if (!r)
		r = blk_expect(d, 0, VDRV_PATTERN_SECTOR, rbuf, sizeof(rbuf), true, ind, 0);
	if (r)
		return r;
	CHECK(!memcmp(rbuf, wbuf, sizeof(rbuf)), VDRV_FAIL_BLK_DATA, 1, 0);
	r = blk_expect(d, 8, 0, rbuf, 20, true, false, 0); /* GET_ID */
	if (r)
		return r;
	CHECK(!memcmp(rbuf, serial, 20), VDRV_FAIL_BLK_DATA, 2, 0);
	/* WRITE_ZEROES over a range first written with the pattern. */
	r = blk_expect(d, 1, VDRV_ZERO_SECTOR, wbuf, sizeof(wbuf), false, false, 0);
	range.sector = VDRV_ZERO_SECTOR;
	range.num = 8;
	range.flags = 0;
	if (!r)
		r = blk_expect(d, 13, 0, &range, sizeof(range), false, false, 0);
	if (!r)
		r = blk_expect(d, 0, VDRV_ZERO_SECTOR, rbuf, sizeof(rbuf), true, ind, 0);
	if (r)
		return r;
	for (unsigned int i = 0; i < sizeof(rbuf); i++)
		CHECK(rbuf[i] == 0, VDRV_FAIL_BLK_DATA, 3, i);
	/* Past the end: IOERR; an unknown type: UNSUPP. */
	r = blk_expect(d, 0, params[VDRV_P_BLK_SECTORS] - 1, rbuf, sizeof(rbuf), true, false, 1);
	return r ? r : blk_expect(d, 0x77, 0, NULL, 0, false, false, 2);
}

/* One garbage ring on @d: the device must set NEEDS_RESET and send a
 * config interrupt; then it is reset by the next dev_init(). */
static int hostile_case(struct dev *d, unsigned int c)
{
	uint32_t cfg = d->config_irqs;
	unsigned int i;
	int r = dev_init(d, 0, 4, (1ull << F_INDIRECT) | (1ull << F_EVENT_IDX));

	if (r)
		return r;
	switch (c) {
	case 0: /* a loop */
		set_desc(d->desc, 0, rngbuf[0], 8, D_WRITE | D_NEXT);
		d->desc[0].next = 1;
		set_desc(d->desc, 1, rngbuf[0], 8, D_WRITE | D_NEXT);
		d->desc[1].next = 0;
		break;
	case 1: /* a wild address */
		set_desc(d->desc, 0, (void *)0xfffffff000000000ull, 4096, D_WRITE);
		break;
	case 2: /* a huge length */
		set_desc(d->desc, 0, rngbuf[0], 0xfffffff0u, D_WRITE);
		break;
	case 3: /* next past the table */
		set_desc(d->desc, 0, rngbuf[0], 8, D_WRITE | D_NEXT);
		d->desc[0].next = 999;
		break;
	case 4: /* indirect in indirect */
		set_desc(itable, 0, itable, 16, D_INDIRECT);
		set_desc(d->desc, 0, itable, 16, D_INDIRECT);
		break;
	case 5: /* a head past the queue: published by hand below */
		break;
	case 6: /* avail idx far ahead of the device */
		break;
	}
	if (c == 5) {
		d->avail[2] = 4000;
		__atomic_store_n(&d->avail[1], 1, __ATOMIC_SEQ_CST);
		wr(d, R_QUEUE_NOTIFY, 0);
	} else if (c == 6) {
		__atomic_store_n(&d->avail[1], 1000, __ATOMIC_SEQ_CST);
		wr(d, R_QUEUE_NOTIFY, 0);
	} else {
		submit(d, 0);
	}
	for (i = 0; i < SPIN_LIMIT && (!(rd(d, R_STATUS) & S_NEEDS_RESET) || d->config_irqs == cfg);
	     i++)
		cpu_relax();
	CHECK(i < SPIN_LIMIT, VDRV_FAIL_HOSTILE, c, rd(d, R_STATUS));
	CHECK(used_idx(d) == 0, VDRV_FAIL_HOSTILE, c, used_idx(d));
	results[VDRV_R_HOSTILE_CASES]++;
	return 0;
}

#define HOSTILE_CASES 7

static int hostile(struct dev *d)
{
	int r;

	for (unsigned int c = 0; c < HOSTILE_CASES; c++) {
		r = hostile_case(d, c);
		if (r)
			return r;
	}
	/* A legacy driver (no VERSION_1) does not get FEATURES_OK. */
	wr(d, R_STATUS, 0);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DRV_FEATURES_SEL, 1);
	wr(d, R_DRV_FEATURES, 0);
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	CHECK(!(rd(d, R_STATUS) & S_FEATURES_OK), VDRV_FAIL_REGS, 1, rd(d, R_STATUS));
	r = dev_init(d, 0, 4, 0);
	if (r)
		return r;
	/* Registers take 32-bit accesses only; other sizes change nothing. */
	mmio_write8(d->base + R_STATUS, 0);
	mmio_write16(d->base + R_QUEUE_SEL, 5);
	CHECK(mmio_read16(d->base + R_MAGIC) == 0 && rd(d, R_STATUS) & S_DRIVER_OK, VDRV_FAIL_REGS,
	      2, rd(d, R_STATUS));
	/* A live queue's layout cannot change. */
	wr(d, R_QUEUE_NUM, 2);
	CHECK(rd(d, R_QUEUE_NUM) == QN, VDRV_FAIL_REGS, 3, rd(d, R_QUEUE_NUM));
	/* Notify flood: an empty queue through the ioeventfd, queues that do
	 * not exist through the MMIO handler. */
	for (unsigned int i = 0; i < 20000; i++)
		wr(d, R_QUEUE_NOTIFY, 0);
	for (unsigned int i = 0; i < 200; i++)
		wr(d, R_QUEUE_NOTIFY, 7 + i);
	/* A misaligned ring is refused at QueueReady. */
	wr(d, R_STATUS, 0);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DRV_FEATURES_SEL, 1);
	wr(d, R_DRV_FEATURES, 1);
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(d, R_QUEUE_NUM, QN);
	wr(d, R_DESC, (uint32_t)(uint64_t)d->desc + 8);
	wr(d, R_QUEUE_READY, 1);
	CHECK(rd(d, R_QUEUE_READY) == 0, VDRV_FAIL_REGS, 4, 0);
	/* And after all that, a reset makes it work again. */
	r = dev_init(d, 0, 4, (1ull << F_INDIRECT) | (1ull << F_EVENT_IDX));
	return r ? r : rng_test(d);
}

#define BLK_WANT (1ull << 5 | 1ull << 9 | 1ull << 13 | 1ull << 14)

/* virtio-console: a receive buffer gets the host's input, the transmit
 * queue carries the reply; each completion is one interrupt. */
static int console_test(struct dev *d, uint64_t want)
{
	static const char input[] = VDRV_CON_INPUT, reply[] = VDRV_CON_REPLY;
	static char out[sizeof(reply) + sizeof(input)];
	uint32_t len;
	int r = dev_init_n(d, 2, 3, want, 2);

	if (r)
		return r;
	/* Input: one receive buffer, bigger than the input. */
	set_desc(d->desc, 0, cbuf, sizeof(cbuf), D_WRITE);
	submit(d, 0);
	r = complete(d, &len);
	if (r)
		return r;
	CHECK(len == sizeof(input) - 1 && !memcmp(cbuf, input, len), VDRV_FAIL_CONSOLE, len, 0);
	/* Output: the reply and the input, in two descriptors. */
	memcpy(out, reply, sizeof(reply) - 1);
	memcpy(out + sizeof(reply) - 1, cbuf, len);
	select_q(d, 1);
	set_desc(d->desc, 0, out, sizeof(reply) - 1, D_NEXT);
	set_desc(d->desc, 1, out + sizeof(reply) - 1, len, 0);
	submit(d, 0);
	r = complete(d, &len);
	select_q(d, 0);
	if (r)
		return r;
	CHECK(len == 0, VDRV_FAIL_CONSOLE, len, 1);
	return 0;
}

/* Waits for NEEDS_RESET and its config interrupt on @d. */
static int wait_needs_reset(struct dev *d, uint32_t cfg, unsigned int c)
{
	unsigned int i;

	for (i = 0; i < SPIN_LIMIT && (!(rd(d, R_STATUS) & S_NEEDS_RESET) || d->config_irqs == cfg);
	     i++)
		cpu_relax();
	CHECK(i < SPIN_LIMIT, VDRV_FAIL_HOSTILE, c, rd(d, R_STATUS));
	results[VDRV_R_HOSTILE_CASES]++;
	return 0;
}

/* virtio-blk: a request with no byte for its status breaks the queue; a
 * reset with a read in flight returns with the read finished (nothing
 * lands in memory or the used ring afterwards); then the disk works. */
static int blk_hostile(struct dev *d)
{
	uint32_t cfg = d->config_irqs, irqs, spurious;
	uint16_t used;
	int r = dev_init(d, 1, 2, BLK_WANT);

	if (r)
		return r;
	hdr.type = 0;
	hdr.sector = 0;
	set_desc(d->desc, 0, &hdr, sizeof(hdr), D_NEXT);
	set_desc(d->desc, 1, rbuf, 512, 0);
	submit(d, 0);
	r = wait_needs_reset(d, cfg, 100);
	if (!r)
		r = dev_init(d, 1, 2, BLK_WANT);
	if (r)
		return r;
	irqs = d->irqs;
	spurious = d->spurious;
	hdr.type = 0;
	hdr.sector = 0;
	set_desc(d->desc, 0, &hdr, sizeof(hdr), D_NEXT);
	set_desc(d->desc, 1, rbuf, sizeof(rbuf), D_NEXT | D_WRITE);
	set_desc(d->desc, 2, &status, 1, D_WRITE);
	submit(d, 0);
	wr(d, R_STATUS, 0);
	used = used_idx(d);
	memset(rbuf, 0x55, sizeof(rbuf));
	CHECK(rd(d, R_STATUS) == 0, VDRV_FAIL_HOSTILE, 101, rd(d, R_STATUS));
	for (unsigned int i = 0; i < 10000000; i++)
		cpu_relax();
	CHECK(used_idx(d) == used, VDRV_FAIL_HOSTILE, 102, used_idx(d));
	for (unsigned int i = 0; i < sizeof(rbuf); i++)
		CHECK(rbuf[i] == 0x55, VDRV_FAIL_HOSTILE, 103, i);
	results[VDRV_R_BLK_RESET_DONE] = used;
	d->reset_irqs += d->irqs - irqs;
	d->reset_spurious += d->spurious - spurious;
	r = dev_init(d, 1, 2, BLK_WANT);
	return r ? r : blk_test(d);
}

static int run(void)
{
	bool level = params[VDRV_P_LEVEL];
	uint64_t want = 0;
	int r;

	if (params[VDRV_P_MAGIC] != VDRV_MAGIC)
		return fail(VDRV_FAIL_PARAMS, params[VDRV_P_MAGIC], VDRV_MAGIC);
	if (params[VDRV_P_FEATURES] & 1)
		want |= 1ull << F_EVENT_IDX;
	if (params[VDRV_P_FEATURES] & 2)
		want |= 1ull << F_INDIRECT;
	memcpy(serial, (const void *)&params[VDRV_P_SERIAL], sizeof(serial));
	devs[0].base = params[VDRV_P_RNG_BASE];
	devs[0].pin = (unsigned int)params[VDRV_P_RNG_PIN];
	devs[1].base = params[VDRV_P_BLK_BASE];
	devs[1].pin = (unsigned int)params[VDRV_P_BLK_PIN];
	devs[2].base = params[VDRV_P_CON_BASE];
	devs[2].pin = (unsigned int)params[VDRV_P_CON_PIN];
	/* The PIC masked (pins below 16 reach it too), the LAPIC on. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x1ff);
	mmio_write32(LAPIC_BASE + LAPIC_TPR, 0);
	for (unsigned int i = 0; i < 3; i++) {
		if (!devs[i].base)
			continue;
		guest_irq_install(VEC_BASE + i, virtio_irq);
		ioapic_route(devs[i].pin, VEC_BASE + i, level);
	}
	local_irq_enable();
	if (params[VDRV_P_MODE] == VDRV_HOSTILE) {
		r = hostile(&devs[0]);
		if (!r && devs[1].base)
			r = blk_hostile(&devs[1]);
	} else {
		r = dev_init(&devs[0], 0, 4, want);
		if (!r)
			r = rng_test(&devs[0]);
		/* blk: RO, FLUSH, DISCARD, WRITE_ZEROES where offered. */
		if (!r && devs[1].base)
			r = dev_init(&devs[1], 1, 2, want | BLK_WANT);
		if (!r && devs[1].base)
			r = blk_test(&devs[1]);
		if (!r && devs[2].base)
			r = console_test(&devs[2], want);
	}
	local_irq_disable();
	results[VDRV_R_RNG_IRQS] = devs[0].irqs;
	results[VDRV_R_RNG_SPURIOUS] = devs[0].spurious;
	results[VDRV_R_RNG_REQS] = devs[0].reqs;
	results[VDRV_R_RNG_CONFIG_IRQS] = devs[0].config_irqs;
	results[VDRV_R_BLK_IRQS] = devs[1].irqs - devs[1].reset_irqs;
	results[VDRV_R_BLK_SPURIOUS] = devs[1].spurious - devs[1].reset_spurious;
	results[VDRV_R_BLK_CONFIG_IRQS] = devs[1].config_irqs;
	results[VDRV_R_BLK_RESET_IRQS] = devs[1].reset_irqs + devs[1].reset_spurious;
	results[VDRV_R_BLK_REQS] = devs[1].reqs;
	results[VDRV_R_CON_IRQS] = devs[2].irqs;
	results[VDRV_R_CON_SPURIOUS] = devs[2].spurious;
	results[VDRV_R_CON_REQS] = devs[2].reqs;
	if (r)
		return r;
	CHECK(devs[2].irqs == devs[2].reqs, VDRV_FAIL_IRQ_COUNT, devs[2].irqs, devs[2].reqs);
	/* One interrupt per request (used_event asks for each), plus the
	 * config interrupts of the hostile cases: no more, no fewer. */
	CHECK(devs[0].irqs == devs[0].reqs + devs[0].config_irqs, VDRV_FAIL_IRQ_COUNT, devs[0].irqs,
	      devs[0].reqs);
	CHECK(devs[1].irqs - devs[1].reset_irqs == devs[1].reqs + devs[1].config_irqs,
	      VDRV_FAIL_IRQ_COUNT, devs[1].irqs, devs[1].reqs);
	results[VDRV_R_DONE] = VDRV_MAGIC;
	return 0;
}

int guest_main(unsigned int id, unsigned int count)
{
	if (id)
		return 0;
	return run();
}
