// SPDX-License-Identifier: MIT
/*
 * The guest's LPIs and ITS (GICv3 architecture, chapters 5 and 6): each
 * vCPU's redistributor gets the shared LPI property table and its own
 * pending table; the ITS gets its device and collection tables and a
 * command queue; a mapping is MAPC + MAPD (once per device: a MAPD drops
 * the device's earlier translations) + MAPTI + SYNC. Tables live at the
 * fixed addresses of arm64_abi.h.
 */
#include "a64.h"

#define GICR_CTLR 0x0
#define GICR_TYPER 0x8
#define GICR_PROPBASER 0x70
#define GICR_PENDBASER 0x78
#define GICR_CTLR_ENABLE_LPIS 1u

#define GITS_CTLR 0x0
#define GITS_TYPER 0x8
#define GITS_CBASER 0x80
#define GITS_CWRITER 0x88
#define GITS_CREADR 0x90
#define GITS_BASER(n) (0x100 + 8 * (n))

#define LPI_ID_BITS 16 /* INTIDs below 65536 */
#define WB_INNER ((7ull << 7) | (1ull << 10)) /* PROPBASER/PENDBASER: WaWb, inner shareable */
#define BASER_VALID (1ull << 63)
#define BASER_WB (7ull << 59)
#define BASER_INNER (1ull << 10)
#define BASER_TYPE(v) ((v) >> 56 & 7)
#define BASER_TYPE_DEVICE 1
#define BASER_TYPE_COLLECTION 4
#define TABLE_PAGES 16 /* 64 KiB of 4 KiB pages */
#define PRIORITY 0xa0

static uint64_t rd_base(unsigned int cpu)
{
	return A64_GICR + (uint64_t)cpu * A64_GICR_STRIDE;
}

static inline uint64_t mmio_read64(uint64_t a)
{
	uint64_t v;

	__asm__ volatile("ldr %0, [%1]" : "=r"(v) : "r"(a) : "memory");
	return v;
}

void a64_lpi_init(unsigned int cpu)
{
	uint64_t rd = rd_base(cpu);

	mmio_write64(rd + GICR_PROPBASER, A64_LPI_PROP | WB_INNER | (LPI_ID_BITS - 1));
	/* PTZ: the (fresh, zero) pending table need not be read. */
	mmio_write64(rd + GICR_PENDBASER, A64_LPI_PEND(cpu) | WB_INNER | (1ull << 62));
	a64_dsb();
	mmio_write32(rd + GICR_CTLR, mmio_read32(rd + GICR_CTLR) | GICR_CTLR_ENABLE_LPIS);
	a64_dsb();
}

static uint64_t cmd_off; /* the next command's offset in the queue */
static uint32_t devices_mapped; /* bit d: MAPD done for device d */

void a64_its_init(void)
{
	for (unsigned int n = 0; n < 8; n++) {
		uint64_t v = mmio_read64(A64_GITS + GITS_BASER(n));
		uint64_t pa;

		if (BASER_TYPE(v) == BASER_TYPE_DEVICE)
			pa = A64_ITS_DEVTAB;
		else if (BASER_TYPE(v) == BASER_TYPE_COLLECTION)
			pa = A64_ITS_COLLTAB;
		else
			continue;
		/* Keep the read-only type and entry size; flat 64 KiB. */
		v &= (7ull << 56) | (0x1full << 48);
		mmio_write64(A64_GITS + GITS_BASER(n),
			     v | BASER_VALID | BASER_WB | BASER_INNER | pa | (TABLE_PAGES - 1));
	}
	/* One 4 KiB page of commands: 128 of them, used as a ring. */
	mmio_write64(A64_GITS + GITS_CBASER, BASER_VALID | BASER_WB | BASER_INNER | A64_ITS_CMDQ);
	mmio_write64(A64_GITS + GITS_CWRITER, 0);
	cmd_off = 0;
	devices_mapped = 0;
	a64_dsb();
	mmio_write32(A64_GITS + GITS_CTLR, 1);
	a64_dsb();
}

static void cmd(uint64_t d0, uint64_t d1, uint64_t d2)
{
	volatile uint64_t *c = (volatile uint64_t *)(uintptr_t)(A64_ITS_CMDQ + cmd_off);

	c[0] = d0;
	c[1] = d1;
	c[2] = d2;
	c[3] = 0;
	cmd_off = (cmd_off + 32) % 4096;
}

/* Hands the queued commands to the ITS and waits until it read them. */
static int cmd_flush(void)
{
	a64_dsb();
	mmio_write64(A64_GITS + GITS_CWRITER, cmd_off);
	for (int i = 0; i < 1000000; i++)
		if ((mmio_read64(A64_GITS + GITS_CREADR) & 0xfffe0) == cmd_off)
			return 0;
	return 1;
}

/* The redistributor's target address for ITS commands: its processor
 * number when GITS_TYPER.PTA is 0 (KVM's), else its physical address. */
static uint64_t rd_target(unsigned int cpu)
{
	if (mmio_read64(A64_GITS + GITS_TYPER) & (1ull << 19))
		return rd_base(cpu);
	return (mmio_read64(rd_base(cpu) + GICR_TYPER) >> 8 & 0xffff) << 16;
}

int a64_its_map(uint32_t dev, uint32_t event, uint32_t lpi, unsigned int cpu)
{
	volatile uint8_t *prop = (volatile uint8_t *)(uintptr_t)A64_LPI_PROP;
	uint64_t target = rd_target(cpu);

	if (dev >= A64_ITS_MAX_DEVICES || event >= A64_ITS_EVENTS || lpi < A64_LPI_BASE ||
	    lpi >= (1u << LPI_ID_BITS) || cpu >= A64_MAX_VCPUS)
		return 2;
	prop[lpi - A64_LPI_BASE] = PRIORITY | 1; /* enabled */
	a64_dsb();
	/* MAPC: collection `cpu` to the vCPU's redistributor. */
	cmd(0x09, 0, (1ull << 63) | target | cpu);
	if (!(devices_mapped & (1u << dev))) {
		/* MAPD: the device, its ITT, 5 event id bits. */
		cmd(0x08 | (uint64_t)dev << 32, 4, (1ull << 63) | A64_ITS_ITT(dev));
		devices_mapped |= 1u << dev;
	}
	/* MAPTI: (device, event) -> LPI in collection `cpu`; then SYNC. */
	cmd(0x0a | (uint64_t)dev << 32, event | (uint64_t)lpi << 32, cpu);
	cmd(0x05, 0, target);
	return cmd_flush();
}
