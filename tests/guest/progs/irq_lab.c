// SPDX-License-Identifier: MIT
/*
 * irq_lab: a guest the host drives through a per-vCPU mailbox, for testing
 * interrupt delivery (see the irq_lab section of guest_abi.h).
 *
 * Every vCPU, at CPL3:
 *  1. installs lab_irq() for every vector 32..255 (the IDT is shared, so
 *     each vCPU's READY also means "every handler is in place");
 *  2. zeroes its counter page, sets ack = seq and then READY = 1;
 *  3. polls its mailbox with pause until seq != ack, runs the command,
 *     writes the result and stores ack = seq, until GUEST_LAB_EXIT.
 *
 * The mailbox and the counters lie outside the image, above .bss, so the
 * loader does not clear them and the host may touch them at any time. The
 * guest never writes seq, cmd or args. The host must not send a command
 * before READY == 1: only then is ack meaningful.
 *
 * Not in guest_abi.h, but fixed here:
 *  - A command whose arguments are out of range (vector > 256, mode > 1,
 *    target > 2, pin > 119, LAPIC offset >= 0x1000 or not a multiple of 4,
 *    port > 0xffff, byte/base > 0xff, mask > 0xffff) does nothing; its
 *    result is ~0, as for an unknown command.
 *  - EXIT on vCPU 0 acks, then powers off. EXIT on another vCPU acks, then
 *    stops polling: with IF = 1 it spins at CPL3 and keeps counting
 *    interrupts; with IF = 0 it halts for good.
 *  - IOAPIC_READ/WRITE/SWAP/POLL hold a lock shared by all vCPUs
 *    (IOREGSEL/IOWIN is a register pair). Nothing else is serialized
 *    between vCPUs.
 *  - A handler program's IOAPIC op does not take that lock (the handler may
 *    have interrupted its own vCPU's command inside it): it saves IOREGSEL,
 *    writes, and restores IOREGSEL, which keeps the interrupted command on
 *    the same vCPU intact. The host must not run IOAPIC commands on other
 *    vCPUs while such a handler may run. HANDLER_OP with a vector below 32,
 *    an index past the program or an unknown op kind does nothing (~0).
 */
#include "guest.h"

#define LAPIC_BASE GUEST_U64(0xfee00000)
#define LAPIC_ID 0x20
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_SIZE 0x1000

#define IOAPIC_BASE GUEST_U64(0xfec00000)
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_REDTBL(pin) (0x10 + 2 * (pin))
#define IOAPIC_MAX_PIN 119 /* the last whose high dword index fits in 8 bits */

#define PIC_MASTER_CMD 0x20
#define PIC_MASTER_DATA 0x21
#define PIC_SLAVE_CMD 0xa0
#define PIC_SLAVE_DATA 0xa1
#define PIC_EOI 0x20 /* OCW2: non-specific EOI */

#define SPURIOUS_VECTOR 0xff
#define ALL_VECTORS 256
#define BAD_ARGS (~GUEST_U64(0))

struct lab_mailbox {
	uint32_t seq;
	uint32_t ack;
	uint32_t cmd;
	uint32_t reserved;
	uint64_t result;
	uint64_t args[4];
};

_Static_assert(__builtin_offsetof(struct lab_mailbox, seq) == GUEST_LAB_MB_SEQ, "seq");
_Static_assert(__builtin_offsetof(struct lab_mailbox, ack) == GUEST_LAB_MB_ACK, "ack");
_Static_assert(__builtin_offsetof(struct lab_mailbox, cmd) == GUEST_LAB_MB_CMD, "cmd");
_Static_assert(__builtin_offsetof(struct lab_mailbox, result) == GUEST_LAB_MB_RESULT, "result");
_Static_assert(__builtin_offsetof(struct lab_mailbox, args) == GUEST_LAB_MB_ARG(0), "args");

#define CNT_PAGE_SIZE 0x1000
#define CNT_TOTAL (GUEST_LAB_CNT_TOTAL / 4)
#define CNT_LAST (GUEST_LAB_CNT_LAST / 4)
#define CNT_PENDING_EOI (GUEST_LAB_CNT_PENDING_EOI / 4)
#define CNT_READY (GUEST_LAB_CNT_READY / 4)

/*
 * Per-vCPU, per-vector EOI setting: bit 0 = deferred, bits 2:1 = target.
 * Zero (in .bss) is AUTO to the LAPIC, the default. Written only by the
 * vCPU's own command loop, read by its own handler.
 */
#define EOI_CFG(mode, target) ((mode) | (target) << 1)
#define EOI_CFG_AUTO_LAPIC EOI_CFG(GUEST_LAB_EOI_AUTO, GUEST_LAB_EOI_TO_LAPIC)
#define EOI_CFG_AUTO_PIC EOI_CFG(GUEST_LAB_EOI_AUTO, GUEST_LAB_EOI_TO_PIC)
#define EOI_CFG_AUTO_PIC_BOTH EOI_CFG(GUEST_LAB_EOI_AUTO, GUEST_LAB_EOI_TO_PIC_BOTH)

static uint8_t eoi_cfg[GUEST_MAX_VCPUS][256];
static struct guest_spinlock ioapic_lock;
/* Handler programs per vector, shared by the vCPUs (GUEST_LAB_HANDLER_OP).
 * A vector gets lab_irq_prog() as its handler when its program is set, so
 * the others pay nothing for them (CPL0 may be emulated at ~1 us an
 * instruction). */
static uint64_t prog[256][GUEST_LAB_PROG_OPS];

static inline volatile uint32_t *lab_counters(unsigned int id)
{
	return (volatile uint32_t *)(GUEST_LAB_COUNTERS(0) + (uint64_t)id * CNT_PAGE_SIZE);
}

static inline struct lab_mailbox *lab_mailbox(unsigned int id)
{
	return (struct lab_mailbox *)(GUEST_LAB_MAILBOX(0) + (uint64_t)id * 0x100);
}

static inline void lapic_write(uint32_t off, uint32_t v)
{
	mmio_write32(LAPIC_BASE + off, v);
}

static inline uint32_t lapic_read(uint32_t off)
{
	return mmio_read32(LAPIC_BASE + off);
}

static inline void eoi_to(unsigned int target)
{
	switch (target) {
	case GUEST_LAB_EOI_TO_LAPIC:
		lapic_write(LAPIC_EOI, 0);
		break;
	case GUEST_LAB_EOI_TO_PIC_BOTH:
		outb(PIC_SLAVE_CMD, PIC_EOI);
		/* fall through */
	case GUEST_LAB_EOI_TO_PIC:
		outb(PIC_MASTER_CMD, PIC_EOI);
		break;
	}
}

/* One handler-program op, at CPL0 with IF = 0 (see the header for why the
 * IOAPIC op saves IOREGSEL instead of taking the lock). */
static void run_op(uint64_t op)
{
	volatile uint32_t *regsel = (volatile uint32_t *)(IOAPIC_BASE + IOAPIC_REGSEL);
	volatile uint32_t *win = (volatile uint32_t *)(IOAPIC_BASE + IOAPIC_WIN);
	uint32_t a = (uint32_t)(op >> 8) & 0xffff, b = (uint32_t)(op >> 32), saved;

	switch (op & 0xff) {
	case GUEST_LAB_OP_OUTB:
		outb((uint16_t)a, (uint8_t)b);
		break;
	case GUEST_LAB_OP_IOAPIC:
		saved = *regsel;
		*regsel = a;
		*win = b;
		*regsel = saved;
		break;
	}
}

/*
 * Every vector 32..255, at CPL0 with IF = 0 (interrupt gate: no nesting),
 * on the kernel stack; irq_common saves the caller-saved registers.
 * Counts, then EOIs, so the count is visible before the next interrupt
 * can be delivered.
 */
static void lab_irq(unsigned int vector)
{
	unsigned int id = guest_cpu_id();
	volatile uint32_t *cnt = lab_counters(id);
	unsigned int cfg = __atomic_load_n(&eoi_cfg[id][vector & 0xff], __ATOMIC_RELAXED);

	cnt[vector]++;
	cnt[CNT_TOTAL]++;
	cnt[CNT_LAST] = vector;
	if (vector == SPURIOUS_VECTOR)
		return; /* no ISR bit was set: never EOI */

	switch (cfg) {
	case EOI_CFG_AUTO_LAPIC:
		lapic_write(LAPIC_EOI, 0);
		break;
	case EOI_CFG_AUTO_PIC:
		outb(PIC_MASTER_CMD, PIC_EOI);
		break;
	case EOI_CFG_AUTO_PIC_BOTH:
		outb(PIC_SLAVE_CMD, PIC_EOI);
		outb(PIC_MASTER_CMD, PIC_EOI);
		break;
	default: /* deferred: the host asks for the EOI */
		cnt[CNT_PENDING_EOI]++;
		break;
	}
}

/* A vector with a handler program: its ops first (a device acknowledged, an
 * entry rewritten), then what every handler does. */
static void lab_irq_prog(unsigned int vector)
{
	const uint64_t *ops = prog[vector & 0xff];

	for (unsigned int i = 0; i < GUEST_LAB_PROG_OPS; i++) {
		uint64_t op = __atomic_load_n(&ops[i], __ATOMIC_RELAXED);

		if (!op)
			break;
		run_op(op);
	}
	lab_irq(vector);
}

enum ioapic_op { IOAPIC_OP_READ, IOAPIC_OP_WRITE, IOAPIC_OP_SWAP };

static uint64_t read_entry(volatile uint32_t *regsel, volatile uint32_t *win, uint32_t idx)
{
	uint64_t lo, hi;

	*regsel = idx;
	lo = *win;
	*regsel = idx + 1;
	hi = *win;
	return hi << 32 | lo;
}

/* READ returns the entry, WRITE 0, SWAP the entry before the write. */
static uint64_t ioapic_rw(uint64_t pin, enum ioapic_op op, uint64_t entry)
{
	volatile uint32_t *regsel = (volatile uint32_t *)(IOAPIC_BASE + IOAPIC_REGSEL);
	volatile uint32_t *win = (volatile uint32_t *)(IOAPIC_BASE + IOAPIC_WIN);
	uint32_t idx = IOAPIC_REDTBL((uint32_t)pin);
	uint64_t old = 0;

	if (pin > IOAPIC_MAX_PIN)
		return BAD_ARGS;
	guest_spin_lock(&ioapic_lock);
	if (op != IOAPIC_OP_WRITE)
		old = read_entry(regsel, win, idx);
	if (op != IOAPIC_OP_READ) {
		*regsel = idx + 1;
		*win = (uint32_t)(entry >> 32);
		*regsel = idx;
		*win = (uint32_t)entry;
	}
	guest_spin_unlock(&ioapic_lock);
	return old;
}

/* Bounded remote-IRR poll (GUEST_LAB_IOAPIC_POLL); at CPL3, so each read
 * is two MMIO exits and nothing is emulated. */
static uint64_t ioapic_poll(uint64_t pin, uint64_t max)
{
	volatile uint32_t *regsel = (volatile uint32_t *)(IOAPIC_BASE + IOAPIC_REGSEL);
	volatile uint32_t *win = (volatile uint32_t *)(IOAPIC_BASE + IOAPIC_WIN);
	uint32_t idx = IOAPIC_REDTBL((uint32_t)pin), lo = 0;
	uint64_t n;

	if (pin > IOAPIC_MAX_PIN || !max || max > 1000000)
		return BAD_ARGS;
	for (n = 1; n <= max; n++) {
		guest_spin_lock(&ioapic_lock);
		*regsel = idx;
		lo = *win;
		guest_spin_unlock(&ioapic_lock);
		if (!(lo & (1u << 14)) || n == max)
			break;
		cpu_relax();
	}
	return n << 32 | lo;
}

static uint64_t set_op(uint64_t vector, uint64_t index, uint64_t op)
{
	unsigned int kind = op & 0xff;

	if (vector < 32 || vector > 0xff || index >= GUEST_LAB_PROG_OPS ||
	    kind > GUEST_LAB_OP_IOAPIC)
		return BAD_ARGS;
	__atomic_store_n(&prog[vector][index], op, __ATOMIC_RELAXED);
	/* Installed with release: the handler, once there, sees the op. */
	guest_irq_install((unsigned int)vector, lab_irq_prog);
	return 0;
}

static uint64_t set_eoi_mode(unsigned int id, uint64_t vector, uint64_t mode, uint64_t target)
{
	uint8_t cfg;
	unsigned int v;

	if (vector > ALL_VECTORS || mode > GUEST_LAB_EOI_DEFERRED ||
	    target > GUEST_LAB_EOI_TO_PIC_BOTH)
		return BAD_ARGS;
	cfg = EOI_CFG(mode, target);
	if (vector < ALL_VECTORS) {
		__atomic_store_n(&eoi_cfg[id][vector], cfg, __ATOMIC_RELAXED);
		return 0;
	}
	for (v = 0; v < ALL_VECTORS; v++)
		__atomic_store_n(&eoi_cfg[id][v], cfg, __ATOMIC_RELAXED);
	return 0;
}

static uint64_t do_eoi(unsigned int id, uint64_t target)
{
	uint32_t *pending = (uint32_t *)&lab_counters(id)[CNT_PENDING_EOI];

	if (target > GUEST_LAB_EOI_TO_PIC_BOTH)
		return BAD_ARGS;
	eoi_to(target);
	/*
	 * Only this vCPU's handler changes PENDING_EOI, and only upwards: if
	 * it is non-zero here it still is at the (interrupt-atomic) decrement.
	 */
	if (__atomic_load_n(pending, __ATOMIC_RELAXED))
		__atomic_fetch_sub(pending, 1, __ATOMIC_RELAXED);
	return 0;
}

static uint64_t pic_init(uint64_t master, uint64_t slave, uint64_t mask)
{
	if (master > 0xff || slave > 0xff || mask > 0xffff)
		return BAD_ARGS;
	outb(PIC_MASTER_CMD, 0x11); /* ICW1: edge, cascade, ICW4 follows */
	outb(PIC_SLAVE_CMD, 0x11);
	outb(PIC_MASTER_DATA, (uint8_t)master); /* ICW2: vector base */
	outb(PIC_SLAVE_DATA, (uint8_t)slave);
	outb(PIC_MASTER_DATA, 0x04); /* ICW3: slave on IRQ2 */
	outb(PIC_SLAVE_DATA, 0x02); /* ICW3: cascade identity 2 */
	outb(PIC_MASTER_DATA, 0x01); /* ICW4: 8086 mode, normal EOI */
	outb(PIC_SLAVE_DATA, 0x01);
	outb(PIC_MASTER_DATA, (uint8_t)mask); /* OCW1: masks */
	outb(PIC_SLAVE_DATA, (uint8_t)(mask >> 8));
	return 0;
}

static bool lapic_off_ok(uint64_t off)
{
	return off < LAPIC_SIZE && !(off & 3);
}

static inline uint64_t rdtsc_now(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

enum lab_next { LAB_CONTINUE, LAB_STOP };

static uint64_t lab_run(unsigned int id, uint32_t cmd, const uint64_t *a, enum lab_next *next)
{
	switch (cmd) {
	case GUEST_LAB_NOP:
		return 0;
	case GUEST_LAB_LAPIC_ENABLE:
		lapic_write(LAPIC_SVR, 0x100 | SPURIOUS_VECTOR);
		lapic_write(LAPIC_TPR, 0);
		return 0;
	case GUEST_LAB_IOAPIC_WRITE:
		return ioapic_rw(a[0], IOAPIC_OP_WRITE, a[1]);
	case GUEST_LAB_IOAPIC_READ:
		return ioapic_rw(a[0], IOAPIC_OP_READ, 0);
	case GUEST_LAB_IOAPIC_SWAP:
		return ioapic_rw(a[0], IOAPIC_OP_SWAP, a[1]);
	case GUEST_LAB_IOAPIC_POLL:
		return ioapic_poll(a[0], a[1]);
	case GUEST_LAB_HANDLER_OP:
		return set_op(a[0], a[1], a[2]);
	case GUEST_LAB_EOI_MODE:
		return set_eoi_mode(id, a[0], a[1], a[2]);
	case GUEST_LAB_EOI:
		return do_eoi(id, a[0]);
	case GUEST_LAB_STI:
		local_irq_enable();
		return 0;
	case GUEST_LAB_CLI:
		local_irq_disable();
		return 0;
	case GUEST_LAB_PIC_INIT:
		return pic_init(a[0], a[1], a[2]);
	case GUEST_LAB_LAPIC_WRITE:
		if (!lapic_off_ok(a[0]) || a[1] > 0xffffffffu)
			return BAD_ARGS;
		lapic_write((uint32_t)a[0], (uint32_t)a[1]);
		return 0;
	case GUEST_LAB_LAPIC_READ:
		if (!lapic_off_ok(a[0]))
			return BAD_ARGS;
		return lapic_read((uint32_t)a[0]);
	case GUEST_LAB_OUTB:
		if (a[0] > 0xffff || a[1] > 0xff)
			return BAD_ARGS;
		outb((uint16_t)a[0], (uint8_t)a[1]);
		return 0;
	case GUEST_LAB_INB:
		if (a[0] > 0xffff)
			return BAD_ARGS;
		return inb((uint16_t)a[0]);
	case GUEST_LAB_EXIT:
		*next = LAB_STOP;
		return 0;
	case GUEST_LAB_APIC_ID:
		return lapic_read(LAPIC_ID) >> 24;
	case GUEST_LAB_RDTSC:
		return rdtsc_now();
	default:
		return BAD_ARGS;
	}
}

int guest_main(unsigned int id, unsigned int count)
{
	struct lab_mailbox *mb = lab_mailbox(id);
	volatile uint32_t *cnt = lab_counters(id);
	enum lab_next next = LAB_CONTINUE;
	uint32_t done, seq, cmd;
	uint64_t args[4], result;
	unsigned int v, i;

	/* The IDT is shared: installing twice is harmless, and it makes this
	 * vCPU's READY imply that every handler is in place. */
	for (v = 32; v < ALL_VECTORS; v++)
		guest_irq_install(v, lab_irq);

	/* Interrupts are off: nothing counts yet. Zero the whole page, READY
	 * included; the mailbox is left alone (the host owns seq/cmd/args). */
	for (i = 0; i < CNT_PAGE_SIZE / 4; i++)
		cnt[i] = 0;
	/*
	 * The host sends no command before READY == 1, so whatever seq holds
	 * now (0 on a fresh VM) is "nothing to do": acknowledge it. Then
	 * announce the loop; the release orders the zeroing and ack first.
	 */
	done = atomic_load_acquire(&mb->seq);
	atomic_store_release(&mb->ack, done);
	atomic_store_release((uint32_t *)&cnt[CNT_READY], 1);

	while (next == LAB_CONTINUE) {
		/* Acquire: cmd and args are read after the host's seq store. */
		seq = __atomic_load_n(&mb->seq, __ATOMIC_ACQUIRE);
		if (seq == done) {
			cpu_relax();
			continue;
		}
		cmd = __atomic_load_n(&mb->cmd, __ATOMIC_RELAXED);
		for (i = 0; i < ARRAY_SIZE(args); i++)
			args[i] = __atomic_load_n(&mb->args[i], __ATOMIC_RELAXED);

		result = lab_run(id, cmd, args, &next);

		__atomic_store_n(&mb->result, result, __ATOMIC_RELAXED);
		/* Release: the result (and the command's effects on memory) are
		 * visible before the ack. */
		atomic_store_release(&mb->ack, seq);
		done = seq;
	}

	/* GUEST_LAB_EXIT, already acknowledged. */
	if (id == 0)
		power_off((uint32_t)args[0]);
	if (!local_irqs_enabled())
		guest_park(); /* IF = 0 stays 0: halting changes nothing */
	for (;;)
		cpu_relax(); /* IF = 1: keep taking (and counting) interrupts */
}
