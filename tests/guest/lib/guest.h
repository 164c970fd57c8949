/* SPDX-License-Identifier: MIT */
/*
 * kvmkit guest runtime: what a guest program sees.
 *
 * A program defines guest_main(). The runtime runs it on every vCPU at CPL3
 * with IOPL = 0. MMIO (the identity map is user-accessible) works directly;
 * port I/O, cli/sti and privileged calls go through the runtime's gate to CPL0 (the
 * helpers below do it), because some hosts (KVM-PVM nested) run guest CPL3
 * in hardware ring 3 where IOPL is not honoured. When guest_main() returns on vCPU 0 the
 * VM is powered off with its return value as status; on other vCPUs the
 * return value is ignored and the vCPU parks (halts for good).
 *
 * Code at CPL0 may be emulated instruction by instruction (very slowly) on
 * some hosts: do the work at CPL3 and use guest_cpl0_call() only for the odd
 * privileged instruction.
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h" /* the gate request numbers, shared with start.S */
#include "guest_abi.h"

#define __noreturn __attribute__((noreturn))
#define __printf(a, b) __attribute__((format(printf, a, b)))
#define barrier() __asm__ __volatile__("" ::: "memory")
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Provided by the program ---------------------------------------------- */

/* Runs on every vCPU at CPL3, interrupts off. @id: vCPU index, @count: how
 * many vCPUs the VM has. */
int guest_main(unsigned int id, unsigned int count);

/* ---- Per-vCPU state ------------------------------------------------------ */

struct guest_cpu {
	struct guest_cpu *self; /* %gs:0 */
	unsigned int id;
	unsigned int count;
	uint64_t ram_size;
	/* IF of the CPL3 context, kept by local_irq_enable/disable: where
	 * CPL3 runs in hardware ring 3, pushf does not show the guest's IF. */
	bool irqs_on;
};

static inline struct guest_cpu *guest_this_cpu(void)
{
	struct guest_cpu *c;

	__asm__("movq %%gs:0, %0" : "=r"(c));
	return c;
}

static inline unsigned int guest_cpu_id(void)
{
	return guest_this_cpu()->id;
}

static inline unsigned int guest_cpu_count(void)
{
	return guest_this_cpu()->count;
}

static inline unsigned int guest_cpl(void)
{
	uint16_t cs;

	__asm__ __volatile__("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

/* ---- The gate to CPL0 (start.S) --------------------------------------- */

void guest_gate_insn(void);

/* One gate request without a C call at CPL0: only RAX and flags change. */
static inline uint64_t guest_gate(uint32_t op, uint64_t di, uint64_t si, uint64_t dx)
{
	uint64_t r;

	__asm__ __volatile__("call guest_gate_insn"
			     : "=a"(r)
			     : "a"(op), "D"(di), "S"(si), "d"(dx)
			     : "memory", "cc");
	return r;
}

/* ---- Port I/O: direct at CPL0, through the gate at CPL3 ------------------ */

static inline void outb(uint16_t port, uint8_t v)
{
	if (guest_cpl())
		guest_gate(GATE_OUT, 1, v, port);
	else
		__asm__ __volatile__("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t v)
{
	if (guest_cpl())
		guest_gate(GATE_OUT, 2, v, port);
	else
		__asm__ __volatile__("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
	if (guest_cpl())
		guest_gate(GATE_OUT, 4, v, port);
	else
		__asm__ __volatile__("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

/* Writes @len bytes from @buf to @port with one `rep outsb`: one gate call
 * at CPL3 however long the string, where outb() costs one per byte. */
static inline void outsb(uint16_t port, const void *buf, size_t len)
{
	if (guest_cpl())
		guest_gate(GATE_OUTS, len, (uint64_t)buf, port);
	else
		__asm__ __volatile__("rep outsb" : "+S"(buf), "+c"(len) : "d"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	if (guest_cpl())
		return (uint8_t)guest_gate(GATE_IN, 1, 0, port);
	__asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	if (guest_cpl())
		return (uint16_t)guest_gate(GATE_IN, 2, 0, port);
	__asm__ __volatile__("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	if (guest_cpl())
		return (uint32_t)guest_gate(GATE_IN, 4, 0, port);
	__asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/* ---- MMIO (one access of exactly the given width) ------------------------ */

static inline void mmio_write8(uint64_t addr, uint8_t v)
{
	__asm__ __volatile__("movb %1, %0" : "=m"(*(volatile uint8_t *)addr) : "q"(v) : "memory");
}

static inline void mmio_write16(uint64_t addr, uint16_t v)
{
	__asm__ __volatile__("movw %1, %0" : "=m"(*(volatile uint16_t *)addr) : "r"(v) : "memory");
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	__asm__ __volatile__("movl %1, %0" : "=m"(*(volatile uint32_t *)addr) : "r"(v) : "memory");
}

static inline void mmio_write64(uint64_t addr, uint64_t v)
{
	__asm__ __volatile__("movq %1, %0" : "=m"(*(volatile uint64_t *)addr) : "r"(v) : "memory");
}

static inline uint8_t mmio_read8(uint64_t addr)
{
	uint8_t v;

	__asm__ __volatile__("movb %1, %0" : "=q"(v) : "m"(*(volatile uint8_t *)addr) : "memory");
	return v;
}

static inline uint16_t mmio_read16(uint64_t addr)
{
	uint16_t v;

	__asm__ __volatile__("movw %1, %0" : "=r"(v) : "m"(*(volatile uint16_t *)addr) : "memory");
	return v;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	uint32_t v;

	__asm__ __volatile__("movl %1, %0" : "=r"(v) : "m"(*(volatile uint32_t *)addr) : "memory");
	return v;
}

static inline uint64_t mmio_read64(uint64_t addr)
{
	uint64_t v;

	__asm__ __volatile__("movq %1, %0" : "=r"(v) : "m"(*(volatile uint64_t *)addr) : "memory");
	return v;
}

/* ---- kvmkit devices ----------------------------------------------------- */

/* Appends a 32-bit value to the host's report log. */
static inline void report(uint32_t v)
{
	outl(GUEST_REPORT_VALUE, v);
}

/* Reports a 64-bit value as two values: bits 31:0, then bits 63:32. */
static inline void report64(uint64_t v)
{
	report((uint32_t)v);
	report((uint32_t)(v >> 32));
}

/* How many values the host has logged so far (a VM exit per call). */
static inline uint32_t report_count(void)
{
	return inl(GUEST_REPORT_COUNT);
}

/* Stops the VM with @status (report device), then parks this vCPU. */
__noreturn void power_off(uint32_t status);
/* Stops the VM through isa-debug-exit (status (v << 1) | 1). */
__noreturn void debug_exit(uint8_t v);
/* Halts this vCPU for good (at CPL0, interrupts off). */
__noreturn void guest_park(void);

/* ---- Serial console (COM1) ------------------------------------------------ */

void serial_putc(char c);
void serial_write(const char *s, size_t len);
void serial_puts(const char *s); /* no newline added */
/* Formats %d %i %u %x %X %p %s %c %% with optional 0/-/# flags, width and
 * l/ll/z size; one call's output is never interleaved with another vCPU's. */
__printf(1, 2) void guest_printf(const char *fmt, ...);
void guest_vprintf(const char *fmt, va_list ap);
/* Formats into @buf (always NUL-terminated); returns the length it needed. */
__printf(3, 4) size_t guest_snprintf(char *buf, size_t size, const char *fmt, ...);

/* ---- CPU helpers and atomics --------------------------------------------- */

static inline void cpu_relax(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

#define atomic_load(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define atomic_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define atomic_store(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define atomic_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define atomic_fetch_add(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define atomic_add_fetch(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)
#define atomic_xchg(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
/* True if *p was @old and is now @new. */
#define atomic_cmpxchg(p, old, new)                                                      \
	({                                                                               \
		__typeof__(*(p)) __old = (old);                                          \
		__atomic_compare_exchange_n((p), &__old, (new), false, __ATOMIC_SEQ_CST, \
					    __ATOMIC_SEQ_CST);                           \
	})

struct guest_spinlock {
	uint32_t locked;
};

static inline void guest_spin_lock(struct guest_spinlock *l)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
			cpu_relax();
}

static inline void guest_spin_unlock(struct guest_spinlock *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

/* Sense-reversing spin barrier for @n vCPUs; reusable. Zero-initialize. */
struct guest_barrier {
	uint32_t arrived;
	uint32_t sense;
};

void guest_barrier_wait(struct guest_barrier *b, unsigned int n);

/* ---- Privilege and interrupts ------------------------------------------ */

/* Runs fn(arg) at CPL0 on this vCPU's kernel stack, interrupts off, through
 * the gate; returns its result. Keep fn short: CPL0 may be emulated. */
uint64_t guest_cpl0_call(uint64_t (*fn)(uint64_t), uint64_t arg);

typedef void (*guest_irq_handler_t)(unsigned int vector);

/* Installs @fn for @vector (32..255) on all vCPUs (the IDT is shared).
 * Handlers run at CPL0 on the kernel stack with IF = 0, so keep them short
 * (count, EOI): a gate to CPL3 code would lose IF on hosts that run CPL3 in
 * hardware ring 3, where iretq at CPL3 cannot set it. Vectors without a
 * handler report the vector and power off with GUEST_STATUS_UNHANDLED_IRQ.
 * The handler must acknowledge the interrupt source (e.g. APIC EOI). */
void guest_irq_install(unsigned int vector, guest_irq_handler_t fn);

/* IF of the caller's context (CPL3 through the gate, or CPL0 directly). */
static inline void local_irq_enable(void)
{
	if (guest_cpl()) {
		guest_gate(GATE_IRQ_ON, 0, 0, 0);
		guest_this_cpu()->irqs_on = true;
	} else {
		__asm__ __volatile__("sti" ::: "memory");
	}
}

static inline void local_irq_disable(void)
{
	if (guest_cpl()) {
		guest_gate(GATE_IRQ_OFF, 0, 0, 0);
		guest_this_cpu()->irqs_on = false;
	} else {
		__asm__ __volatile__("cli" ::: "memory");
	}
}

/* Whether the CPL3 context has interrupts enabled. */
static inline bool local_irqs_enabled(void)
{
	return guest_this_cpu()->irqs_on;
}

/* ---- Freestanding libc bits (also used by the compiler) ------------------- */

void *memset(void *s, int c, size_t n);
void *memcpy(void *restrict d, const void *restrict s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
