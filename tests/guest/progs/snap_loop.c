// SPDX-License-Identifier: MIT
/*
 * snap_loop: a guest whose state the host saves mid-run and restores into
 * another VM (the snap_loop section of guest_abi.h). Whatever instruction
 * the save lands on, the restored vCPU must go on as if nothing happened:
 * the loops below keep the same count in places that only a whole restore
 * keeps in agreement (a general register, XMM1, guest memory; the host's
 * device), and count every disagreement.
 */
#include "guest.h"

#define LAPIC_BASE GUEST_U64(0xfee00000)
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_LVTT 0x320
#define LAPIC_TMICT 0x380
#define LAPIC_TDCR 0x3e0
#define LVTT_MASKED (1u << 16)
#define LVTT_PERIODIC (1u << 17)
#define LVTT_TSC_DEADLINE (2u << 17)
#define MSR_TSC_DEADLINE 0x6e0
#define CPUID1_ECX_TSC_DEADLINE (1u << 24)

/* About 5 ms either way: the LAPIC timer counts 1 GHz bus cycles in KVM. */
#define PERIODIC_COUNT 5000000u
#define DEADLINE_CYCLES GUEST_U64(10000000)

static inline volatile uint64_t *snap_u64(unsigned int id, unsigned int off)
{
	return (volatile uint64_t *)(uintptr_t)(GUEST_SNAP_CPU((uint64_t)id) + off);
}

static inline volatile uint32_t *snap_u32(unsigned int id, unsigned int off)
{
	return (volatile uint32_t *)(uintptr_t)(GUEST_SNAP_CPU((uint64_t)id) + off);
}

static inline uint32_t snap_cmd(void)
{
	return atomic_load_acquire((uint32_t *)GUEST_SNAP_CMD);
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ __volatile__("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static uint64_t arm_deadline_cpl0(uint64_t delta)
{
	wrmsr(MSR_TSC_DEADLINE, rdtsc() + delta);
	return 0;
}

static uint64_t tsc_deadline_cpl0(uint64_t unused)
{
	uint32_t a = 1, b, c = 0, d;

	__asm__ __volatile__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
	return !!(c & CPUID1_ECX_TSC_DEADLINE);
}

static inline void lapic_write(uint32_t off, uint32_t v)
{
	mmio_write32(LAPIC_BASE + off, v);
}

/* At CPL0, IF = 0. A deadline timer is re-armed here, unless QUIET has
 * begun (its far deadline must stay). */
static void tick(unsigned int vector)
{
	unsigned int id = guest_cpu_id();

	(*snap_u64(id, GUEST_SNAP_TICKS))++;
	if (*snap_u32(id, GUEST_SNAP_DEADLINE) && !*snap_u32(id, GUEST_SNAP_QUIET))
		arm_deadline_cpl0(DEADLINE_CYCLES);
	lapic_write(LAPIC_EOI, 0);
}

/* QUIET (@delta 2^50) and ONESHOT: ticks stop re-arming a deadline, which
 * is set @delta cycles away. */
static void quiet(unsigned int id, uint64_t delta)
{
	*snap_u32(id, GUEST_SNAP_QUIET) = 1;
	if (*snap_u32(id, GUEST_SNAP_DEADLINE)) {
		guest_cpl0_call(arm_deadline_cpl0, delta);
	} else {
		lapic_write(LAPIC_TDCR, 0xa); /* divide by 128 */
		lapic_write(LAPIC_TMICT, 0xffffffffu);
	}
	atomic_store_release((uint32_t *)snap_u32(id, GUEST_SNAP_QUIET_ACK), 1);
}

/* The count in a register (local), in XMM1 and in memory; the compiler
 * never touches XMM registers here (-mgeneral-regs-only). */
static void timers_loop(unsigned int id)
{
	volatile uint64_t *counter = snap_u64(id, GUEST_SNAP_COUNTER);
	volatile uint32_t *errors = snap_u32(id, GUEST_SNAP_ERRORS);
	uint64_t local = 0, x;
	uint32_t cmd;

	__asm__ __volatile__("pxor %%xmm1, %%xmm1\n\tmovq %0, %%xmm2" : : "r"(GUEST_U64(1)));
	*counter = 0;
	atomic_store_release((uint32_t *)snap_u32(id, GUEST_SNAP_READY), 1);
	for (;;) {
		if (*counter != local)
			(*errors)++;
		local++;
		*counter = local;
		__asm__ __volatile__("paddq %%xmm2, %%xmm1\n\tmovq %%xmm1, %0" : "=r"(x));
		if (x != local)
			(*errors)++;
		cmd = snap_cmd();
		if (cmd == GUEST_SNAP_CMD_QUIET && !*snap_u32(id, GUEST_SNAP_QUIET))
			quiet(id, GUEST_U64(1) << 50);
		else if (cmd == GUEST_SNAP_CMD_ONESHOT && !*snap_u32(id, GUEST_SNAP_QUIET))
			quiet(id, *(volatile uint64_t *)GUEST_SNAP_ARG);
		else if (cmd == GUEST_SNAP_FINISH)
			return;
	}
}

static int timers(unsigned int id, unsigned int count)
{
	bool deadline = id % 2 == 0 && guest_cpl0_call(tsc_deadline_cpl0, 0);

	guest_irq_install(GUEST_SNAP_VECTOR, tick);
	lapic_write(LAPIC_SVR, 0x1ff);
	lapic_write(LAPIC_TPR, 0);
	*snap_u32(id, GUEST_SNAP_DEADLINE) = deadline;
	if (deadline) {
		lapic_write(LAPIC_LVTT, GUEST_SNAP_VECTOR | LVTT_TSC_DEADLINE);
		guest_cpl0_call(arm_deadline_cpl0, DEADLINE_CYCLES);
	} else {
		lapic_write(LAPIC_TDCR, 0xb); /* divide by 1 */
		lapic_write(LAPIC_LVTT, GUEST_SNAP_VECTOR | LVTT_PERIODIC);
		lapic_write(LAPIC_TMICT, PERIODIC_COUNT);
	}
	local_irq_enable();
	timers_loop(id);

	local_irq_disable();
	lapic_write(LAPIC_LVTT, GUEST_SNAP_VECTOR | LVTT_MASKED);
	atomic_store_release((uint32_t *)snap_u32(id, GUEST_SNAP_DONE), 1);
	if (id != 0)
		return 0;

	uint32_t errors = 0;

	for (unsigned int c = 0; c < count; c++) {
		while (!atomic_load_acquire((uint32_t *)snap_u32(c, GUEST_SNAP_DONE)))
			cpu_relax();
		report64(*snap_u64(c, GUEST_SNAP_COUNTER));
		report64(*snap_u64(c, GUEST_SNAP_TICKS));
		report(*snap_u32(c, GUEST_SNAP_ERRORS));
		errors += *snap_u32(c, GUEST_SNAP_ERRORS);
	}
	return errors ? GUEST_STATUS_FAIL : GUEST_STATUS_OK;
}

/* Each value read must follow the one before: one read lost or made twice
 * across a save and restore shows as an error. */
static int io(unsigned int id)
{
	volatile uint64_t *reads = snap_u64(id, GUEST_SNAP_COUNTER);
	volatile uint32_t *errors = snap_u32(id, GUEST_SNAP_ERRORS);
	uint32_t expect = 0, a, b;

	if (id != 0)
		return 0;
	atomic_store_release((uint32_t *)snap_u32(id, GUEST_SNAP_READY), 1);
	while (snap_cmd() != GUEST_SNAP_FINISH) {
		a = mmio_read32(GUEST_TEST_MMIO);
		if (a != expect)
			(*errors)++;
		b = inl(GUEST_TEST_PORT);
		if (b != a + 1)
			(*errors)++;
		expect = b + 1;
		*reads += 2;
	}
	report64(*reads);
	report(*errors);
	return *errors ? GUEST_STATUS_FAIL : GUEST_STATUS_OK;
}

int guest_main(unsigned int id, unsigned int count)
{
	(*snap_u32(id, GUEST_SNAP_BOOTS))++;
	if (*(volatile uint32_t *)GUEST_SNAP_MODE == GUEST_SNAP_MODE_IO)
		return io(id);
	return timers(id, count);
}
