// SPDX-License-Identifier: MIT
/*
 * mig_loop: a guest that keeps rewriting a known pattern while its LAPIC
 * timer counts ticks, for live migration (mig_abi.h). Everything but the
 * tick handler and two LAPIC set-up writes runs at CPL3: the copy and the
 * checks run at native speed on KVM-PVM too.
 */
#include "guest.h"
#include "mig_abi.h"

#define LAPIC_BASE GUEST_U64(0xfee00000)
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_LVTT 0x320
#define LAPIC_TMICT 0x380
#define LAPIC_TDCR 0x3e0
#define LVTT_MASKED (1u << 16)
#define LVTT_PERIODIC (1u << 17)
/* About 5 ms: the LAPIC timer counts 1 GHz bus cycles in KVM. */
#define PERIODIC_COUNT 5000000u
#define WORDS (4096 / 8)

static inline volatile uint64_t *cpu_u64(unsigned int id, unsigned int off)
{
	return (volatile uint64_t *)(uintptr_t)(MIG_CPU((uint64_t)id) + off);
}

static inline volatile uint32_t *cpu_u32(unsigned int id, unsigned int off)
{
	return (volatile uint32_t *)(uintptr_t)(MIG_CPU((uint64_t)id) + off);
}

static inline void lapic_write(uint32_t off, uint32_t v)
{
	mmio_write32(LAPIC_BASE + off, v);
}

/* At CPL0 with IF = 0: a handful of instructions. */
static void tick(unsigned int vector)
{
	(*cpu_u64(guest_cpu_id(), MIG_TICKS))++;
	lapic_write(LAPIC_EOI, 0);
}

/* Checks page @p holds pass @pass - 1's pattern, then writes @pass's. */
static bool rewrite(uint64_t pass, uint64_t p)
{
	volatile uint64_t *w = (volatile uint64_t *)(uintptr_t)(MIG_AREA + p * 4096);
	bool ok = true;

	for (uint64_t i = 0; i < WORDS; i++)
		if (w[i] != (pass > 1 ? MIG_WORD(pass - 1, p, i) : 0))
			ok = false;
	for (uint64_t i = 0; i < WORDS; i++)
		w[i] = MIG_WORD(pass, p, i);
	return ok;
}

/* At CPL0 (IF = 0): waits for the next interrupt, then returns with IF = 0
 * (the gate's iretq gives CPL3 its IF back). A paced or idle guest sleeps
 * here instead of spinning, as a real one would, and leaves the host's CPUs
 * to the migration. */
static uint64_t idle_cpl0(uint64_t unused)
{
	__asm__ __volatile__("sti; hlt; cli" ::: "memory");
	return 0;
}

/* Whether pacing lets one more page be written now. */
static bool may_write(unsigned int id, uint64_t pass, bool defaults)
{
	uint64_t rate = defaults ? MIG_DEFAULT_RATE : *(volatile uint64_t *)MIG_RATE;
	uint64_t ticks = *cpu_u64(id, MIG_TICKS) - *cpu_u64(id, MIG_PACE_TICKS);

	if (pass == 1 || rate == MIG_RATE_MAX)
		return true;
	return *cpu_u64(id, MIG_PACE_PAGES) < ticks * rate;
}

static void loop(unsigned int id, uint64_t first, uint64_t count, bool defaults)
{
	/* A host that wrote pass 1's pattern itself starts the guest at 2. */
	uint64_t pass = *cpu_u64(id, MIG_PASS) ? *cpu_u64(id, MIG_PASS) : 1, index = 0;

	*cpu_u64(id, MIG_PASS) = pass;
	*cpu_u64(id, MIG_INDEX) = index;
	atomic_store_release((uint32_t *)cpu_u32(id, MIG_READY), 1);
	while (atomic_load_acquire((uint32_t *)MIG_CMD) != MIG_CMD_FINISH) {
		if (!count || !may_write(id, pass, defaults)) {
			guest_cpl0_call(idle_cpl0, 0);
			continue;
		}
		if (!rewrite(pass, first + index))
			(*cpu_u32(id, MIG_ERRORS))++;
		(*cpu_u64(id, MIG_PACE_PAGES))++;
		if (++index == count) {
			index = 0;
			pass++;
			if (pass == 2) {
				*cpu_u64(id, MIG_PACE_TICKS) = *cpu_u64(id, MIG_TICKS);
				*cpu_u64(id, MIG_PACE_PAGES) = 0;
			}
			*cpu_u64(id, MIG_PASS) = pass;
		}
		*cpu_u64(id, MIG_INDEX) = index;
	}
}

int guest_main(unsigned int id, unsigned int count)
{
	uint64_t pages = *(volatile uint64_t *)MIG_PAGES;
	bool defaults = !pages;
	uint64_t per;
	uint64_t h = MIG_FNV_OFFSET;
	uint32_t errors = 0;

	if (defaults)
		pages = MIG_DEFAULT_PAGES;
	per = pages / count;
	guest_irq_install(MIG_VECTOR, tick);
	lapic_write(LAPIC_SVR, 0x1ff);
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_TDCR, 0xb); /* divide by 1 */
	lapic_write(LAPIC_LVTT, MIG_VECTOR | LVTT_PERIODIC);
	lapic_write(LAPIC_TMICT, PERIODIC_COUNT);
	local_irq_enable();
	loop(id, id * per, per, defaults);
	local_irq_disable();
	lapic_write(LAPIC_LVTT, MIG_VECTOR | LVTT_MASKED);
	atomic_store_release((uint32_t *)cpu_u32(id, MIG_DONE), 1);
	if (id != 0)
		return 0;
	for (unsigned int c = 0; c < count; c++) {
		while (!atomic_load_acquire((uint32_t *)cpu_u32(c, MIG_DONE)))
			cpu_relax();
		report64(*cpu_u64(c, MIG_PASS));
		report64(*cpu_u64(c, MIG_INDEX));
		report64(*cpu_u64(c, MIG_TICKS));
		report64(*cpu_u32(c, MIG_ERRORS));
		errors += *cpu_u32(c, MIG_ERRORS);
	}
	for (uint64_t i = 0; i < pages * WORDS; i++)
		h = (h ^ ((volatile uint64_t *)(uintptr_t)MIG_AREA)[i]) * MIG_FNV_PRIME;
	report64(h);
	return errors ? GUEST_STATUS_FAIL : GUEST_STATUS_OK;
}
