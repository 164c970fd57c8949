// SPDX-License-Identifier: MIT
/*
 * The guest's GIC driver: GICv3 through the ICC_* system registers and
 * the distributor/redistributor frames, GICv2 through its distributor and
 * CPU interface frames; SPIs configured one by one; the IRQ handler that
 * counts every interrupt taken per vCPU and INTID (arm64_abi.h).
 */
#include "a64.h"

#define GICD_CTLR 0x0
#define GICD_IGROUPR 0x80
#define GICD_ISENABLER 0x100
#define GICD_ICENABLER 0x180
#define GICD_IPRIORITYR 0x400
#define GICD_ITARGETSR 0x800
#define GICD_ICFGR 0xc00
#define GICD_IROUTER 0x6000
#define GICD_CTLR_RWP (1u << 31)

#define GICR_WAKER 0x14
#define GICR_SGI 0x10000 /* the SGI/PPI frame */
#define WAKER_SLEEP (1u << 1)
#define WAKER_CHILDREN_ASLEEP (1u << 2)

#define GICC_CTLR 0x0
#define GICC_PMR 0x4
#define GICC_IAR 0xc
#define GICC_EOIR 0x10

#define ICC_PMR_EL1 "S3_0_C4_C6_0"
#define ICC_IAR1_EL1 "S3_0_C12_C12_0"
#define ICC_EOIR1_EL1 "S3_0_C12_C12_1"
#define ICC_BPR1_EL1 "S3_0_C12_C12_3"
#define ICC_SRE_EL1 "S3_0_C12_C12_5"
#define ICC_IGRPEN1_EL1 "S3_0_C12_C12_7"

#define SPURIOUS 1020
#define PRIORITY 0xa0

static unsigned int gic_version;
/* Per vCPU: private INTIDs the handler disables when it takes them. */
static uint32_t mask_on_take[A64_MAX_VCPUS];

static uint64_t private_base(unsigned int cpu)
{
	return gic_version == 3 ? A64_GICR + (uint64_t)cpu * A64_GICR_STRIDE + GICR_SGI : A64_GICD;
}

/* The distributor's register writes take effect when RWP clears. */
static void dist_wait(void)
{
	for (int i = 0; i < 1000000 && (mmio_read32(A64_GICD + GICD_CTLR) & GICD_CTLR_RWP); i++)
		;
}

static void v3_cpu_init(unsigned int cpu)
{
	uint64_t rd = A64_GICR + (uint64_t)cpu * A64_GICR_STRIDE;

	/* Awake this vCPU's redistributor, its PPIs and SGIs in group 1. */
	mmio_write32(rd + GICR_WAKER, mmio_read32(rd + GICR_WAKER) & ~WAKER_SLEEP);
	for (int i = 0; i < 1000000 && (mmio_read32(rd + GICR_WAKER) & WAKER_CHILDREN_ASLEEP); i++)
		;
	mmio_write32(rd + GICR_SGI + GICD_IGROUPR, 0xffffffffu);
	A64_SYSREG_WRITE(ICC_SRE_EL1, A64_SYSREG_READ(ICC_SRE_EL1) | 1);
	a64_isb();
	A64_SYSREG_WRITE(ICC_PMR_EL1, 0xff);
	A64_SYSREG_WRITE(ICC_BPR1_EL1, 0);
	A64_SYSREG_WRITE(ICC_IGRPEN1_EL1, 1);
	a64_isb();
}

void a64_gic_init(unsigned int cpu, unsigned int version)
{
	gic_version = version;
	if (version == 3) {
		if (cpu == 0) {
			/* ARE (bit 4) and group 1 (bit 1); KVM's GIC has one
			 * security state. */
			mmio_write32(A64_GICD + GICD_CTLR, (1u << 4) | (1u << 1));
			dist_wait();
		}
		v3_cpu_init(cpu);
	} else {
		if (cpu == 0)
			mmio_write32(A64_GICD + GICD_CTLR, 1);
		mmio_write32(A64_GICC + GICC_PMR, 0xff);
		mmio_write32(A64_GICC + GICC_CTLR, 1);
	}
	a64_irq_enable();
}

void a64_gic_spi_enable(uint32_t intid, bool edge, unsigned int cpu, uint64_t mpidr)
{
	uint64_t cfg = A64_GICD + GICD_ICFGR + 4 * (intid / 16);
	uint32_t bit = 2u << (2 * (intid % 16));

	mmio_write32(cfg, edge ? mmio_read32(cfg) | bit : mmio_read32(cfg) & ~bit);
	mmio_write8(A64_GICD + GICD_IPRIORITYR + intid, PRIORITY);
	if (gic_version == 3) {
		uint64_t grp = A64_GICD + GICD_IGROUPR + 4 * (intid / 32);

		mmio_write32(grp, mmio_read32(grp) | (1u << (intid % 32)));
		/* Aff3 in bits 39:32, Aff2..0 as in MPIDR. */
		mmio_write64(A64_GICD + GICD_IROUTER + 8 * intid,
			     (mpidr & 0xffffffull) | ((mpidr >> 32 & 0xff) << 32));
	} else {
		mmio_write8(A64_GICD + GICD_ITARGETSR + intid, (uint8_t)(1u << cpu));
	}
	mmio_write32(A64_GICD + GICD_ISENABLER + 4 * (intid / 32), 1u << (intid % 32));
	if (gic_version == 3)
		dist_wait();
}

void a64_gic_spi_disable(uint32_t intid)
{
	mmio_write32(A64_GICD + GICD_ICENABLER + 4 * (intid / 32), 1u << (intid % 32));
	if (gic_version == 3)
		dist_wait();
}

/* SGIs and PPIs are per vCPU: the redistributor's SGI frame (GICv3) or
 * the distributor's banked first registers (GICv2). */
void a64_gic_private_enable(unsigned int cpu, uint32_t intid, bool edge, bool mask)
{
	uint64_t base = private_base(cpu);
	uint64_t cfg = base + GICD_ICFGR + 4;
	uint32_t bit = 2u << (2 * (intid % 16));

	mmio_write8(base + GICD_IPRIORITYR + intid, PRIORITY);
	/* SGIs are always edge (ICFGR0 is read-only). */
	if (intid >= 16)
		mmio_write32(cfg, edge ? mmio_read32(cfg) | bit : mmio_read32(cfg) & ~bit);
	if (mask)
		mask_on_take[cpu] |= 1u << intid;
	else
		mask_on_take[cpu] &= ~(1u << intid);
	mmio_write32(base + GICD_ISENABLER, 1u << intid);
}

#define GICD_SGIR 0xf00
#define ICC_SGI1R_EL1 "S3_0_C12_C11_5"

void a64_gic_sgi(uint32_t intid, unsigned int cpu, uint64_t mpidr)
{
	if (gic_version == 3) {
		/* Aff3.Aff2.Aff1 of the target, its Aff0 as a bit of the
		 * target list (Aff0 < 16 in kvmkit's vCPU numbering). */
		uint64_t v = ((mpidr >> 32 & 0xff) << 48) | ((mpidr >> 16 & 0xff) << 32) |
			     ((mpidr >> 8 & 0xff) << 16) | ((uint64_t)intid << 24) |
			     (1ull << (mpidr & 0xf));

		a64_dsb();
		A64_SYSREG_WRITE(ICC_SGI1R_EL1, v);
		a64_isb();
	} else {
		a64_dsb();
		mmio_write32(A64_GICD + GICD_SGIR, (1u << (16 + cpu)) | intid);
	}
}

/* From the IRQ vector (start.S): acknowledge, count, end. */
void a64_irq(void);
void a64_irq(void)
{
	unsigned int cpu = (unsigned int)A64_SYSREG_READ("tpidr_el1");
	uint32_t iar, intid;

	if (gic_version == 3)
		iar = (uint32_t)A64_SYSREG_READ(ICC_IAR1_EL1);
	else
		iar = mmio_read32(A64_GICC + GICC_IAR);
	intid = iar & (gic_version == 3 ? 0xffffffu : 0x3ffu);
	if (intid >= SPURIOUS && intid < 1024)
		return;
	/* A level interrupt the guest itself must quiet before the EOI. */
	if (intid == A64_VTIMER_INTID)
		A64_SYSREG_WRITE("cntv_ctl_el0", 2); /* IMASK, disabled */
	if (intid < 32 && cpu < A64_MAX_VCPUS && (mask_on_take[cpu] & 1u << intid))
		mmio_write32(private_base(cpu) + GICD_ICENABLER, 1u << intid);
	if ((intid < 1024 || (intid >= A64_LPI_BASE && intid < A64_LPI_BASE + 1024)) &&
	    cpu < A64_MAX_VCPUS) {
		volatile uint32_t *c = (volatile uint32_t *)(uintptr_t)A64_COUNT(cpu, intid);

		*c = *c + 1;
	}
	if (gic_version == 3) {
		A64_SYSREG_WRITE(ICC_EOIR1_EL1, iar);
		a64_isb();
	} else {
		mmio_write32(A64_GICC + GICC_EOIR, iar);
	}
}
