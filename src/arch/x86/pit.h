/* SPDX-License-Identifier: MIT */
/*
 * Userspace 8254 programmable interval timer for split-irqchip mode, where
 * KVM has no PIT (api.rst 7.5: it "has to be enabled separately"). A pure
 * model: time comes from a clock callback, the timer it needs is asked for
 * through an arm callback, and the driver (split_legacy.c) calls kvmk_pit_timer()
 * when that deadline passes and pulses IRQ 0 if it says so. Internal to
 * kvmkit, not installed.
 *
 * Ports (Intel 82C54 data sheet; offsets relative to 0x40):
 *   0x40-0x42  counter 0-2 (1 byte): count writes and count/status reads
 *   0x43       control word (1 byte, write only; reads 0xff)
 *   port B, 0x61 (kvmk_pit_portb_read/write, 1 byte): bit 0 counter 2 gate
 *   (R/W), bit 1 speaker data enable (R/W, no sound), bit 4 refresh toggle
 *   (RO, flips every 15.085 us), bit 5 counter 2 OUT (RO); bits 7:2 ignored
 *   on write.
 * Any access that is not 1 byte wide, or outside those offsets, reads all
 * ones and is ignored when written (a hostile guest gets an unclaimed bus
 * cycle, never more than @size bytes touched).
 *
 * Control word: bits 7:6 counter (3 = read-back), 5:4 access (0 latch
 * count, 1 LSB, 2 MSB, 3 LSB then MSB), 3:1 mode (6 and 7 alias 2 and 3),
 * bit 0 BCD (kept in the status byte; counting is always binary, as Linux
 * never selects BCD). Read-back (11 C S c2 c1 c0 0): latches the count
 * (C = 0) and/or the status (S = 0) of the selected counters; a latched
 * status is read before a latched count.
 *
 * Counting, at 1193182 Hz from the moment the whole count is written (a new
 * count takes effect at once in every mode; 0 means 65536):
 *   mode 0, 1  OUT low, high at terminal count (once); count wraps on
 *   mode 2     OUT high, low for the one clock before each reload (period N)
 *   mode 3     square wave, OUT high for the first ceil(N/2) clocks
 *   mode 4, 5  OUT high, low for one clock at terminal count (once)
 * Modes 1 and 5 are hardware-triggered; counter 0 and 1's gates are tied
 * high, so they run as soon as loaded. Counter 2 counts only while its gate
 * (port B bit 0) is high; raising the gate restarts it from its count.
 *
 * IRQ 0 is counter 0's OUT: kvmk_pit_timer() reports each rising edge once
 * (mode 0/1 at terminal count, mode 2/3 every period, mode 4/5 one clock
 * after terminal count). Edges the driver was too late for are not
 * reinjected: one interrupt per timer expiry, as KVM's PIT with
 * pit_reinject = 0 (api.rst 4.99).
 */
#ifndef KVMKIT_IRQ_PIT_H
#define KVMKIT_IRQ_PIT_H

#include <stdbool.h>
#include <stdint.h>

#include <kvmkit/bus.h>

#define KVMK_PIT_BASE 0x40
#define KVMK_PIT_LEN 4
#define KVMK_PIT_PORTB 0x61
#define KVMK_PIT_HZ 1193182u
#define KVMK_PIT_IRQ 0

struct kvmk_pit;

struct kvmk_pit_config {
	/* Required: a monotonic clock in nanoseconds. */
	uint64_t (*now_ns)(void *opaque);
	/* Required: call kvmk_pit_timer() once the clock reaches @deadline_ns
	 * (0: no timer needed). Replaces any earlier deadline. Called with
	 * the model's lock held: must not call into the model. */
	void (*arm)(void *opaque, uint64_t deadline_ns);
	void *opaque;
};

/* A reset PIT (every counter mode 0, count 0, not counting); -EINVAL
 * without the callbacks, -ENOMEM. */
int kvmk_pit_create(const struct kvmk_pit_config *cfg, struct kvmk_pit **out);
void kvmk_pit_destroy(struct kvmk_pit *pit);

/* PIO handlers for 0x40-0x43 (@offset from 0x40) and for port B (@offset
 * 0), kvmkit_io_ops signature with the model as @opaque. */
void kvmk_pit_pio_read(void *opaque, uint64_t offset, void *data, unsigned int size);
void kvmk_pit_pio_write(void *opaque, uint64_t offset, const void *data, unsigned int size);
extern const struct kvmkit_io_ops kvmk_pit_pio_ops;
void kvmk_pit_portb_read(void *opaque, uint64_t offset, void *data, unsigned int size);
void kvmk_pit_portb_write(void *opaque, uint64_t offset, const void *data, unsigned int size);
extern const struct kvmkit_io_ops kvmk_pit_portb_ops;

/* The deadline passed (or the driver woke for another reason): returns true
 * if counter 0's OUT had a rising edge since the last call that reported
 * one, and re-arms for the next edge. */
bool kvmk_pit_timer(struct kvmk_pit *pit);

/* Plain-data state for snapshot/migration. Time is saved as progress
 * (clocks counted since the count was loaded), so a restore on another
 * clock continues where the save stopped. */
struct kvmk_pit_counter_state {
	uint32_t count; /* reload value, 1..65536 */
	uint64_t elapsed; /* clocks counted since loading (frozen while gated off) */
	uint16_t latched_count;
	uint8_t mode, rw, bcd; /* 0..5, 1..3, 0..1 */
	uint8_t write_lsb;
	uint8_t latched_status;
	uint8_t flags; /* KVMK_PIT_F_* */
};

#define KVMK_PIT_F_LOADED 0x01
#define KVMK_PIT_F_GATE 0x02
#define KVMK_PIT_F_WRITE_MSB 0x04 /* LSB written, MSB next */
#define KVMK_PIT_F_READ_MSB 0x08
#define KVMK_PIT_F_COUNT_LATCHED 0x10
#define KVMK_PIT_F_LATCH_MSB 0x20
#define KVMK_PIT_F_STATUS_LATCHED 0x40
#define KVMK_PIT_F_ALL 0x7f

struct kvmk_pit_state {
	struct kvmk_pit_counter_state c[3];
	uint8_t speaker;
};

void kvmk_pit_save(struct kvmk_pit *pit, struct kvmk_pit_state *out);
/* -EINVAL (KVMKIT_ERR_PARAM) and nothing changed if a field is out of its
 * range or counter 0/1's gate is low; re-arms the timer. */
int kvmk_pit_restore(struct kvmk_pit *pit, const struct kvmk_pit_state *st);

/* Counter @c's current count and OUT, as a latch would see them (tests). */
int kvmk_pit_peek(struct kvmk_pit *pit, unsigned int c, uint32_t *count, bool *out);

#endif
