/* SPDX-License-Identifier: MIT */
/*
 * Userspace pair of 8259A programmable interrupt controllers (master at
 * 0x20, slave at 0xa0 cascaded on the master's IR2) with the PIIX edge/level
 * control registers (ELCR, 0x4d0/0x4d1), for split-irqchip mode. A pure
 * model: its INTR output goes to the BSP's LAPIC LINT0 through the driver
 * (split_legacy.c), which calls kvmk_pic_intack() for the INTA cycle and injects
 * the vector with KVM_INTERRUPT. Internal to kvmkit, not installed.
 *
 * Registers (Intel 8259A data sheet, "Programming the 8259A"):
 *   port A (0x20/0xa0) write: bit 4 set = ICW1; else bit 3 set = OCW3;
 *                            else OCW2.
 *   port B (0x21/0xa1) write: ICW2, ICW3, ICW4 while initialising (as ICW1
 *                            asked for them), otherwise OCW1 (the IMR).
 *   port A read: the poll word after an OCW3 poll command (0x80 | level
 *                if a request is pending, which it acknowledges, else 0),
 *                otherwise IRR or ISR as OCW3 selected (IRR after ICW1).
 *   port B read: the IMR.
 *   ELCR 0x4d0 (IRQ 0-7) / 0x4d1 (IRQ 8-15): bit n set = level-triggered.
 *   IRQ 0, 1, 2, 8 and 13 are always edge (their ELCR bits read 0).
 * Only 1-byte accesses at those offsets are defined; every other access
 * reads all ones and is ignored when written (never more than @size bytes
 * touched).
 *
 * ICW1: bit 0 IC4 (ICW4 follows), bit 1 SNGL (no slave, no ICW3), bit 3
 * LTIM (every input level-triggered). It clears the IMR, ISR and IRR edge
 * memory, selects IRR for reads, leaves special mask mode and sets IR7 to
 * the lowest priority. Without IC4 the ICW4 functions are off. ICW2 bits 7:3
 * are the vector base. ICW3 is accepted and ignored (the cascade is always
 * the slave on the master's IR2). ICW4: bit 1 AEOI (automatic EOI at the
 * INTA), bit 4 SFNM (the master's in-service IR2 does not block the slave's
 * higher requests); 8086 mode is assumed.
 * OCW2 (bits 7:5): 001 non-specific EOI, 011 specific EOI of level L (bits
 * 2:0), 101 rotate on non-specific EOI, 111 rotate on specific EOI, 110 set
 * priority (L becomes lowest), 100/000 set/clear rotate in AEOI mode, 010
 * no-op. OCW3: bit 2 poll, bits 1:0 = 10 read IRR / 11 read ISR, bits 6:5
 * = 11 set / 10 reset special mask mode (masked in-service levels do not
 * block lower ones).
 *
 * Inputs: kvmk_pic_set_irq(irq 0-15). An edge input latches in IRR on a
 * low-to-high transition (and stays latched until acknowledged); a level
 * input is in IRR while high. Status (the kvmkit_irq_line() convention): 1
 * a new request, 0 coalesced (its IRR bit was already set) or a
 * de-assertion, KVMK_IRQ_MASKED if the IMR masks it (the request is still
 * latched and is delivered once unmasked, as on the 8259A), -EINVAL for a
 * bad irq.
 *
 * INTR is high while the master has an unmasked request of higher priority
 * than everything in service (the slave's request reaches the master's IR2
 * the same way). INTA: the highest such request moves from IRR (edge) to
 * ISR (unless AEOI) and its vector base | level is returned; through IR2 the
 * slave is acknowledged as well and gives the vector. With nothing to give,
 * a chip answers with its IR7 (spurious, nothing set in service).
 *
 * Locking: one mutex. kick() is called WITH it held whenever INTR goes
 * high, and must not call into the model; eoi() is called after the lock
 * is dropped.
 */
#ifndef KVMKIT_IRQ_PIC_H
#define KVMKIT_IRQ_PIC_H

#include <stdbool.h>
#include <stdint.h>

#include <kvmkit/bus.h>

#include "irq/irq_backend.h" /* KVMK_IRQ_MASKED */

#define KVMK_PIC_MASTER_BASE 0x20
#define KVMK_PIC_SLAVE_BASE 0xa0
#define KVMK_PIC_LEN 2
#define KVMK_PIC_ELCR_BASE 0x4d0
#define KVMK_PIC_ELCR_LEN 2
#define KVMK_PIC_IRQS 16

struct kvmk_pic;

struct kvmk_pic_config {
	/* Required: INTR went high; the CPU should come for an INTA. */
	void (*kick)(void *opaque);
	/* Optional: IRQ @irq (0-15) left service (an EOI, or AEOI at the INTA),
	 * for resampling level lines. Called WITHOUT the lock: it may call
	 * kvmk_pic_set_irq(). */
	void (*eoi)(void *opaque, unsigned int irq);
	void *opaque;
};

/* Plain-data state for snapshot/migration: per chip, master first. */
struct kvmk_pic_chip_state {
	uint8_t irr, imr, isr, elcr;
	uint8_t last_level; /* input levels, for edge detection */
	uint8_t vector_base;
	uint8_t priority_add; /* level with the highest priority */
	uint8_t init_state; /* 0 ready, 1-3 expecting ICW2-4 */
	uint8_t flags; /* KVMK_PIC_F_* */
	uint8_t rotate_aeoi; /* OCW2 100: rotate on automatic EOI */
};

#define KVMK_PIC_F_IC4 0x01
#define KVMK_PIC_F_SINGLE 0x02
#define KVMK_PIC_F_LTIM 0x04
#define KVMK_PIC_F_AEOI 0x08
#define KVMK_PIC_F_SFNM 0x10
#define KVMK_PIC_F_READ_ISR 0x20
#define KVMK_PIC_F_POLL 0x40
#define KVMK_PIC_F_SMM 0x80
struct kvmk_pic_state {
	struct kvmk_pic_chip_state chip[2];
};

/* Both chips as after ICW1 (vector base 0, nothing masked, as KVM's PIC
 * resets); -EINVAL without kick, -ENOMEM. */
int kvmk_pic_create(const struct kvmk_pic_config *cfg, struct kvmk_pic **out);
void kvmk_pic_destroy(struct kvmk_pic *pic);

/* Port handlers (kvmkit_io_ops signature, @opaque is the model). */
extern const struct kvmkit_io_ops kvmk_pic_master_ops;
extern const struct kvmkit_io_ops kvmk_pic_slave_ops;
extern const struct kvmkit_io_ops kvmk_pic_elcr_ops;

int kvmk_pic_set_irq(struct kvmk_pic *pic, unsigned int irq, bool level);
/* The INTR output. */
bool kvmk_pic_output(struct kvmk_pic *pic);
/* The INTA cycle: returns the vector to inject (0..255). */
uint8_t kvmk_pic_intack(struct kvmk_pic *pic);

void kvmk_pic_save(struct kvmk_pic *pic, struct kvmk_pic_state *out);
/* -EINVAL if @st is inconsistent (init_state > 3, vector base bits 2:0,
 * priority_add > 7, an ELCR bit on an always-edge IRQ); kick() runs if INTR is high after it. */
int kvmk_pic_restore(struct kvmk_pic *pic, const struct kvmk_pic_state *st);

#endif
