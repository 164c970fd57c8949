/* SPDX-License-Identifier: MIT */
/*
 * Userspace I/O APIC for split-irqchip mode (LAPICs in KVM, IOAPIC here),
 * modelled on the Intel 82093AA (version 0x11, 24 pins). A pure model: no
 * KVM calls; interrupts leave as MSI messages through a callback and EOIs
 * come in through kvmk_ioapic_eoi(). Internal to kvmkit, not installed.
 *
 * Registers (82093AA 3.0):
 *   MMIO  0x00 IOREGSEL  R/W  index, bits 7:0 (31:8 read as 0)
 *         0x10 IOWIN     R/W  the register IOREGSEL selects
 *   index 0x00 ID        R/W  bits 27:24, the rest reads 0
 *         0x01 VERSION   RO   0x00170011 (max entry 23, version 0x11)
 *         0x02 ARB       RO   bits 27:24 = the ID (loaded on every ID write)
 *         0x10+2n / 0x11+2n   redirection entry n low / high dword
 *         any other index: reads 0, writes ignored.
 *
 * Redirection entry: 7:0 vector, 10:8 delivery mode, 11 destination mode
 * (1 logical), 12 delivery status (RO), 13 polarity (1 active low), 14
 * remote IRR (RO), 15 trigger mode (1 level), 16 mask, 63:56 destination.
 * Reserved bits 55:17 are read-only zero. Reset: mask set, all else 0.
 *
 * MMIO access rules. Only aligned 4-byte accesses at 0x00 and 0x10 are
 * architecturally defined. Every other access (size 1, 2, 8 or any other,
 * misaligned, or another offset, including 0x40, which is the EOI register
 * of version 0x20 parts and absent on the 0x11 part modelled here) reads as
 * all ones in every byte (as an unclaimed bus cycle) and is ignored when
 * written. The model never touches more than @size bytes of @data.
 *
 * Pin inputs. kvmk_ioapic_set_level() gives the electrical level at the
 * pin; with polarity bit 13 set (active low) level 0 is asserted, unless the
 * model was created with polarity_ignored (KVM's in-kernel IOAPIC behaviour,
 * KVM_CAP_X86_IOAPIC_POLARITY_IGNORED: 1 always means asserted). Writing the
 * polarity or trigger mode never creates an edge by itself.
 *   - Edge entries deliver on an inactive-to-active transition if unmasked.
 *     An edge that arrives while the entry is masked is dropped, as the
 *     82093AA says ("not delivered or held pending"); unmasking never
 *     delivers an edge entry.
 *   - Level entries deliver while the input is asserted, the entry unmasked
 *     and remote IRR clear; a delivery the LAPIC accepted (callback > 0) sets
 *     remote IRR. The input level is remembered while masked, so unmasking
 *     (or any write that leaves an entry level-triggered, unmasked, with
 *     remote IRR clear and the input asserted) delivers.
 *   - Writing trigger mode = edge clears remote IRR (the 82093AA leaves it
 *     undefined for edge entries; Linux clears a stuck remote IRR on version
 *     0x11 IOAPICs by toggling the entry to edge and back).
 *   - Reserved delivery modes (011, 110) are never delivered: status
 *     KVMK_IRQ_MASKED.
 *
 * Status returned by set_level (the kvmkit_irq_line() convention): > 0
 * delivered (the callback's value), 0 coalesced (no new edge, or a level
 * entry whose remote IRR is still set: the previous interrupt is in service,
 * which is what KVM's in-kernel IOAPIC reports too) or a de-assertion,
 * KVMK_IRQ_MASKED for a masked entry or a reserved delivery mode, the
 * callback's negative value on error, -EINVAL for a bad pin.
 *
 * EOI (kvmk_ioapic_eoi, from KVM_EXIT_IOAPIC_EOI): for every level entry
 * in service whose delivered message had that vector (even if the guest has
 * rewritten the entry's vector since), and every level entry not in service
 * whose vector it is, remote IRR is cleared, the pin's resample notifier (if
 * any) runs, then the entry is delivered again if it is still asserted,
 * unmasked and its remote IRR still clear (with what the entry says now).
 * Entries whose remote IRR was already clear are included, as KVM does: a
 * level delivery the LAPIC reported as coalesced (callback 0) left remote
 * IRR clear while the vector was pending, and this EOI is its retry point.
 *
 * EOI routes (route_changed). With the LAPICs in KVM, an EOI reaches this
 * model only if KVM intercepts it, and KVM intercepts the vectors of the
 * level-triggered MSI routes of its reserved IOAPIC GSIs on the CPUs they
 * target (split irqchip). Each pin therefore has an EOI route, which the
 * model reports whenever it changes: while remote IRR is set, the message
 * that set it (its vector and destination), whatever the guest writes to
 * the entry meanwhile, so that masking, retargeting or re-vectoring an
 * entry in service cannot lose the EOI that ends the service; otherwise the
 * entry's message, or no route if the entry is masked. A masked entry
 * being rewritten has no route before and after: nothing is reported.
 *
 * MSI encoding (Intel SDM vol. 3 11.11, what KVM expects for split irqchip
 * routes): address = 0xfee00000 | dest << 12 | (logical ? 1 << 2 : 0),
 * redirection hint 0; data = vector | mode << 8 | (level ? 1 << 15 | 1 << 14
 * : 0).
 *
 * Locking. One mutex protects the state. deliver() and resample notifiers
 * are called with it dropped, so they may call back into the model
 * (set_level, eoi, MMIO). The message was decided under the lock; while it
 * is being delivered the entry's delivery status bit reads 1 ("send
 * pending"), and a level entry's remote IRR is already set so that a
 * concurrent assertion does not send it twice; if deliver() returns <= 0,
 * remote IRR is cleared again unless an EOI, reset or restore cleared it in
 * the meantime (and the EOI route becomes the entry's again). route_changed()
 * is called WITH the lock held, so that route updates reach KVM in the
 * order they happen, and before any message that needs them: it must not
 * call into the model.
 */
#ifndef KVMKIT_IRQ_IOAPIC_H
#define KVMKIT_IRQ_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#include <kvmkit/bus.h>

#include "irq/irq_backend.h" /* KVMK_IRQ_MASKED */

#define KVMK_IOAPIC_PINS 24
#define KVMK_IOAPIC_BASE 0xfec00000ull
#define KVMK_IOAPIC_MMIO_SIZE 0x1000ull

#define KVMK_IOAPIC_REGSEL 0x00
#define KVMK_IOAPIC_WIN 0x10

#define KVMK_IOAPIC_REG_ID 0x00
#define KVMK_IOAPIC_REG_VER 0x01
#define KVMK_IOAPIC_REG_ARB 0x02
#define KVMK_IOAPIC_REG_REDTBL 0x10
#define KVMK_IOAPIC_VERSION 0x00170011u

/* Redirection entry fields. */
#define KVMK_IOAPIC_VECTOR 0xffull
#define KVMK_IOAPIC_DM_SHIFT 8
#define KVMK_IOAPIC_DM_MASK (7ull << 8)
#define KVMK_IOAPIC_DESTMODE (1ull << 11)
#define KVMK_IOAPIC_DELIVS (1ull << 12)
#define KVMK_IOAPIC_POLARITY (1ull << 13)
#define KVMK_IOAPIC_REMOTE_IRR (1ull << 14)
#define KVMK_IOAPIC_TRIGGER (1ull << 15)
#define KVMK_IOAPIC_MASKED (1ull << 16)
#define KVMK_IOAPIC_DEST_SHIFT 56
/* Bits the guest may write. */
#define KVMK_IOAPIC_WRITABLE \
	((0xffull << 56) | (0x1ffffull & ~(KVMK_IOAPIC_DELIVS | KVMK_IOAPIC_REMOTE_IRR)))

enum kvmk_ioapic_dm {
	KVMK_IOAPIC_DM_FIXED = 0,
	KVMK_IOAPIC_DM_LOWEST = 1,
	KVMK_IOAPIC_DM_SMI = 2,
	KVMK_IOAPIC_DM_NMI = 4,
	KVMK_IOAPIC_DM_INIT = 5,
	KVMK_IOAPIC_DM_EXTINT = 7,
};

struct kvmk_ioapic;

struct kvmk_ioapic_msi {
	uint64_t address;
	uint32_t data;
	uint32_t pin; /* the source pin (split irqchip: MSI route GSI = pin) */
};

struct kvmk_ioapic_config {
	/* Required. > 0 delivered (to that many CPUs), 0 blocked/coalesced,
	 * < 0 error. Called without the model's lock. */
	int (*deliver)(void *opaque, const struct kvmk_ioapic_msi *msg);
	/* Optional. @pin's EOI route changed ("EOI routes" above): @msg, or
	 * none if @masked. Split irqchip keeps KVM's MSI route of GSI @pin
	 * equal to it, since KVM computes its EOI-exit vectors from those
	 * routes. Called WITH the lock held: must not call into the model. */
	void (*route_changed)(void *opaque, unsigned int pin, const struct kvmk_ioapic_msi *msg,
			      bool masked);
	void *opaque;
	/* Treat set_level(pin, 1) as asserted whatever the polarity bit says. */
	bool polarity_ignored;
};

/* Resample notifier: the guest EOI'd a level entry of @pin (called without
 * the lock; it may call kvmk_ioapic_set_level()). */
typedef void (*kvmk_ioapic_resample_fn)(void *opaque, unsigned int pin);

/* Plain-data state for snapshot/migration. */
struct kvmk_ioapic_state {
	uint32_t id; /* ID register (bits 27:24) */
	uint32_t ioregsel; /* bits 7:0 */
	uint32_t irr; /* electrical input level of each pin, bit n = pin n */
	uint32_t pad;
	uint64_t redir[KVMK_IOAPIC_PINS]; /* delivery status is never saved */
};

/* The messages of the level deliveries in service (remote IRR set): the
 * EOI that ends each is that message's vector's, whatever the entry says
 * now ("EOI routes" above). Zero for a pin whose remote IRR is clear. */
struct kvmk_ioapic_inservice {
	uint64_t address[KVMK_IOAPIC_PINS];
	uint32_t data[KVMK_IOAPIC_PINS];
};

/* A reset model; -EINVAL without a deliver callback, -ENOMEM. */
int kvmk_ioapic_create(const struct kvmk_ioapic_config *cfg, struct kvmk_ioapic **out);
void kvmk_ioapic_destroy(struct kvmk_ioapic *io);
unsigned int kvmk_ioapic_pins(const struct kvmk_ioapic *io);

/* Registers back to their reset values; pin input levels (driven by the
 * devices) and resample notifiers are kept. Nothing is delivered. */
void kvmk_ioapic_reset(struct kvmk_ioapic *io);

/* MMIO handlers (kvmkit_io_ops signature, @opaque is the model), and the
 * ops to register at KVMK_IOAPIC_BASE with length KVMK_IOAPIC_MMIO_SIZE. */
void kvmk_ioapic_mmio_read(void *opaque, uint64_t offset, void *data, unsigned int size);
void kvmk_ioapic_mmio_write(void *opaque, uint64_t offset, const void *data, unsigned int size);
extern const struct kvmkit_io_ops kvmk_ioapic_mmio_ops;

/* Drives pin @pin; see the status convention above. */
int kvmk_ioapic_set_level(struct kvmk_ioapic *io, unsigned int pin, bool level);
/* EOI of @vector (0..255) from a LAPIC. Returns the number of level entries
 * with that vector, or -EINVAL. */
int kvmk_ioapic_eoi(struct kvmk_ioapic *io, uint32_t vector);
/* Delivers every level entry that is asserted, unmasked and has remote IRR
 * clear (after a restore, once the vCPUs are back). Returns the number of
 * messages the callback accepted (> 0). */
int kvmk_ioapic_service(struct kvmk_ioapic *io);

/* Installs (or with fn NULL removes) @pin's resample notifier. A notifier
 * that another thread is already running may still run once after this
 * returns: quiesce the vCPUs before freeing @opaque. */
int kvmk_ioapic_set_resample(struct kvmk_ioapic *io, unsigned int pin, kvmk_ioapic_resample_fn fn,
			     void *opaque);

/* The electrical input level of @pin (false for a bad pin); takes no lock,
 * so it may be called with locks held that are taken under the model's. */
bool kvmk_ioapic_input(struct kvmk_ioapic *io, unsigned int pin);
/* The entry as the guest reads it (delivery status included). */
int kvmk_ioapic_read_entry(struct kvmk_ioapic *io, unsigned int pin, uint64_t *out);
/* The MSI an entry sends (pin left 0). */
void kvmk_ioapic_entry_to_msi(uint64_t entry, struct kvmk_ioapic_msi *out);

void kvmk_ioapic_save(struct kvmk_ioapic *io, struct kvmk_ioapic_state *out);
/* @out: the in-service messages, taken under the same lock as @st's. */
void kvmk_ioapic_save_all(struct kvmk_ioapic *io, struct kvmk_ioapic_state *st,
			  struct kvmk_ioapic_inservice *out);
/* -EINVAL (KVMKIT_ERR_PARAM) and nothing changed if @st has reserved or
 * read-only-zero bits set (delivery status, remote IRR on an edge entry,
 * ID bits outside 27:24, IOREGSEL above 0xff, irr above pin 23). Nothing is
 * delivered; route_changed() reports each pin whose EOI route changed. The state holds no
 * in-service message: an entry restored with remote IRR set waits for the
 * EOI of its current vector and destination (kvmk_ioapic_restore_all takes
 * the messages too). */
int kvmk_ioapic_restore(struct kvmk_ioapic *io, const struct kvmk_ioapic_state *st);
/* The same with the in-service messages @sent (NULL: as above, the
 * entries' own). Each must have the form this model sends for a level
 * entry (address 0xfee00000 | dest << 12 | logical << 2; data vector,
 * delivery mode, level and assert bits) where @st has remote IRR set, and
 * be zero elsewhere, else -EINVAL and nothing changed.
 * The EOI routes reported are then those messages. */
int kvmk_ioapic_restore_all(struct kvmk_ioapic *io, const struct kvmk_ioapic_state *st,
			    const struct kvmk_ioapic_inservice *sent);

#endif
