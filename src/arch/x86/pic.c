// SPDX-License-Identifier: MIT
/*
 * Userspace 8259A pair for split irqchip; the behaviour, the access rules
 * and the locking are documented in pic.h. Priorities are kept as a
 * rotation: level (p + priority_add) & 7 has priority p, 0 the highest.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "pic"
#include "core/internal.h"
#include "arch/x86/pic.h"
#include <kvmkit/irq.h>

#define MASTER 0
#define SLAVE 1
#define CASCADE_IRQ 2
#define NO_LEVEL 8

/* IRQ 0, 1, 2 (master) and 8, 13 (slave) are edge-only on the PIIX. */
static const uint8_t elcr_writable[2] = { 0xf8, 0xde };

struct kvmk_pic {
	pthread_mutex_t lock;
	struct kvmk_pic_config cfg;
	struct kvmk_pic_chip_state c[2];
	/* INTR: written under the lock, read without it (vCPU 0 checks it
	 * before every KVM_RUN), seq_cst against the kick's immediate_exit. */
	bool output;
	uint16_t ended; /* IRQs that left service under the lock, for eoi() */
};

/* Drops the lock, then tells the driver which IRQs left service. */
static void unlock_and_notify(struct kvmk_pic *pic)
{
	uint16_t ended = pic->ended;

	pic->ended = 0;
	pthread_mutex_unlock(&pic->lock);
	for (unsigned int irq = 0; ended && pic->cfg.eoi && irq < KVMK_PIC_IRQS; irq++)
		if (ended & (1u << irq))
			pic->cfg.eoi(pic->cfg.opaque, irq);
}

static bool level_triggered(const struct kvmk_pic_chip_state *c, uint8_t bit)
{
	return (c->elcr & bit) || (c->flags & KVMK_PIC_F_LTIM);
}

/* The highest priority (0..7) among the levels in @mask, NO_LEVEL if none. */
static unsigned int best_priority(const struct kvmk_pic_chip_state *c, uint8_t mask)
{
	for (unsigned int p = 0; p < 8; p++)
		if (mask & (1u << ((p + c->priority_add) & 7)))
			return p;
	return NO_LEVEL;
}

static unsigned int level_of(const struct kvmk_pic_chip_state *c, unsigned int priority)
{
	return (priority + c->priority_add) & 7;
}

/* The level this chip would give at an INTA, or NO_LEVEL. */
static unsigned int pending_level(const struct kvmk_pic_chip_state *c, bool master)
{
	uint8_t in_service = c->isr;
	unsigned int req = best_priority(c, c->irr & ~c->imr);

	if (req == NO_LEVEL)
		return NO_LEVEL;
	if (c->flags & KVMK_PIC_F_SMM)
		in_service &= ~c->imr;
	/* Special fully nested: the slave ranks its own requests. */
	if (master && (c->flags & KVMK_PIC_F_SFNM))
		in_service &= ~(1u << CASCADE_IRQ);
	return req < best_priority(c, in_service) ? level_of(c, req) : NO_LEVEL;
}

static bool cascaded(const struct kvmk_pic *pic)
{
	return !(pic->c[MASTER].flags & KVMK_PIC_F_SINGLE);
}

/* Re-derives the cascade input and INTR; kicks on a rising INTR. */
static void update(struct kvmk_pic *pic)
{
	struct kvmk_pic_chip_state *m = &pic->c[MASTER];
	bool was = pic->output, now;

	if (cascaded(pic)) {
		if (pending_level(&pic->c[SLAVE], false) != NO_LEVEL)
			m->irr |= 1u << CASCADE_IRQ;
		else
			m->irr &= ~(1u << CASCADE_IRQ);
	}
	now = pending_level(m, true) != NO_LEVEL;
	__atomic_store_n(&pic->output, now, __ATOMIC_SEQ_CST);
	if (now && !was)
		pic->cfg.kick(pic->cfg.opaque);
}

static void reset_chip(struct kvmk_pic_chip_state *c, uint8_t icw1)
{
	/* ICW1 resets the edge sense: an edge input needs a new rising edge. */
	c->irr &= c->last_level & (c->elcr | ((icw1 & 0x08) ? 0xff : 0));
	c->imr = 0;
	c->isr = 0;
	c->priority_add = 0;
	c->rotate_aeoi = 0;
	c->flags = (uint8_t)(((icw1 & 0x01) ? KVMK_PIC_F_IC4 : 0) |
			     ((icw1 & 0x02) ? KVMK_PIC_F_SINGLE : 0) |
			     ((icw1 & 0x08) ? KVMK_PIC_F_LTIM : 0));
	c->init_state = 1;
}

int kvmk_pic_create(const struct kvmk_pic_config *cfg, struct kvmk_pic **out)
{
	struct kvmk_pic *pic;

	if (!cfg || !cfg->kick)
		return kvmk_err_param("pic_create", "cfg", "a kick callback", "%s", "missing");
	pic = calloc(1, sizeof(*pic));
	if (!pic)
		return kvmk_err_resource("pic_create", ENOMEM, NULL);
	pthread_mutex_init(&pic->lock, NULL);
	pic->cfg = *cfg;
	/* As KVM's PIC comes out of reset: initialised, base 0, unmasked. */
	for (unsigned int i = 0; i < 2; i++) {
		reset_chip(&pic->c[i], 0x11);
		pic->c[i].init_state = 0;
		pic->c[i].flags &= ~KVMK_PIC_F_IC4;
	}
	*out = pic;
	return 0;
}

void kvmk_pic_destroy(struct kvmk_pic *pic)
{
	if (!pic)
		return;
	pthread_mutex_destroy(&pic->lock);
	free(pic);
}

int kvmk_pic_set_irq(struct kvmk_pic *pic, unsigned int irq, bool level)
{
	struct kvmk_pic_chip_state *c;
	uint8_t bit;
	int ret = 0;

	if (irq >= KVMK_PIC_IRQS)
		return kvmk_err_param("pic_set_irq", "irq", "0..15", "%u", irq);
	c = &pic->c[irq >> 3];
	bit = (uint8_t)(1u << (irq & 7));
	pthread_mutex_lock(&pic->lock);
	if (irq == CASCADE_IRQ && cascaded(pic)) {
		/* The master's IR2 is the slave's output, not a device pin. */
		pthread_mutex_unlock(&pic->lock);
		return level ? KVMK_IRQ_MASKED : 0;
	}
	if (level_triggered(c, bit)) {
		if (level)
			ret = !(c->irr & bit);
		c->irr = level ? (c->irr | bit) : (c->irr & ~bit);
	} else if (level && !(c->last_level & bit)) {
		ret = !(c->irr & bit);
		c->irr |= bit;
	}
	c->last_level = level ? (c->last_level | bit) : (c->last_level & ~bit);
	if (ret > 0 && ((c->imr & bit) || (irq >= 8 && (pic->c[MASTER].imr & (1u << CASCADE_IRQ)))))
		ret = KVMK_IRQ_MASKED;
	update(pic);
	pthread_mutex_unlock(&pic->lock);
	return ret;
}

bool kvmk_pic_output(struct kvmk_pic *pic)
{
	return __atomic_load_n(&pic->output, __ATOMIC_SEQ_CST);
}

/* Moves @level of chip @idx from request to service (lock held). */
static void acknowledge(struct kvmk_pic *pic, unsigned int idx, unsigned int level)
{
	struct kvmk_pic_chip_state *c = &pic->c[idx];
	uint8_t bit = (uint8_t)(1u << level);

	if (!level_triggered(c, bit))
		c->irr &= ~bit;
	if (c->flags & KVMK_PIC_F_AEOI) {
		if (c->rotate_aeoi)
			c->priority_add = (level + 1) & 7;
		pic->ended |= (uint16_t)(1u << (idx * 8 + level));
	} else {
		c->isr |= bit;
	}
}

uint8_t kvmk_pic_intack(struct kvmk_pic *pic)
{
	struct kvmk_pic_chip_state *m = &pic->c[MASTER], *s = &pic->c[SLAVE];
	unsigned int level, sl;
	uint8_t vector;

	pthread_mutex_lock(&pic->lock);
	level = pending_level(m, true);
	if (level == NO_LEVEL) {
		vector = m->vector_base | 7; /* spurious */
	} else {
		acknowledge(pic, MASTER, level);
		if (level == CASCADE_IRQ && cascaded(pic)) {
			sl = pending_level(s, false);
			if (sl == NO_LEVEL) {
				vector = s->vector_base | 7;
			} else {
				acknowledge(pic, SLAVE, sl);
				vector = (uint8_t)(s->vector_base | sl);
			}
		} else {
			vector = (uint8_t)(m->vector_base | level);
		}
	}
	update(pic);
	unlock_and_notify(pic);
	return vector;
}

static void ocw2(struct kvmk_pic *pic, unsigned int idx, uint8_t v)
{
	struct kvmk_pic_chip_state *c = &pic->c[idx];
	unsigned int level = v & 7, p;
	uint8_t before = c->isr;

	switch (v >> 5) {
	case 0: /* clear rotate in automatic EOI mode */
		c->rotate_aeoi = 0;
		break;
	case 4: /* set rotate in automatic EOI mode */
		c->rotate_aeoi = 1;
		break;
	case 1: /* non-specific EOI */
	case 5: /* rotate on non-specific EOI */
		p = best_priority(c, c->isr);
		if (p == NO_LEVEL)
			break;
		level = level_of(c, p);
		c->isr &= ~(1u << level);
		if (v >> 5 == 5)
			c->priority_add = (level + 1) & 7;
		break;
	case 3: /* specific EOI */
		c->isr &= ~(1u << level);
		break;
	case 7: /* rotate on specific EOI */
		c->isr &= ~(1u << level);
		c->priority_add = (level + 1) & 7;
		break;
	case 6: /* set priority: @level becomes the lowest */
		c->priority_add = (level + 1) & 7;
		break;
	default: /* 2: no operation */
		break;
	}
	pic->ended |= (uint16_t)((before & ~c->isr) << (idx * 8));
}

static void write_a(struct kvmk_pic *pic, unsigned int idx, uint8_t v)
{
	struct kvmk_pic_chip_state *c = &pic->c[idx];

	if (v & 0x10) {
		reset_chip(c, v);
	} else if (v & 0x08) { /* OCW3 */
		if (v & 0x04)
			c->flags |= KVMK_PIC_F_POLL;
		if (v & 0x02)
			c->flags = (uint8_t)((c->flags & ~KVMK_PIC_F_READ_ISR) |
					     ((v & 1) ? KVMK_PIC_F_READ_ISR : 0));
		if (v & 0x40)
			c->flags = (uint8_t)((c->flags & ~KVMK_PIC_F_SMM) |
					     ((v & 0x20) ? KVMK_PIC_F_SMM : 0));
	} else {
		ocw2(pic, idx, v);
	}
}

static void write_b(struct kvmk_pic *pic, unsigned int idx, uint8_t v)
{
	struct kvmk_pic_chip_state *c = &pic->c[idx];

	switch (c->init_state) {
	case 1: /* ICW2 */
		c->vector_base = v & 0xf8;
		if (!(c->flags & KVMK_PIC_F_SINGLE))
			c->init_state = 2;
		else
			c->init_state = (c->flags & KVMK_PIC_F_IC4) ? 3 : 0;
		break;
	case 2: /* ICW3: the wiring is fixed */
		c->init_state = (c->flags & KVMK_PIC_F_IC4) ? 3 : 0;
		break;
	case 3: /* ICW4 */
		c->flags = (uint8_t)((c->flags & ~(KVMK_PIC_F_AEOI | KVMK_PIC_F_SFNM)) |
				     ((v & 0x02) ? KVMK_PIC_F_AEOI : 0) |
				     ((v & 0x10) ? KVMK_PIC_F_SFNM : 0));
		c->init_state = 0;
		break;
	default: /* OCW1 */
		c->imr = v;
		break;
	}
}

static uint8_t read_a(struct kvmk_pic *pic, unsigned int idx)
{
	struct kvmk_pic_chip_state *c = &pic->c[idx];
	unsigned int level;

	if (c->flags & KVMK_PIC_F_POLL) {
		/* The poll command: an INTA without the vector cycle. */
		c->flags &= ~KVMK_PIC_F_POLL;
		level = pending_level(c, idx == MASTER);
		if (level == NO_LEVEL)
			return 0;
		acknowledge(pic, idx, level);
		return (uint8_t)(0x80 | level);
	}
	return (c->flags & KVMK_PIC_F_READ_ISR) ? c->isr : c->irr;
}

static void chip_read(struct kvmk_pic *pic, unsigned int idx, uint64_t offset, void *data,
		      unsigned int size)
{
	uint8_t v;

	memset(data, 0xff, size);
	if (size != 1 || offset >= KVMK_PIC_LEN)
		return;
	pthread_mutex_lock(&pic->lock);
	v = offset ? pic->c[idx].imr : read_a(pic, idx);
	update(pic);
	*(uint8_t *)data = v;
	unlock_and_notify(pic);
}

static void chip_write(struct kvmk_pic *pic, unsigned int idx, uint64_t offset, const void *data,
		       unsigned int size)
{
	uint8_t v;

	if (size != 1 || offset >= KVMK_PIC_LEN)
		return;
	v = *(const uint8_t *)data;
	pthread_mutex_lock(&pic->lock);
	if (offset)
		write_b(pic, idx, v);
	else
		write_a(pic, idx, v);
	update(pic);
	unlock_and_notify(pic);
}

static void master_read(void *opaque, uint64_t offset, void *data, unsigned int size)
{
	chip_read(opaque, MASTER, offset, data, size);
}

static void master_write(void *opaque, uint64_t offset, const void *data, unsigned int size)
{
	chip_write(opaque, MASTER, offset, data, size);
}

static void slave_read(void *opaque, uint64_t offset, void *data, unsigned int size)
{
	chip_read(opaque, SLAVE, offset, data, size);
}

static void slave_write(void *opaque, uint64_t offset, const void *data, unsigned int size)
{
	chip_write(opaque, SLAVE, offset, data, size);
}

static void elcr_read(void *opaque, uint64_t offset, void *data, unsigned int size)
{
	struct kvmk_pic *pic = opaque;

	memset(data, 0xff, size);
	if (size != 1 || offset >= KVMK_PIC_ELCR_LEN)
		return;
	pthread_mutex_lock(&pic->lock);
	*(uint8_t *)data = pic->c[offset].elcr;
	pthread_mutex_unlock(&pic->lock);
}

static void elcr_write(void *opaque, uint64_t offset, const void *data, unsigned int size)
{
	struct kvmk_pic *pic = opaque;
	struct kvmk_pic_chip_state *c;

	if (size != 1 || offset >= KVMK_PIC_ELCR_LEN)
		return;
	pthread_mutex_lock(&pic->lock);
	c = &pic->c[offset];
	c->elcr = *(const uint8_t *)data & elcr_writable[offset];
	/* A level input's request follows its level from now on. */
	c->irr = (uint8_t)((c->irr & ~c->elcr) | (c->last_level & c->elcr));
	update(pic);
	pthread_mutex_unlock(&pic->lock);
}

const struct kvmkit_io_ops kvmk_pic_master_ops = { .read = master_read, .write = master_write };
const struct kvmkit_io_ops kvmk_pic_slave_ops = { .read = slave_read, .write = slave_write };
const struct kvmkit_io_ops kvmk_pic_elcr_ops = { .read = elcr_read, .write = elcr_write };

void kvmk_pic_save(struct kvmk_pic *pic, struct kvmk_pic_state *out)
{
	pthread_mutex_lock(&pic->lock);
	memcpy(out->chip, pic->c, sizeof(out->chip));
	pthread_mutex_unlock(&pic->lock);
}

int kvmk_pic_restore(struct kvmk_pic *pic, const struct kvmk_pic_state *st)
{
	for (unsigned int i = 0; i < 2; i++) {
		const struct kvmk_pic_chip_state *c = &st->chip[i];

		if (c->init_state > 3 || (c->vector_base & 7) || c->priority_add > 7 ||
		    (c->elcr & ~elcr_writable[i]) || c->rotate_aeoi > 1)
			return kvmk_err_param("pic_restore", "state", "a saved 8259A state",
					      "chip %u", i);
	}
	pthread_mutex_lock(&pic->lock);
	memcpy(pic->c, st->chip, sizeof(pic->c));
	__atomic_store_n(&pic->output, false, __ATOMIC_SEQ_CST);
	update(pic);
	pthread_mutex_unlock(&pic->lock);
	return 0;
}
