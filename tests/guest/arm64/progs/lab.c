// SPDX-License-Identifier: MIT
/*
 * The interrupt lab: every vCPU serves its mailbox (arm64_abi.h) until
 * told to power off or reset; vCPU 0 starts the others on command.
 */
#include "a64.h"

static uint64_t run(unsigned int cpu, uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2)
{
	switch (cmd) {
	case A64_CMD_GIC_INIT:
		a64_gic_init(cpu, (unsigned int)a0);
		return 0;
	case A64_CMD_SPI_ENABLE:
		a64_gic_spi_enable((uint32_t)a0, a1 != 0, (unsigned int)(a2 & 0xff), a2 >> 8);
		return 0;
	case A64_CMD_SPI_DISABLE:
		a64_gic_spi_disable((uint32_t)a0);
		return 0;
	case A64_CMD_CPU_ON:
		return (uint64_t)a64_psci(PSCI_CPU_ON, a0, (uint64_t)(uintptr_t)a64_secondary_entry,
					  a1);
	case A64_CMD_MPIDR:
		return A64_SYSREG_READ("mpidr_el1");
	case A64_CMD_SYSTEM_OFF:
		a64_system_off();
	case A64_CMD_SYSTEM_RESET:
		a64_system_reset();
	case A64_CMD_CPU_OFF:
		a64_psci(PSCI_CPU_OFF, 0, 0, 0);
		return ~0ull; /* CPU_OFF returned: it failed */
	case A64_CMD_AFFINITY_INFO:
		return (uint64_t)a64_psci(PSCI_AFFINITY_INFO, a0, 0, 0);
	case A64_CMD_BAD_MMIO: {
		uint64_t x, y;

		__asm__ volatile("ldp %0, %1, [%2]" : "=r"(x), "=r"(y) : "r"(A64_UART) : "memory");
		return x ^ y;
	}
	case A64_CMD_VIRTIO_RNG:
		return a64_virtio_rng(cpu, a0, (unsigned int)a1, (uint32_t)a2);
	case A64_CMD_PSCI_VERSION:
		return (uint64_t)a64_psci(PSCI_VERSION, 0, 0, 0);
	case A64_CMD_GICD_READ:
		return mmio_read32(A64_GICD + (a0 & 0xfffc));
	case A64_CMD_PRIVATE_ENABLE:
		a64_gic_private_enable(cpu, (uint32_t)a0 & 31, a1 == 1, a1 == 2);
		return 0;
	case A64_CMD_SGI:
		a64_gic_sgi((uint32_t)a0 & 15, (unsigned int)a1, a2);
		return 0;
	case A64_CMD_LPI_INIT:
		a64_lpi_init(cpu);
		return 0;
	case A64_CMD_ITS_INIT:
		a64_its_init();
		return 0;
	case A64_CMD_ITS_MAP:
		return (uint64_t)a64_its_map((uint32_t)a0, (uint32_t)a1, (uint32_t)a2,
					     (unsigned int)(a2 >> 32));
	case A64_CMD_VTIMER:
		a64_gic_private_enable(cpu, A64_VTIMER_INTID, false, false);
		A64_SYSREG_WRITE("cntv_tval_el0", a0);
		A64_SYSREG_WRITE("cntv_ctl_el0", 1); /* enabled, not masked */
		a64_isb();
		return 0;
	default:
		return ~0ull;
	}
}

void a64_program(unsigned int cpu, unsigned int ncpus)
{
	volatile uint64_t *mb = abi64(A64_MBOX(cpu));
	/* A vCPU started again after CPU_OFF drops the command that stopped
	 * it: it never reported that one done. */
	uint64_t done = __atomic_load_n(&mb[A64_MBOX_SEQ / 8], __ATOMIC_ACQUIRE);

	__atomic_store_n(&mb[A64_MBOX_DONE / 8], done, __ATOMIC_RELEASE);
	mb[A64_MBOX_ONLINE / 8] = A64_ONLINE_MAGIC;
	for (;;) {
		uint64_t seq = __atomic_load_n(&mb[A64_MBOX_SEQ / 8], __ATOMIC_ACQUIRE);
		uint64_t r;

		if (seq == done) {
			__asm__ volatile("yield");
			continue;
		}
		r = run(cpu, mb[A64_MBOX_CMD / 8], mb[A64_MBOX_ARG0 / 8], mb[A64_MBOX_ARG1 / 8],
			mb[A64_MBOX_ARG2 / 8]);
		mb[A64_MBOX_RESULT / 8] = r;
		done = seq;
		__atomic_store_n(&mb[A64_MBOX_DONE / 8], seq, __ATOMIC_RELEASE);
	}
}
