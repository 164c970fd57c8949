/* SPDX-License-Identifier: MIT */
/* The arm64 guest runtime's API for programs (lib/). */
#ifndef A64_H
#define A64_H

#include <stdbool.h>
#include <stdint.h>

#include "arm64_abi.h"

#define A64_SYSREG_READ(name)                                 \
	({                                                    \
		uint64_t v_;                                  \
		__asm__ volatile("mrs %0, " name : "=r"(v_)); \
		v_;                                           \
	})
#define A64_SYSREG_WRITE(name, v) __asm__ volatile("msr " name ", %0" ::"r"((uint64_t)(v)))

static inline void a64_isb(void)
{
	__asm__ volatile("isb" ::: "memory");
}

static inline void a64_dsb(void)
{
	__asm__ volatile("dsb sy" ::: "memory");
}

static inline uint32_t mmio_read32(uint64_t a)
{
	uint32_t v;

	__asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
	return v;
}

static inline void mmio_write32(uint64_t a, uint32_t v)
{
	__asm__ volatile("str %w0, [%1]" ::"r"(v), "r"(a) : "memory");
}

static inline void mmio_write64(uint64_t a, uint64_t v)
{
	__asm__ volatile("str %0, [%1]" ::"r"(v), "r"(a) : "memory");
}

static inline uint8_t mmio_read8(uint64_t a)
{
	uint8_t v;

	__asm__ volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(a) : "memory");
	return v;
}

static inline void mmio_write8(uint64_t a, uint8_t v)
{
	__asm__ volatile("strb %w0, [%1]" ::"r"(v), "r"(a) : "memory");
}

static inline volatile uint64_t *abi64(uint64_t gpa)
{
	return (volatile uint64_t *)(uintptr_t)gpa;
}

static inline void a64_irq_enable(void)
{
	__asm__ volatile("msr daifclr, #2" ::: "memory");
}

/* uart.c */
void a64_putc(char c);
void a64_puts(const char *s);
/* %s %u %x %lu %lx only. */
void a64_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* psci.c: SMCCC through HVC. */
int64_t a64_psci(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
#define PSCI_VERSION 0x84000000u
#define PSCI_CPU_ON 0xc4000003u
#define PSCI_SYSTEM_OFF 0x84000008u
#define PSCI_SYSTEM_RESET 0x84000009u
#define PSCI_CPU_OFF 0x84000002u
#define PSCI_AFFINITY_INFO 0xc4000004u
__attribute__((noreturn)) void a64_system_off(void);
__attribute__((noreturn)) void a64_system_reset(void);

/* gic.c: version 2 or 3. */
void a64_gic_init(unsigned int cpu, unsigned int version);
void a64_gic_spi_enable(uint32_t intid, bool edge, unsigned int cpu, uint64_t mpidr);
void a64_gic_spi_disable(uint32_t intid);
void a64_gic_private_enable(unsigned int cpu, uint32_t intid, bool edge, bool mask);
void a64_gic_sgi(uint32_t intid, unsigned int cpu, uint64_t mpidr);
/* its.c (GICv3) */
void a64_lpi_init(unsigned int cpu);
void a64_its_init(void);
int a64_its_map(uint32_t dev, uint32_t event, uint32_t lpi, unsigned int cpu);

/* The program: on each vCPU once the runtime is up (start.S). */
uint64_t a64_virtio_rng(unsigned int cpu, uint64_t base, unsigned int n, uint32_t intid);
void a64_program(unsigned int cpu, unsigned int ncpus);
extern void a64_secondary_entry(void);

#endif
