/* SPDX-License-Identifier: MIT */
/*
 * Host side of the irq_lab guest (tests/guest/progs/irq_lab.c): send it
 * commands through its per-vCPU mailbox and read its per-vector interrupt
 * counters. All waits are bounded by the watchdog; none is a timing
 * assertion.
 */
#ifndef KVMKIT_TESTS_LAB_H
#define KVMKIT_TESTS_LAB_H

#include "kvm_test.h"

struct lab {
	struct kvmkit_machine *m;
	struct kvmkit_vm *vm;
	struct kvmkit_irqchip *chip;
	unsigned int vcpus;
};

/* A delivery status as one number the tests compare: CPUs that took it
 * (> 0), 0 coalesced, -1 masked; a failed call fails the test. */
static inline int irq_num(int r, const struct kvmkit_irq_status *st)
{
	assert_int_equal(r, 0);
	return st->result == KVMKIT_IRQ_DELIVERED ? (int)st->cpus :
	       st->result == KVMKIT_IRQ_COALESCED ? 0 :
						    -1;
}

static inline int irq_pulse(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	struct kvmkit_irq_status st;

	return irq_num(kvmkit_irq_pulse(chip, gsi, &st), &st);
}

static inline int irq_assert(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	struct kvmkit_irq_status st;

	return irq_num(kvmkit_irq_line(chip, gsi, true, &st), &st);
}

static inline int msi_send(struct kvmkit_irqchip *chip, uint64_t addr, uint32_t data)
{
	struct kvmkit_irq_status st;

	return irq_num(kvmkit_signal_msi(chip, addr, data, -1, &st), &st);
}

static inline volatile uint32_t *lab_u32(struct lab *l, uint64_t gpa)
{
	volatile uint32_t *p = kvmkit_vm_gpa_to_hva(l->vm, gpa, 4);

	if (!p)
		fail_msg("lab: gpa 0x%llx not in RAM", (unsigned long long)gpa);
	return p;
}

static inline uint32_t lab_count(struct lab *l, unsigned int cpu, unsigned int vector)
{
	return __atomic_load_n(lab_u32(l, GUEST_LAB_COUNTERS(cpu) + GUEST_LAB_CNT_VECTOR(vector)),
			       __ATOMIC_ACQUIRE);
}

static inline uint32_t lab_total(struct lab *l, unsigned int cpu)
{
	return __atomic_load_n(lab_u32(l, GUEST_LAB_COUNTERS(cpu) + GUEST_LAB_CNT_TOTAL),
			       __ATOMIC_ACQUIRE);
}

/* Runs one command on vCPU @cpu and returns its result. */
static inline uint64_t lab_cmd(struct lab *l, unsigned int cpu, uint32_t cmd, uint64_t a0,
			       uint64_t a1, uint64_t a2)
{
	uint64_t mb = GUEST_LAB_MAILBOX(cpu);
	volatile uint32_t *seq = lab_u32(l, mb + GUEST_LAB_MB_SEQ);
	volatile uint32_t *ack = lab_u32(l, mb + GUEST_LAB_MB_ACK);
	uint64_t args[3] = { a0, a1, a2 }, result;
	uint32_t next = *seq + 1;

	assert_int_equal(kvmkit_vm_write(l->vm, mb + GUEST_LAB_MB_ARG(0), args, sizeof(args)), 0);
	*lab_u32(l, mb + GUEST_LAB_MB_CMD) = cmd;
	__atomic_store_n(seq, next, __ATOMIC_RELEASE);
	for (int i = 0; __atomic_load_n(ack, __ATOMIC_ACQUIRE) != next; i++) {
		if (i > GUEST_WATCHDOG_MS * 10)
			fail_msg("lab: vCPU %u did not acknowledge command %u", cpu, cmd);
		usleep(100);
	}
	assert_int_equal(kvmkit_vm_read(l->vm, mb + GUEST_LAB_MB_RESULT, &result, 8), 0);
	return result;
}

/* Waits until vCPU @cpu has taken @want interrupts on @vector. */
static inline void lab_wait_count(struct lab *l, unsigned int cpu, unsigned int vector,
				  uint32_t want)
{
	for (int i = 0; lab_count(l, cpu, vector) < want; i++) {
		if (i > GUEST_WATCHDOG_MS * 10)
			fail_msg("lab: vCPU %u saw %u interrupts on vector 0x%x, expected %u", cpu,
				 lab_count(l, cpu, vector), vector, want);
		usleep(100);
	}
}

/* Exactly @want, and still @want after a command round trip: any interrupt
 * already injected is taken before the guest runs the next command. */
static inline void lab_expect_count(struct lab *l, unsigned int cpu, unsigned int vector,
				    uint32_t want)
{
	lab_wait_count(l, cpu, vector, want);
	lab_cmd(l, cpu, GUEST_LAB_NOP, 0, 0, 0);
	assert_int_equal(lab_count(l, cpu, vector), want);
}

/* Starts irq_lab on @vcpus vCPUs with an irqchip in chip_mode and waits until every vCPU's command loop runs. */
static inline void lab_start(struct lab *l, unsigned int vcpus)
{
	struct kvmkit_machine_config cfg;

	memset(l, 0, sizeof(*l));
	guest_config(&cfg, "irq_lab", vcpus, 64 << 20);
	cfg.irqchip = true; /* kernel mode: with the PIT */
	cfg.irqchip_mode = chip_mode;
	/* Handler programs drive lines through the test device's ports. */
	cfg.testdev = KVMKIT_TESTDEV_ON;
	l->m = machine_from(&cfg);
	l->vm = kvmkit_machine_vm(l->m);
	l->chip = kvmkit_machine_irqchip(l->m);
	l->vcpus = vcpus;
	assert_non_null(l->chip);
	assert_int_equal(kvmkit_irqchip_mode(l->chip), chip_mode);
	if (kvmkit_vm_start(l->vm))
		fail_msg("start: %s", kvmkit_strerror());
	for (unsigned int c = 0; c < vcpus; c++)
		for (int i = 0; !*lab_u32(l, GUEST_LAB_COUNTERS(c) + GUEST_LAB_CNT_READY); i++)
			if (i > GUEST_WATCHDOG_MS * 10)
				fail_msg("lab: vCPU %u never became ready", c);
			else
				usleep(100);
	/* KVM resets the 8259s unmasked at vector base 0 with the BSP's LINT0 in
	 * ExtINT mode: like any OS, move the PIC off the exception vectors and
	 * mask it before legacy GSIs are used. */
	lab_cmd(l, 0, GUEST_LAB_PIC_INIT, 0x20, 0x28, 0xffff);
}

/* Powers the guest off with status 0 and checks it did. */
static inline void lab_finish(struct lab *l)
{
	struct kvmkit_stop_info info;

	for (unsigned int c = 1; c < l->vcpus; c++)
		lab_cmd(l, c, GUEST_LAB_EXIT, 0, 0, 0);
	/* vCPU 0's EXIT powers the VM off: no ack comes back. */
	uint64_t mb = GUEST_LAB_MAILBOX(0);
	uint64_t zero = 0;

	assert_int_equal(kvmkit_vm_write(l->vm, mb + GUEST_LAB_MB_ARG(0), &zero, 8), 0);
	*lab_u32(l, mb + GUEST_LAB_MB_CMD) = GUEST_LAB_EXIT;
	__atomic_add_fetch(lab_u32(l, mb + GUEST_LAB_MB_SEQ), 1, __ATOMIC_RELEASE);
	assert_int_equal(kvmkit_vm_wait(l->vm, GUEST_WATCHDOG_MS, &info), 0);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, 0);
	kvmkit_machine_destroy(l->m);
}

/* Sets op @index of @vector's handler program (GUEST_LAB_HANDLER_OP). */
static inline void lab_op(struct lab *l, unsigned int vector, unsigned int index, uint64_t op)
{
	assert_int_equal(lab_cmd(l, 0, GUEST_LAB_HANDLER_OP, vector, index, op), 0);
}

/* The guest's bounded remote-IRR poll of @pin on vCPU @cpu: what it saw. */
struct lab_poll {
	uint32_t low; /* the low dword read last */
	uint32_t reads; /* reads made (== max: remote IRR never cleared) */
};

static inline struct lab_poll lab_poll_irr(struct lab *l, unsigned int cpu, unsigned int pin,
					   uint32_t max)
{
	uint64_t r = lab_cmd(l, cpu, GUEST_LAB_IOAPIC_POLL, pin, max, 0);

	return (struct lab_poll){ .low = (uint32_t)r, .reads = (uint32_t)(r >> 32) };
}

/* IOAPIC register index of @pin's low / high dword. */
#define IOAPIC_LO(pin) (0x10 + 2 * (pin))
#define IOAPIC_HI(pin) (0x11 + 2 * (pin))
/* Handler ops on the test device's IRQ-line ports (kvmkit/devices.h). */
#define OP_LINE(gsi, level) \
	GUEST_LAB_OP(GUEST_LAB_OP_OUTB, KVMKIT_TESTDEV_IRQ_PORT + (gsi), (level) ? 1 : 0)
#define OP_IOAPIC(reg, val) GUEST_LAB_OP(GUEST_LAB_OP_IOAPIC, reg, val)

/* IOAPIC redirection entry: vector, fixed delivery, physical destination. */
#define RTE_LEVEL (1ull << 15)
#define RTE_MASKED (1ull << 16)
#define RTE_REMOTE_IRR (1ull << 14)
#define RTE_LOGICAL (1ull << 11)
#define RTE_EXTINT (7ull << 8)
static inline uint64_t rte(unsigned int vector, unsigned int dest_apic, bool level)
{
	return vector | (level ? RTE_LEVEL : 0) | ((uint64_t)dest_apic << 56);
}

#endif
