// SPDX-License-Identifier: MIT
/*
 * arm64 guest runtime: the MMU (one identity map for every vCPU), faults,
 * and the C entry. Built freestanding, -mstrict-align: this code runs
 * with the MMU off, where all memory is Device memory.
 */
#include "a64.h"

/* Level-1 table, 1 GiB blocks, 32-bit VA: 0-2 GiB Device (the GIC and
 * the UART), 2-4 GiB Normal write-back (RAM at 2 GiB). */
static uint64_t l1_table[512] __attribute__((aligned(4096)));
static volatile uint32_t tables_ready;

#define DESC_BLOCK 1ull
#define DESC_ATTR(i) ((uint64_t)(i) << 2)
#define DESC_SH_INNER (3ull << 8)
#define DESC_AF (1ull << 10)
#define DESC_XN (3ull << 53) /* PXN and UXN */
#define MAIR_VALUE 0xff00ull /* attr0 Device-nGnRnE, attr1 Normal WB */
#define TCR_VALUE                                                                             \
	(32ull /* T0SZ: 4 GiB */ | (1ull << 8) /* IRGN0 WB */ | (1ull << 10) /* ORGN0 WB */ | \
	 (3ull << 12) /* SH0 inner */ | (1ull << 23) /* EPD1: no TTBR1 walks */)
#define SCTLR_M (1ull << 0)
#define SCTLR_A (1ull << 1)
#define SCTLR_C (1ull << 2)
#define SCTLR_I (1ull << 12)

static void clean_inval(const void *p, uint64_t len)
{
	for (uint64_t a = (uint64_t)(uintptr_t)p & ~63ull; a < (uint64_t)(uintptr_t)p + len;
	     a += 64)
		__asm__ volatile("dc civac, %0" ::"r"(a) : "memory");
	a64_dsb();
}

void a64_mmu_on(unsigned int cpu);
void a64_mmu_on(unsigned int cpu)
{
	uint64_t sctlr;

	if (cpu == 0) {
		for (uint64_t i = 0; i < 4; i++)
			l1_table[i] =
				(i << 30) | DESC_BLOCK | DESC_AF |
				(i < 2 ? DESC_ATTR(0) | DESC_XN : DESC_ATTR(1) | DESC_SH_INNER);
		/* Written with the caches off: no stale line may hide them. */
		clean_inval(l1_table, sizeof(l1_table));
		tables_ready = 1;
	}
	A64_SYSREG_WRITE("mair_el1", MAIR_VALUE);
	A64_SYSREG_WRITE("tcr_el1", TCR_VALUE);
	A64_SYSREG_WRITE("ttbr0_el1", (uint64_t)(uintptr_t)l1_table);
	a64_isb();
	__asm__ volatile("tlbi vmalle1\n dsb nsh" ::: "memory");
	sctlr = A64_SYSREG_READ("sctlr_el1");
	sctlr |= SCTLR_M | SCTLR_C | SCTLR_I;
	sctlr &= ~SCTLR_A;
	A64_SYSREG_WRITE("sctlr_el1", sctlr);
	a64_isb();
}

static unsigned int self(void)
{
	return (unsigned int)A64_SYSREG_READ("tpidr_el1");
}

/* An exception the program did not expect: recorded, said, reset. */
void a64_fault(uint64_t kind, uint64_t esr, uint64_t elr, uint64_t far);
void a64_fault(uint64_t kind, uint64_t esr, uint64_t elr, uint64_t far)
{
	unsigned int cpu = self();

	if (cpu < A64_MAX_VCPUS) {
		*abi64(A64_FAULT(cpu)) = esr;
		*abi64(A64_FAULT(cpu) + 8) = elr;
		*abi64(A64_FAULT(cpu) + 16) = far;
	}
	a64_printf("vCPU %u: unexpected exception %lu: esr 0x%lx elr 0x%lx far 0x%lx\n", cpu,
		   (unsigned long)kind, (unsigned long)esr, (unsigned long)elr, (unsigned long)far);
	a64_system_reset();
}

void a64_main(unsigned int cpu, unsigned int ncpus);
void a64_main(unsigned int cpu, unsigned int ncpus)
{
	a64_program(cpu, ncpus);
	a64_system_off();
}
