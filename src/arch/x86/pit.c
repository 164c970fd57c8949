// SPDX-License-Identifier: MIT
/*
 * Userspace 8254 PIT for split irqchip; behaviour and access rules are in
 * pit.h. Counts are not stepped: each counter remembers when it started,
 * and its count and OUT are computed from the clock when read. Counter 0
 * also keeps the tick of its next rising OUT edge, which is what the
 * driver's timer waits for.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "pit"
#include "core/internal.h"
#include "arch/x86/pit.h"

#define NS_PER_S 1000000000ull
/* Refresh request toggle period of port B bit 4 (15.085 us on a PC). */
#define REFRESH_NS 15085ull
/* Interrupts from counter 0 are at least this far apart, whatever the
 * guest programs (KVM clamps its PIT the same way: min_timer_period_us). */
#define MIN_IRQ_PERIOD_NS 200000ull

#define RW_LATCH 0
#define RW_LSB 1
#define RW_MSB 2
#define RW_WORD 3

struct counter {
	uint32_t count; /* reload value 1..65536 */
	uint8_t mode; /* 0..5 */
	uint8_t rw; /* RW_LSB, RW_MSB or RW_WORD */
	uint8_t bcd;
	bool loaded; /* a whole count was written since the control word */
	bool gate;
	uint64_t start_ns; /* counting started (gate high) */
	uint64_t frozen; /* ticks counted when the gate went low */
	bool write_msb_next;
	uint8_t write_lsb;
	bool read_msb_next;
	bool count_latched;
	bool latch_msb_next;
	uint16_t latched_count;
	bool status_latched;
	uint8_t latched_status;
	uint64_t next_edge; /* counter 0: tick of the next rising OUT edge, 0 none */
};

struct kvmk_pit {
	pthread_mutex_t lock;
	struct kvmk_pit_config cfg;
	struct counter c[3];
	bool speaker;
	uint64_t last_irq_ns;
};

static uint64_t now(struct kvmk_pit *pit)
{
	return pit->cfg.now_ns(pit->cfg.opaque);
}

static uint64_t ticks_since(uint64_t start_ns, uint64_t t_ns)
{
	if (t_ns <= start_ns)
		return 0;
	return (uint64_t)((unsigned __int128)(t_ns - start_ns) * KVMK_PIT_HZ / NS_PER_S);
}

/* First nanosecond at which @ticks clocks have elapsed. */
static uint64_t tick_time(uint64_t start_ns, uint64_t ticks)
{
	unsigned __int128 ns =
		((unsigned __int128)ticks * NS_PER_S + KVMK_PIT_HZ - 1) / KVMK_PIT_HZ;

	return start_ns + (uint64_t)ns;
}

static uint64_t elapsed(struct counter *c, uint64_t t_ns)
{
	if (!c->gate)
		return c->frozen;
	return ticks_since(c->start_ns, t_ns);
}

static uint16_t count_at(const struct counter *c, uint64_t d)
{
	uint64_t n = c->count;

	if (!c->loaded)
		return (uint16_t)c->count;
	switch (c->mode) {
	case 2:
		return (uint16_t)(n - d % n);
	case 3:
		/* Counts down by two, twice per period. */
		return (uint16_t)((n - (2 * d) % n) & ~1ull);
	default:
		/* Modes 0, 1, 4, 5: one pass, then the counter wraps on. */
		return (uint16_t)((n - d % 65536) & 0xffff);
	}
}

static bool out_at(const struct counter *c, uint64_t d)
{
	uint64_t n = c->count;

	if (!c->loaded)
		return c->mode != 0;
	switch (c->mode) {
	case 0:
	case 1:
		return d >= n;
	case 2:
		return d % n != n - 1;
	case 3:
		return d % n < (n + 1) / 2;
	default: /* 4, 5 */
		return d != n;
	}
}

/* Tick of the first rising OUT edge after tick @d; 0 if there is none. */
static uint64_t edge_after(const struct counter *c, uint64_t d)
{
	uint64_t n = c->count;

	if (!c->loaded)
		return 0;
	switch (c->mode) {
	case 0:
	case 1:
		return d < n ? n : 0;
	case 2:
	case 3:
		return (d / n + 1) * n;
	default:
		return d < n + 1 ? n + 1 : 0;
	}
}

/* Counter 0's timer: with the lock held. */
static void arm0(struct kvmk_pit *pit, uint64_t t_ns)
{
	struct counter *c = &pit->c[0];
	uint64_t deadline, floor;

	c->next_edge = edge_after(c, elapsed(c, t_ns));
	if (!c->next_edge) {
		pit->cfg.arm(pit->cfg.opaque, 0);
		return;
	}
	deadline = tick_time(c->start_ns, c->next_edge);
	floor = pit->last_irq_ns + MIN_IRQ_PERIOD_NS;
	if (pit->last_irq_ns && deadline < floor)
		deadline = floor;
	pit->cfg.arm(pit->cfg.opaque, deadline ? deadline : 1);
}

static uint8_t status_of(struct counter *c, uint64_t t_ns)
{
	return (uint8_t)(out_at(c, elapsed(c, t_ns)) << 7 | !c->loaded << 6 | c->rw << 4 |
			 c->mode << 1 | c->bcd);
}

static void reset_counter(struct counter *c, bool gate)
{
	memset(c, 0, sizeof(*c));
	c->count = 65536;
	c->rw = RW_WORD;
	c->gate = gate;
}

int kvmk_pit_create(const struct kvmk_pit_config *cfg, struct kvmk_pit **out)
{
	struct kvmk_pit *pit;

	if (!cfg || !cfg->now_ns || !cfg->arm)
		return kvmk_err_param("pit_create", "cfg", "now_ns and arm callbacks", "%s",
				      "missing");
	pit = calloc(1, sizeof(*pit));
	if (!pit)
		return kvmk_err_resource("pit_create", ENOMEM, NULL);
	pthread_mutex_init(&pit->lock, NULL);
	pit->cfg = *cfg;
	/* Counters 0 and 1 have their gates tied high; counter 2's is port B
	 * bit 0, low after reset. */
	reset_counter(&pit->c[0], true);
	reset_counter(&pit->c[1], true);
	reset_counter(&pit->c[2], false);
	*out = pit;
	return 0;
}

void kvmk_pit_destroy(struct kvmk_pit *pit)
{
	if (!pit)
		return;
	pthread_mutex_destroy(&pit->lock);
	free(pit);
}

static void load(struct kvmk_pit *pit, unsigned int idx, uint32_t raw, uint64_t t_ns)
{
	struct counter *c = &pit->c[idx];

	c->count = raw ? raw : 65536;
	c->loaded = true;
	c->start_ns = t_ns;
	c->frozen = 0;
	if (idx == 0)
		arm0(pit, t_ns);
}

static void write_control(struct kvmk_pit *pit, uint8_t v, uint64_t t_ns)
{
	unsigned int sel = v >> 6, rw = (v >> 4) & 3, mode = (v >> 1) & 7;
	struct counter *c;

	if (sel == 3) {
		/* Read-back: bit 5 clear latches counts, bit 4 clear statuses. */
		for (unsigned int i = 0; i < 3; i++) {
			c = &pit->c[i];
			if (!(v & (2u << i)))
				continue;
			if (!(v & 0x20) && !c->count_latched) {
				c->latched_count = count_at(c, elapsed(c, t_ns));
				c->count_latched = true;
				c->latch_msb_next = false;
			}
			if (!(v & 0x10) && !c->status_latched) {
				c->latched_status = status_of(c, t_ns);
				c->status_latched = true;
			}
		}
		return;
	}
	c = &pit->c[sel];
	if (rw == RW_LATCH) {
		if (!c->count_latched) {
			c->latched_count = count_at(c, elapsed(c, t_ns));
			c->count_latched = true;
			c->latch_msb_next = false;
		}
		return;
	}
	c->rw = (uint8_t)rw;
	c->mode = (uint8_t)(mode > 5 ? mode - 4 : mode);
	c->bcd = v & 1;
	c->loaded = false;
	c->write_msb_next = false;
	c->read_msb_next = false;
	c->count_latched = false;
	c->status_latched = false;
	if (sel == 0)
		arm0(pit, t_ns);
}

static void write_count(struct kvmk_pit *pit, unsigned int idx, uint8_t v, uint64_t t_ns)
{
	struct counter *c = &pit->c[idx];

	switch (c->rw) {
	case RW_LSB:
		load(pit, idx, v, t_ns);
		break;
	case RW_MSB:
		load(pit, idx, (uint32_t)v << 8, t_ns);
		break;
	default:
		if (!c->write_msb_next) {
			c->write_lsb = v;
			c->write_msb_next = true;
		} else {
			c->write_msb_next = false;
			load(pit, idx, c->write_lsb | (uint32_t)v << 8, t_ns);
		}
		break;
	}
}

static uint8_t read_count(struct counter *c, uint64_t t_ns)
{
	uint16_t v;
	bool msb;

	if (c->status_latched) {
		c->status_latched = false;
		return c->latched_status;
	}
	if (c->count_latched) {
		v = c->latched_count;
		if (c->rw == RW_WORD && !c->latch_msb_next) {
			c->latch_msb_next = true;
			return (uint8_t)v;
		}
		c->count_latched = false;
		return (uint8_t)(c->rw == RW_LSB ? v : v >> 8);
	}
	v = count_at(c, elapsed(c, t_ns));
	switch (c->rw) {
	case RW_LSB:
		msb = false;
		break;
	case RW_MSB:
		msb = true;
		break;
	default:
		msb = c->read_msb_next;
		c->read_msb_next = !c->read_msb_next;
		break;
	}
	return (uint8_t)(msb ? v >> 8 : v);
}

void kvmk_pit_pio_read(void *opaque, uint64_t offset, void *data, unsigned int size)
{
	struct kvmk_pit *pit = opaque;
	uint8_t v = 0xff;

	memset(data, 0xff, size);
	if (size != 1 || offset >= 3)
		return; /* 0x43 is write-only */
	pthread_mutex_lock(&pit->lock);
	v = read_count(&pit->c[offset], now(pit));
	pthread_mutex_unlock(&pit->lock);
	*(uint8_t *)data = v;
}

void kvmk_pit_pio_write(void *opaque, uint64_t offset, const void *data, unsigned int size)
{
	struct kvmk_pit *pit = opaque;
	uint8_t v;

	if (size != 1 || offset >= KVMK_PIT_LEN)
		return;
	v = *(const uint8_t *)data;
	pthread_mutex_lock(&pit->lock);
	if (offset == 3)
		write_control(pit, v, now(pit));
	else
		write_count(pit, (unsigned int)offset, v, now(pit));
	pthread_mutex_unlock(&pit->lock);
}

const struct kvmkit_io_ops kvmk_pit_pio_ops = {
	.read = kvmk_pit_pio_read,
	.write = kvmk_pit_pio_write,
};

void kvmk_pit_portb_read(void *opaque, uint64_t offset, void *data, unsigned int size)
{
	struct kvmk_pit *pit = opaque;
	struct counter *c2 = &pit->c[2];
	uint64_t t;
	uint8_t v;

	memset(data, 0xff, size);
	if (size != 1 || offset != 0)
		return;
	pthread_mutex_lock(&pit->lock);
	t = now(pit);
	v = (uint8_t)(c2->gate | pit->speaker << 1 | ((t / REFRESH_NS) & 1) << 4 |
		      out_at(c2, elapsed(c2, t)) << 5);
	pthread_mutex_unlock(&pit->lock);
	*(uint8_t *)data = v;
}

void kvmk_pit_portb_write(void *opaque, uint64_t offset, const void *data, unsigned int size)
{
	struct kvmk_pit *pit = opaque;
	struct counter *c2 = &pit->c[2];
	bool gate;
	uint64_t t;

	if (size != 1 || offset != 0)
		return;
	gate = *(const uint8_t *)data & 1;
	pthread_mutex_lock(&pit->lock);
	t = now(pit);
	pit->speaker = (*(const uint8_t *)data >> 1) & 1;
	if (gate && !c2->gate) {
		c2->start_ns = t; /* a rising gate restarts the count */
		c2->frozen = 0;
	} else if (!gate && c2->gate) {
		c2->frozen = ticks_since(c2->start_ns, t);
	}
	c2->gate = gate;
	pthread_mutex_unlock(&pit->lock);
}

const struct kvmkit_io_ops kvmk_pit_portb_ops = {
	.read = kvmk_pit_portb_read,
	.write = kvmk_pit_portb_write,
};

bool kvmk_pit_timer(struct kvmk_pit *pit)
{
	struct counter *c = &pit->c[0];
	bool fire = false;
	uint64_t t, floor;

	pthread_mutex_lock(&pit->lock);
	t = now(pit);
	floor = pit->last_irq_ns + MIN_IRQ_PERIOD_NS;
	if (c->next_edge && elapsed(c, t) >= c->next_edge && pit->last_irq_ns && t < floor) {
		/* Too soon after the last one: keep the edge, come back later. */
		pit->cfg.arm(pit->cfg.opaque, floor);
	} else {
		if (c->next_edge && elapsed(c, t) >= c->next_edge) {
			fire = true;
			pit->last_irq_ns = t;
		}
		arm0(pit, t);
	}
	pthread_mutex_unlock(&pit->lock);
	return fire;
}

void kvmk_pit_save(struct kvmk_pit *pit, struct kvmk_pit_state *out)
{
	uint64_t t;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&pit->lock);
	t = now(pit);
	for (unsigned int i = 0; i < 3; i++) {
		struct counter *c = &pit->c[i];
		struct kvmk_pit_counter_state *o = &out->c[i];

		o->count = c->count;
		o->elapsed = c->loaded ? elapsed(c, t) : 0;
		o->latched_count = c->latched_count;
		o->mode = c->mode;
		o->rw = c->rw;
		o->bcd = c->bcd;
		o->write_lsb = c->write_lsb;
		o->latched_status = c->latched_status;
		o->flags = (uint8_t)((c->loaded ? KVMK_PIT_F_LOADED : 0) |
				     (c->gate ? KVMK_PIT_F_GATE : 0) |
				     (c->write_msb_next ? KVMK_PIT_F_WRITE_MSB : 0) |
				     (c->read_msb_next ? KVMK_PIT_F_READ_MSB : 0) |
				     (c->count_latched ? KVMK_PIT_F_COUNT_LATCHED : 0) |
				     (c->latch_msb_next ? KVMK_PIT_F_LATCH_MSB : 0) |
				     (c->status_latched ? KVMK_PIT_F_STATUS_LATCHED : 0));
	}
	out->speaker = pit->speaker;
	pthread_mutex_unlock(&pit->lock);
}

int kvmk_pit_restore(struct kvmk_pit *pit, const struct kvmk_pit_state *st)
{
	uint64_t t;

	for (unsigned int i = 0; i < 3; i++) {
		const struct kvmk_pit_counter_state *o = &st->c[i];

		if (o->count < 1 || o->count > 65536 || o->mode > 5 || o->rw < 1 || o->rw > 3 ||
		    o->bcd > 1 || (o->flags & ~KVMK_PIT_F_ALL) ||
		    (i < 2 && !(o->flags & KVMK_PIT_F_GATE)))
			return kvmk_err_param("pit_restore", "state", "a saved 8254 state",
					      "counter %u", i);
	}
	if (st->speaker > 1)
		return kvmk_err_param("pit_restore", "speaker", "0 or 1", "%u", st->speaker);
	pthread_mutex_lock(&pit->lock);
	t = now(pit);
	for (unsigned int i = 0; i < 3; i++) {
		const struct kvmk_pit_counter_state *o = &st->c[i];
		struct counter *c = &pit->c[i];
		uint64_t back = tick_time(0, o->elapsed);

		c->count = o->count;
		c->mode = o->mode;
		c->rw = o->rw;
		c->bcd = o->bcd;
		c->write_lsb = o->write_lsb;
		c->latched_count = o->latched_count;
		c->latched_status = o->latched_status;
		c->loaded = o->flags & KVMK_PIT_F_LOADED;
		c->gate = o->flags & KVMK_PIT_F_GATE;
		c->write_msb_next = o->flags & KVMK_PIT_F_WRITE_MSB;
		c->read_msb_next = o->flags & KVMK_PIT_F_READ_MSB;
		c->count_latched = o->flags & KVMK_PIT_F_COUNT_LATCHED;
		c->latch_msb_next = o->flags & KVMK_PIT_F_LATCH_MSB;
		c->status_latched = o->flags & KVMK_PIT_F_STATUS_LATCHED;
		/* Counting resumes from the saved progress. */
		c->start_ns = t > back ? t - back : 0;
		c->frozen = c->gate ? 0 : o->elapsed;
	}
	pit->speaker = st->speaker;
	pit->last_irq_ns = 0;
	arm0(pit, t);
	pthread_mutex_unlock(&pit->lock);
	return 0;
}

int kvmk_pit_peek(struct kvmk_pit *pit, unsigned int idx, uint32_t *count, bool *out)
{
	struct counter *c;
	uint64_t d;

	if (idx >= 3)
		return kvmk_err_param("pit_peek", "counter", "0..2", "%u", idx);
	c = &pit->c[idx];
	pthread_mutex_lock(&pit->lock);
	d = elapsed(c, now(pit));
	*count = count_at(c, d);
	*out = out_at(c, d);
	pthread_mutex_unlock(&pit->lock);
	return 0;
}
