// SPDX-License-Identifier: MIT
/*
 * Userspace 82093AA-style I/O APIC for split irqchip. The behaviour, the
 * access rules and the locking are documented in ioapic.h.
 *
 * Delivery is decided under the lock and performed after it is dropped: a
 * decision is a "pending" record (the MSI, the pin, and for a level entry
 * the remote-IRR epoch it claimed). While a record is outstanding the pin's
 * in-flight count makes its delivery status bit read 1.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "ioapic"
#include "core/internal.h"
#include "arch/x86/ioapic.h"
#include <kvmkit/irq.h>

#define ID_MASK 0x0f000000u
#define DEST_MASK (0xffull << KVMK_IOAPIC_DEST_SHIFT)
#define LOW_WRITABLE (KVMK_IOAPIC_WRITABLE & 0xffffffffull)
#define MSI_BASE 0xfee00000ull

struct resample {
	kvmk_ioapic_resample_fn fn;
	void *opaque;
};

struct kvmk_ioapic {
	pthread_mutex_t lock;
	struct kvmk_ioapic_config cfg;
	uint32_t id;
	uint32_t ioregsel;
	uint32_t irr; /* electrical input level per pin; written atomically */
	uint64_t redir[KVMK_IOAPIC_PINS]; /* delivery status never stored */
	uint32_t inflight[KVMK_IOAPIC_PINS];
	uint32_t epoch[KVMK_IOAPIC_PINS]; /* bumped whenever remote IRR is cleared */
	struct resample resample[KVMK_IOAPIC_PINS];
	/* The message of the level delivery that set remote IRR: its EOI is
	 * what clears it, whatever the entry says by then. */
	struct kvmk_ioapic_msi sent[KVMK_IOAPIC_PINS];
	/* The EOI route last reported through route_changed(). */
	struct kvmk_ioapic_msi route[KVMK_IOAPIC_PINS];
	bool route_valid[KVMK_IOAPIC_PINS];
};

struct pending {
	struct kvmk_ioapic_msi msg;
	unsigned int pin;
	bool level;
	uint32_t epoch;
	int ret;
};

struct batch {
	struct pending p[KVMK_IOAPIC_PINS];
	unsigned int n;
};

static bool pin_ok(unsigned int pin)
{
	return pin < KVMK_IOAPIC_PINS;
}

void kvmk_ioapic_entry_to_msi(uint64_t entry, struct kvmk_ioapic_msi *out)
{
	uint64_t dest = entry >> KVMK_IOAPIC_DEST_SHIFT;
	uint32_t dm = (uint32_t)((entry & KVMK_IOAPIC_DM_MASK) >> KVMK_IOAPIC_DM_SHIFT);

	out->address = MSI_BASE | dest << 12 | (entry & KVMK_IOAPIC_DESTMODE ? 1u << 2 : 0);
	out->data = (uint32_t)(entry & KVMK_IOAPIC_VECTOR) | dm << 8;
	if (entry & KVMK_IOAPIC_TRIGGER)
		out->data |= 1u << 15 | 1u << 14;
	out->pin = 0;
}

static bool dm_reserved(uint64_t entry)
{
	uint64_t dm = (entry & KVMK_IOAPIC_DM_MASK) >> KVMK_IOAPIC_DM_SHIFT;

	return dm == 3 || dm == 6;
}

/* Is the pin's input active, after polarity? */
static bool asserted(const struct kvmk_ioapic *io, unsigned int pin)
{
	bool level = io->irr >> pin & 1;

	if (!io->cfg.polarity_ignored && (io->redir[pin] & KVMK_IOAPIC_POLARITY))
		level = !level;
	return level;
}

/*
 * Under the lock: reports the pin's EOI route if it changed (ioapic.h,
 * "EOI routes"): while remote IRR is set, the message that set it; else the
 * entry's message, or none if the entry is masked.
 */
static void publish(struct kvmk_ioapic *io, unsigned int pin)
{
	struct kvmk_ioapic_msi msg;
	bool valid;

	if (io->redir[pin] & KVMK_IOAPIC_REMOTE_IRR) {
		msg = io->sent[pin];
		valid = true;
	} else {
		kvmk_ioapic_entry_to_msi(io->redir[pin], &msg);
		valid = !(io->redir[pin] & KVMK_IOAPIC_MASKED);
	}
	msg.pin = pin;
	/* No route stays no route, whatever the masked entry says. */
	if (valid == io->route_valid[pin] &&
	    (!valid || (msg.address == io->route[pin].address && msg.data == io->route[pin].data)))
		return;
	io->route[pin] = msg;
	io->route_valid[pin] = valid;
	if (io->cfg.route_changed)
		io->cfg.route_changed(io->cfg.opaque, pin, &msg, !valid);
}

static void clear_remote_irr(struct kvmk_ioapic *io, unsigned int pin)
{
	if (io->redir[pin] & KVMK_IOAPIC_REMOTE_IRR) {
		io->redir[pin] &= ~KVMK_IOAPIC_REMOTE_IRR;
		io->epoch[pin]++;
		publish(io, pin);
	}
}

/* Under the lock: remote IRR set by a delivery of @msg. */
static void set_remote_irr(struct kvmk_ioapic *io, unsigned int pin,
			   const struct kvmk_ioapic_msi *msg)
{
	io->redir[pin] |= KVMK_IOAPIC_REMOTE_IRR;
	io->sent[pin] = *msg;
	publish(io, pin);
}

/*
 * Under the lock: queue a message for @pin, whose input condition (edge or
 * asserted level) the caller has established. Returns 1 if queued, else the
 * status: KVMK_IRQ_MASKED, or 0 for a level entry still in service.
 */
static int try_fire(struct kvmk_ioapic *io, unsigned int pin, struct batch *b)
{
	uint64_t e = io->redir[pin];
	struct pending *p;

	if ((e & KVMK_IOAPIC_MASKED) || dm_reserved(e))
		return KVMK_IRQ_MASKED;
	if ((e & KVMK_IOAPIC_TRIGGER) && (e & KVMK_IOAPIC_REMOTE_IRR))
		return 0;
	p = &b->p[b->n++];
	kvmk_ioapic_entry_to_msi(e, &p->msg);
	p->msg.pin = pin;
	if (e & KVMK_IOAPIC_TRIGGER)
		set_remote_irr(io, pin, &p->msg);
	p->pin = pin;
	p->level = e & KVMK_IOAPIC_TRIGGER;
	p->epoch = io->epoch[pin];
	p->ret = 0;
	io->inflight[pin]++;
	return 1;
}

/*
 * Called with the lock held, returns with it released: sends the queued
 * messages, then settles remote IRR for the level ones that were not
 * accepted. Returns how many were delivered (callback > 0).
 */
static int flush(struct kvmk_ioapic *io, struct batch *b)
{
	int delivered = 0;

	if (!b->n) {
		pthread_mutex_unlock(&io->lock);
		return 0;
	}
	pthread_mutex_unlock(&io->lock);
	for (unsigned int i = 0; i < b->n; i++)
		b->p[i].ret = io->cfg.deliver(io->cfg.opaque, &b->p[i].msg);
	pthread_mutex_lock(&io->lock);
	for (unsigned int i = 0; i < b->n; i++) {
		struct pending *p = &b->p[i];

		io->inflight[p->pin]--;
		if (p->ret > 0)
			delivered++;
		else if (p->level && io->epoch[p->pin] == p->epoch)
			clear_remote_irr(io, p->pin);
	}
	pthread_mutex_unlock(&io->lock);
	return delivered;
}

int kvmk_ioapic_create(const struct kvmk_ioapic_config *cfg, struct kvmk_ioapic **out)
{
	struct kvmk_ioapic *io;

	if (!cfg || !cfg->deliver || !out)
		return kvmk_err_param("ioapic_create", "cfg", "needs a deliver callback", "%p",
				      (const void *)cfg);
	io = calloc(1, sizeof(*io));
	if (!io)
		return kvmk_err_resource("ioapic_create", ENOMEM, NULL);
	pthread_mutex_init(&io->lock, NULL);
	io->cfg = *cfg;
	for (unsigned int i = 0; i < KVMK_IOAPIC_PINS; i++)
		io->redir[i] = KVMK_IOAPIC_MASKED;
	*out = io;
	return 0;
}

void kvmk_ioapic_destroy(struct kvmk_ioapic *io)
{
	if (!io)
		return;
	pthread_mutex_destroy(&io->lock);
	free(io);
}

unsigned int kvmk_ioapic_pins(const struct kvmk_ioapic *io)
{
	return KVMK_IOAPIC_PINS;
}

void kvmk_ioapic_reset(struct kvmk_ioapic *io)
{
	pthread_mutex_lock(&io->lock);
	io->id = 0;
	io->ioregsel = 0;
	for (unsigned int i = 0; i < KVMK_IOAPIC_PINS; i++) {
		if (io->redir[i] & KVMK_IOAPIC_REMOTE_IRR)
			io->epoch[i]++;
		io->redir[i] = KVMK_IOAPIC_MASKED;
		publish(io, i);
	}
	pthread_mutex_unlock(&io->lock);
}

static uint64_t entry_view(const struct kvmk_ioapic *io, unsigned int pin)
{
	return io->redir[pin] | (io->inflight[pin] ? KVMK_IOAPIC_DELIVS : 0);
}

static uint32_t read_reg(const struct kvmk_ioapic *io, uint32_t index)
{
	switch (index) {
	case KVMK_IOAPIC_REG_ID:
	case KVMK_IOAPIC_REG_ARB: /* loaded from the ID on every ID write */
		return io->id;
	case KVMK_IOAPIC_REG_VER:
		return KVMK_IOAPIC_VERSION;
	}
	if (index >= KVMK_IOAPIC_REG_REDTBL &&
	    index < KVMK_IOAPIC_REG_REDTBL + 2 * KVMK_IOAPIC_PINS) {
		unsigned int pin = (index - KVMK_IOAPIC_REG_REDTBL) / 2;
		uint64_t e = entry_view(io, pin);

		return (uint32_t)(index & 1 ? e >> 32 : e);
	}
	return 0;
}

/* Under the lock; may queue a delivery for a level entry. */
static void write_entry(struct kvmk_ioapic *io, unsigned int pin, bool high, uint32_t val,
			struct batch *b)
{
	uint64_t old = io->redir[pin], e;

	if (high)
		e = (old & 0xffffffffull) | ((uint64_t)val << 32 & DEST_MASK);
	else
		e = (old & ~0xffffffffull) | (val & LOW_WRITABLE) | (old & KVMK_IOAPIC_REMOTE_IRR);
	io->redir[pin] = e;
	/* An entry in service keeps its EOI route until its EOI; switching it
	 * to edge ends the wait (remote IRR clears) and publishes the entry. */
	if (!(e & KVMK_IOAPIC_TRIGGER))
		clear_remote_irr(io, pin);
	publish(io, pin);
	e = io->redir[pin];
	if ((e & KVMK_IOAPIC_TRIGGER) && !(e & (KVMK_IOAPIC_MASKED | KVMK_IOAPIC_REMOTE_IRR)) &&
	    asserted(io, pin))
		try_fire(io, pin, b);
}

static void write_reg(struct kvmk_ioapic *io, uint32_t index, uint32_t val, struct batch *b)
{
	if (index == KVMK_IOAPIC_REG_ID) {
		io->id = val & ID_MASK;
		return;
	}
	if (index >= KVMK_IOAPIC_REG_REDTBL &&
	    index < KVMK_IOAPIC_REG_REDTBL + 2 * KVMK_IOAPIC_PINS)
		write_entry(io, (index - KVMK_IOAPIC_REG_REDTBL) / 2, index & 1, val, b);
	/* VER, ARB and unimplemented indexes are read-only. */
}

static bool mmio_defined(uint64_t offset, unsigned int size)
{
	return size == 4 && (offset == KVMK_IOAPIC_REGSEL || offset == KVMK_IOAPIC_WIN);
}

void kvmk_ioapic_mmio_read(void *opaque, uint64_t offset, void *data, unsigned int size)
{
	struct kvmk_ioapic *io = opaque;
	uint8_t *d = data;
	uint32_t v;

	if (!mmio_defined(offset, size)) {
		memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&io->lock);
	v = offset == KVMK_IOAPIC_REGSEL ? io->ioregsel : read_reg(io, io->ioregsel);
	pthread_mutex_unlock(&io->lock);
	for (unsigned int i = 0; i < 4; i++)
		d[i] = (uint8_t)(v >> (8 * i));
}

void kvmk_ioapic_mmio_write(void *opaque, uint64_t offset, const void *data, unsigned int size)
{
	struct kvmk_ioapic *io = opaque;
	const uint8_t *d = data;
	struct batch b;
	uint32_t v = 0;

	if (!mmio_defined(offset, size))
		return;
	for (unsigned int i = 0; i < 4; i++)
		v |= (uint32_t)d[i] << (8 * i);
	b.n = 0;
	pthread_mutex_lock(&io->lock);
	if (offset == KVMK_IOAPIC_REGSEL)
		io->ioregsel = v & 0xff;
	else
		write_reg(io, io->ioregsel, v, &b);
	flush(io, &b);
}

const struct kvmkit_io_ops kvmk_ioapic_mmio_ops = {
	.read = kvmk_ioapic_mmio_read,
	.write = kvmk_ioapic_mmio_write,
};

int kvmk_ioapic_set_level(struct kvmk_ioapic *io, unsigned int pin, bool level)
{
	bool was, now;
	struct batch b;
	int r;

	if (!pin_ok(pin))
		return kvmk_err_param("ioapic_set_level", "pin", "IOAPIC has 24 pins", "%u", pin);
	b.n = 0;
	pthread_mutex_lock(&io->lock);
	was = asserted(io, pin);
	if (level)
		__atomic_or_fetch(&io->irr, 1u << pin, __ATOMIC_RELEASE);
	else
		__atomic_and_fetch(&io->irr, ~(1u << pin), __ATOMIC_RELEASE);
	now = asserted(io, pin);
	if (!now)
		r = 0;
	else if (io->redir[pin] & KVMK_IOAPIC_MASKED)
		r = KVMK_IRQ_MASKED;
	else if (!(io->redir[pin] & KVMK_IOAPIC_TRIGGER) && was)
		r = 0; /* edge entry, no new edge */
	else
		r = try_fire(io, pin, &b);
	flush(io, &b);
	return b.n ? b.p[0].ret : r;
}

int kvmk_ioapic_eoi(struct kvmk_ioapic *io, uint32_t vector)
{
	struct resample notify[KVMK_IOAPIC_PINS];
	unsigned int pins[KVMK_IOAPIC_PINS], n = 0;
	uint32_t epochs[KVMK_IOAPIC_PINS];
	struct batch b;

	if (vector > 0xff)
		return kvmk_err_param("ioapic_eoi", "vector", "must be 0..255", "%u", vector);
	b.n = 0;
	pthread_mutex_lock(&io->lock);
	for (unsigned int i = 0; i < KVMK_IOAPIC_PINS; i++) {
		uint64_t e = io->redir[i];
		/* In service: the vector that was sent, even if the guest has
		 * rewritten the entry since; else the entry's (a coalesced
		 * delivery's retry point). */
		uint32_t v = e & KVMK_IOAPIC_REMOTE_IRR ? io->sent[i].data & 0xff :
							  (uint32_t)(e & KVMK_IOAPIC_VECTOR);

		if (v != vector || !(e & KVMK_IOAPIC_TRIGGER))
			continue;
		notify[n] = io->resample[i];
		epochs[n] = io->epoch[i];
		pins[n++] = i;
	}
	pthread_mutex_unlock(&io->lock);
	/*
	 * Devices hear of the EOI before the line is sampled again, so one that
	 * de-asserts (irqfd resample semantics) is not delivered twice. Remote
	 * IRR stays set until they have: cleared before, another thread's
	 * entry write or set_level in this window would find the pin free and
	 * still asserted and send the same assertion again (as KVM's IOAPIC
	 * does, the resampler runs first).
	 */
	for (unsigned int k = 0; k < n; k++)
		if (notify[k].fn)
			notify[k].fn(notify[k].opaque, pins[k]);
	pthread_mutex_lock(&io->lock);
	for (unsigned int k = 0; k < n; k++) {
		unsigned int i = pins[k];
		uint64_t e;

		/* Unless something ended this service meanwhile (an edge switch,
		 * an EOI of the same vector on another vCPU). */
		if (io->epoch[i] == epochs[k])
			clear_remote_irr(io, i);
		e = io->redir[i];

		if ((e & KVMK_IOAPIC_TRIGGER) &&
		    !(e & (KVMK_IOAPIC_MASKED | KVMK_IOAPIC_REMOTE_IRR)) && asserted(io, i))
			try_fire(io, i, &b);
	}
	flush(io, &b);
	return (int)n;
}

int kvmk_ioapic_service(struct kvmk_ioapic *io)
{
	struct batch b;

	b.n = 0;
	pthread_mutex_lock(&io->lock);
	for (unsigned int i = 0; i < KVMK_IOAPIC_PINS; i++) {
		uint64_t e = io->redir[i];

		if ((e & KVMK_IOAPIC_TRIGGER) &&
		    !(e & (KVMK_IOAPIC_MASKED | KVMK_IOAPIC_REMOTE_IRR)) && asserted(io, i))
			try_fire(io, i, &b);
	}
	return flush(io, &b);
}

int kvmk_ioapic_set_resample(struct kvmk_ioapic *io, unsigned int pin, kvmk_ioapic_resample_fn fn,
			     void *opaque)
{
	if (!pin_ok(pin))
		return kvmk_err_param("ioapic_set_resample", "pin", "IOAPIC has 24 pins", "%u",
				      pin);
	pthread_mutex_lock(&io->lock);
	io->resample[pin].fn = fn;
	io->resample[pin].opaque = fn ? opaque : NULL;
	pthread_mutex_unlock(&io->lock);
	return 0;
}

bool kvmk_ioapic_input(struct kvmk_ioapic *io, unsigned int pin)
{
	/* Without the lock (callers may hold locks taken under it): every
	 * write of irr is atomic. */
	return pin_ok(pin) && (__atomic_load_n(&io->irr, __ATOMIC_ACQUIRE) >> pin & 1);
}

int kvmk_ioapic_read_entry(struct kvmk_ioapic *io, unsigned int pin, uint64_t *out)
{
	if (!pin_ok(pin))
		return kvmk_err_param("ioapic_read_entry", "pin", "IOAPIC has 24 pins", "%u", pin);
	pthread_mutex_lock(&io->lock);
	*out = entry_view(io, pin);
	pthread_mutex_unlock(&io->lock);
	return 0;
}

static void save_locked(struct kvmk_ioapic *io, struct kvmk_ioapic_state *out)
{
	memset(out, 0, sizeof(*out));
	out->id = io->id;
	out->ioregsel = io->ioregsel;
	out->irr = io->irr;
	memcpy(out->redir, io->redir, sizeof(out->redir));
}

void kvmk_ioapic_save(struct kvmk_ioapic *io, struct kvmk_ioapic_state *out)
{
	pthread_mutex_lock(&io->lock);
	save_locked(io, out);
	pthread_mutex_unlock(&io->lock);
}

void kvmk_ioapic_save_all(struct kvmk_ioapic *io, struct kvmk_ioapic_state *st,
			  struct kvmk_ioapic_inservice *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&io->lock);
	save_locked(io, st);
	for (unsigned int i = 0; i < KVMK_IOAPIC_PINS; i++)
		if (io->redir[i] & KVMK_IOAPIC_REMOTE_IRR) {
			out->address[i] = io->sent[i].address;
			out->data[i] = io->sent[i].data;
		}
	pthread_mutex_unlock(&io->lock);
}

/* Is @sent's message for @pin one this model could have sent for the
 * entry @e (see kvmk_ioapic_restore_all)? */
static bool sent_ok(uint64_t e, const struct kvmk_ioapic_inservice *sent, unsigned int pin)
{
	const uint64_t addr_var = 0xffull << 12 | 1u << 2;
	const uint32_t level = 1u << 15 | 1u << 14;
	uint64_t a = sent->address[pin];
	uint32_t d = sent->data[pin];

	if (!(e & KVMK_IOAPIC_REMOTE_IRR))
		return !a && !d;
	return (a & ~addr_var) == MSI_BASE && (d & ~0x7ffu) == level;
}

int kvmk_ioapic_restore(struct kvmk_ioapic *io, const struct kvmk_ioapic_state *st)
{
	return kvmk_ioapic_restore_all(io, st, NULL);
}

int kvmk_ioapic_restore_all(struct kvmk_ioapic *io, const struct kvmk_ioapic_state *st,
			    const struct kvmk_ioapic_inservice *sent)
{
	const char *op = "ioapic_restore";

	if (st->id & ~ID_MASK)
		return kvmk_err_param(op, "id", "only bits 27:24 exist", "0x%x", st->id);
	if (st->ioregsel > 0xff)
		return kvmk_err_param(op, "ioregsel", "8-bit register", "0x%x", st->ioregsel);
	if (st->irr >> KVMK_IOAPIC_PINS)
		return kvmk_err_param(op, "irr", "IOAPIC has 24 pins", "0x%x", st->irr);
	if (st->pad)
		return kvmk_err_param(op, "pad", "must be 0", "0x%x", st->pad);
	for (unsigned int i = 0; i < KVMK_IOAPIC_PINS; i++) {
		uint64_t e = st->redir[i];

		if (e & ~(KVMK_IOAPIC_WRITABLE | KVMK_IOAPIC_REMOTE_IRR))
			return kvmk_err_param(op, "redir", "reserved or delivery-status bits set",
					      "pin %u 0x%016llx", i, (unsigned long long)e);
		if ((e & KVMK_IOAPIC_REMOTE_IRR) && !(e & KVMK_IOAPIC_TRIGGER))
			return kvmk_err_param(op, "redir", "remote IRR on an edge entry",
					      "pin %u 0x%016llx", i, (unsigned long long)e);
		if (sent && !sent_ok(e, sent, i))
			return kvmk_err_param(op, "in-service message",
					      "not a level message of this IOAPIC, or set while "
					      "remote IRR is clear",
					      "pin %u address 0x%llx data 0x%x", i,
					      (unsigned long long)sent->address[i], sent->data[i]);
	}
	pthread_mutex_lock(&io->lock);
	io->id = st->id;
	io->ioregsel = st->ioregsel;
	__atomic_store_n(&io->irr, st->irr, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < KVMK_IOAPIC_PINS; i++) {
		io->redir[i] = st->redir[i];
		io->epoch[i]++;
		if (sent && (st->redir[i] & KVMK_IOAPIC_REMOTE_IRR)) {
			io->sent[i].address = sent->address[i];
			io->sent[i].data = sent->data[i];
		} else {
			/* Without the messages the entry's is the best
			 * knowledge (a guest that re-vectored an entry in
			 * service right before the save loses that EOI). */
			kvmk_ioapic_entry_to_msi(st->redir[i], &io->sent[i]);
		}
		io->sent[i].pin = i;
		publish(io, i);
	}
	pthread_mutex_unlock(&io->lock);
	return 0;
}
