// SPDX-License-Identifier: MIT
/*
 * Saving and restoring the vGIC's state (the back end's part of
 * kvmkit_irqchip_save/restore) through the vGIC device's register groups
 * (devices/arm-vgic-v3.rst, arm-vgic.rst). A GICv3: the distributor, each vCPU's redistributor
 * (both as 32-bit registers; the 64-bit ones as two halves), the input
 * levels of the SPIs (GRP_LEVEL_INFO: ISPENDR through this interface is
 * only the latch), and each vCPU's ICC_* system registers.
 *
 * One list of (group, attribute) pairs, built from the chip's own
 * configuration, serves both ways, in the order a restore writes them:
 * GICD_IIDR first (it selects the register behaviour KVM emulates), each
 * redistributor's tables before its control, the configuration of every
 * interrupt (group, trigger, priority, route) before its line level,
 * pending, active and enable state, and the CPU interfaces last. The blob
 * is that list's values: u32 count, then count x { u32 group, u64 attr,
 * u64 value }; a restore accepts it only if every pair is exactly the one
 * this chip expects, so untrusted bytes can only carry values, which KVM
 * checks.
 *
 * A GICv2 the same way through its distributor (banked registers per
 * vCPU index) and CPU interface groups; KVM has no line-level group for
 * it, so an SPI input held high at save time is not carried over.
 *
 * LPIs and the ITS: their state lives in guest RAM tables. A save first
 * has KVM write the LPIs' pending bits and the ITS's device, collection
 * and translation tables there (SAVE_PENDING_TABLES, ITS_SAVE_TABLES), so
 * the RAM saved after it holds them; the ITS's registers go in the list,
 * and a restore loads the tables back (RESTORE_TABLES) before enabling it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "vgic"
#include "core/internal.h"
#include "arch/arm64/vgic.h"
#include <kvmkit/arm64.h>
#include <kvmkit/vcpu.h>

#define OP_SAVE "kvmkit_irqchip_save"
#define OP_RESTORE "kvmkit_irqchip_restore"

/* Distributor and redistributor offsets (GICv3 architecture). */
#define GICD_CTLR 0x0
#define GICD_IIDR 0x8
#define GICD_IGROUPR 0x80
#define GICD_ISENABLER 0x100
#define GICD_ISPENDR 0x200
#define GICD_ISACTIVER 0x300
#define GICD_IPRIORITYR 0x400
#define GICD_ICFGR 0xc00
#define GICD_IROUTER 0x6000
#define GICR_CTLR 0x0
#define GICR_PROPBASER 0x70
#define GICR_PENDBASER 0x78
#define GICR_SGI 0x10000
#define GITS_CTLR 0x0
#define D KVM_DEV_ARM_VGIC_GRP_DIST_REGS
#define R KVM_DEV_ARM_VGIC_GRP_REDIST_REGS

struct reg {
	uint32_t group;
	uint64_t attr;
	uint64_t val;
};

struct list {
	struct reg *r;
	unsigned int n, cap;
};

static int add(struct list *l, uint32_t group, uint64_t attr)
{
	if (l->n == l->cap) {
		unsigned int c = l->cap ? 2 * l->cap : 256;
		struct reg *r = realloc(l->r, c * sizeof(*r));

		if (!r)
			return kvmk_err_resource(OP_SAVE, ENOMEM, "%u registers", c);
		l->r = r;
		l->cap = c;
	}
	l->r[l->n++] = (struct reg){ group, attr, 0 };
	return 0;
}

/* The attr's MPIDR field: Aff3.Aff2.Aff1.Aff0, one byte each. */
static uint64_t mpidr_field(uint64_t mpidr)
{
	return ((mpidr >> 32 & 0xff) << 24 | (mpidr & 0xffffff)) << KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT;
}

/* KVM lists the active-priority registers past the implemented priority
 * bits (KVM_HAS_DEVICE_ATTR says yes) but refuses to read them: a
 * register is in the list only if it reads. */
static bool sysreg_present(struct vgic *g, uint64_t attr)
{
	uint64_t v;
	struct kvm_device_attr a = {
		.group = KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
		.attr = attr,
		.addr = (uint64_t)(uintptr_t)&v,
	};

	return ioctl(g->dev_fd, KVM_GET_DEVICE_ATTR, &a) == 0;
}

/* A GICv2's registers readable through the device: the banked ones of
 * each vCPU, the CPU interface's, in the same dependency order as below.
 * Only the ones KVM reads go in (both ways the same list). */
#define GICD_ITARGETSR 0x800
#define GICD_SPENDSGIR 0xf20
#define GICC_CTLR 0x0
#define GICC_PMR 0x4
#define GICC_BPR 0x8
#define GICC_ABPR 0x1c
#define GICC_APR 0xd0

static int add_if(struct vgic *g, struct list *l, uint32_t group, uint64_t attr)
{
	uint64_t v; /* ITS registers read 64 bits, the others 32 */
	struct kvm_device_attr a = { .group = group,
				     .attr = attr,
				     .addr = (uint64_t)(uintptr_t)&v };
	int fd = group == KVM_DEV_ARM_VGIC_GRP_ITS_REGS ? g->its_fd : g->dev_fd;

	return ioctl(fd, KVM_GET_DEVICE_ATTR, &a) == 0 ? add(l, group, attr) : 0;
}

static int build_v2(struct kvmkit_irqchip *chip, struct list *l)
{
	const uint32_t C = KVM_DEV_ARM_VGIC_GRP_CPU_REGS;
	struct vgic *g = chip->priv;
	unsigned int nv = kvmkit_vm_config(chip->vm)->vcpus, nirq = g->nr_irqs;
	/* arm-vgic.rst: GICD_IGROUPR writes are ignored until GICD_IIDR
	 * has been written. */
	int e = add_if(g, l, D, GICD_IIDR);

	e = e ?: add_if(g, l, D, GICD_CTLR);
	for (unsigned int i = 32; !e && i < nirq; i += 32) {
		e = add_if(g, l, D, GICD_IGROUPR + i / 8);
		for (unsigned int k = 0; !e && k < 2; k++)
			e = add_if(g, l, D, GICD_ICFGR + i / 4 + 4 * k);
		for (unsigned int k = 0; !e && k < 8; k++)
			e = add_if(g, l, D, GICD_IPRIORITYR + i + 4 * k);
		for (unsigned int k = 0; !e && k < 8; k++)
			e = add_if(g, l, D, GICD_ITARGETSR + i + 4 * k);
		e = e ?: add_if(g, l, D, GICD_ISPENDR + i / 8);
		e = e ?: add_if(g, l, D, GICD_ISACTIVER + i / 8);
		e = e ?: add_if(g, l, D, GICD_ISENABLER + i / 8);
	}
	for (unsigned int c = 0; !e && c < nv; c++) {
		uint64_t m = (uint64_t)c << KVM_DEV_ARM_VGIC_CPUID_SHIFT;

		e = add_if(g, l, D, m | GICD_IGROUPR);
		e = e ?: add_if(g, l, D, m | (GICD_ICFGR + 4));
		for (unsigned int k = 0; !e && k < 8; k++)
			e = add_if(g, l, D, m | (GICD_IPRIORITYR + 4 * k));
		for (unsigned int k = 0; !e && k < 4; k++)
			e = add_if(g, l, D, m | (GICD_SPENDSGIR + 4 * k));
		e = e ?: add_if(g, l, D, m | GICD_ISPENDR);
		e = e ?: add_if(g, l, D, m | GICD_ISACTIVER);
		e = e ?: add_if(g, l, D, m | GICD_ISENABLER);
		e = e ?: add_if(g, l, C, m | GICC_CTLR);
		e = e ?: add_if(g, l, C, m | GICC_PMR);
		e = e ?: add_if(g, l, C, m | GICC_BPR);
		e = e ?: add_if(g, l, C, m | GICC_ABPR);
		for (unsigned int k = 0; !e && k < 4; k++)
			e = add_if(g, l, C, m | (GICC_APR + 4 * k));
	}
	return e;
}

/* The ITS (arm-vgic-its.rst, restore order): GITS_CBASER, the other
 * GITS_* registers but GITS_CTLR (IIDR, the ABI revision, among them;
 * CREADR after CBASER), then the tables back from guest RAM (a step, not
 * a register: GRP_CTRL RESTORE_TABLES), then GITS_CTLR. */
#define GITS_IIDR 0x4
#define GITS_CBASER 0x80
#define GITS_CWRITER 0x88
#define GITS_CREADR 0x90
#define GITS_BASER 0x100
#define ITS_STEP KVM_DEV_ARM_VGIC_GRP_CTRL

static int build_its(struct vgic *g, struct list *l)
{
	const uint32_t I = KVM_DEV_ARM_VGIC_GRP_ITS_REGS;
	int e;

	if (g->its_fd < 0)
		return 0;
	e = add_if(g, l, I, GITS_CBASER);
	e = e ?: add_if(g, l, I, GITS_IIDR);
	e = e ?: add_if(g, l, I, GITS_CREADR);
	e = e ?: add_if(g, l, I, GITS_CWRITER);
	for (unsigned int n = 0; !e && n < 8; n++)
		e = add_if(g, l, I, GITS_BASER + 8 * n);
	e = e ?: add(l, ITS_STEP, KVM_DEV_ARM_ITS_RESTORE_TABLES);
	return e ?: add_if(g, l, I, GITS_CTLR);
}

/* Every (group, attr) of this chip, in restore order. */
static int build(struct kvmkit_irqchip *chip, struct list *l)
{
	static const uint8_t icc[][5] = {
		{ 3, 0, 12, 12, 5 }, /* ICC_SRE_EL1 */
		{ 3, 0, 12, 12, 4 }, /* ICC_CTLR_EL1 */
		{ 3, 0, 4, 6, 0 }, /* ICC_PMR_EL1 */
		{ 3, 0, 12, 8, 3 }, /* ICC_BPR0_EL1 */
		{ 3, 0, 12, 12, 3 }, /* ICC_BPR1_EL1 */
		{ 3, 0, 12, 8, 4 },  { 3, 0, 12, 8, 5 }, { 3, 0, 12, 8, 6 },
		{ 3, 0, 12, 8, 7 },  { 3, 0, 12, 9, 0 }, { 3, 0, 12, 9, 1 },
		{ 3, 0, 12, 9, 2 },  { 3, 0, 12, 9, 3 }, { 3, 0, 12, 12, 6 }, /* ICC_IGRPEN0_EL1 */
		{ 3, 0, 12, 12, 7 }, /* ICC_IGRPEN1_EL1 */
	};
	struct vgic *g = chip->priv;
	unsigned int nv = kvmkit_vm_config(chip->vm)->vcpus, nirq = g->nr_irqs;
	int e;

	if (g->version == 2)
		return build_v2(chip, l);
	e = add(l, D, GICD_IIDR);
	for (unsigned int c = 0; !e && c < nv; c++) {
		uint64_t m = mpidr_field(kvmkit_vcpu_mpidr(kvmkit_vm_vcpu(chip->vm, c)));

		for (unsigned int o = 0; !e && o < 8; o += 4)
			e = add(l, R, m | (GICR_PROPBASER + o));
		for (unsigned int o = 0; !e && o < 8; o += 4)
			e = add(l, R, m | (GICR_PENDBASER + o));
		e = e ?: add(l, R, m | GICR_CTLR);
	}
	e = e ?: build_its(g, l);
	e = e ?: add(l, D, GICD_CTLR);
	for (unsigned int i = 32; !e && i < nirq; i += 32) {
		e = add(l, D, GICD_IGROUPR + i / 8);
		for (unsigned int k = 0; !e && k < 2; k++)
			e = add(l, D, GICD_ICFGR + i / 4 + 4 * k);
		for (unsigned int k = 0; !e && k < 8; k++)
			e = add(l, D, GICD_IPRIORITYR + i + 4 * k);
		for (unsigned int k = 0; !e && k < 32; k++)
			e = add(l, D, GICD_IROUTER + 8 * (i + k));
		e = e	  ?:
			    add(l, KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
				(uint64_t)VGIC_LEVEL_INFO_LINE_LEVEL
						<< KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT |
					i);
		e = e ?: add(l, D, GICD_ISPENDR + i / 8);
		e = e ?: add(l, D, GICD_ISACTIVER + i / 8);
		e = e ?: add(l, D, GICD_ISENABLER + i / 8);
	}
	for (unsigned int c = 0; !e && c < nv; c++) {
		uint64_t m = mpidr_field(kvmkit_vcpu_mpidr(kvmkit_vm_vcpu(chip->vm, c)));

		e = add(l, R, m | (GICR_SGI + GICD_IGROUPR));
		for (unsigned int k = 0; !e && k < 2; k++)
			e = add(l, R, m | (GICR_SGI + GICD_ICFGR + 4 * k));
		for (unsigned int k = 0; !e && k < 8; k++)
			e = add(l, R, m | (GICR_SGI + GICD_IPRIORITYR + 4 * k));
		e = e ?: add(l, R, m | (GICR_SGI + GICD_ISPENDR));
		e = e ?: add(l, R, m | (GICR_SGI + GICD_ISACTIVER));
		e = e ?: add(l, R, m | (GICR_SGI + GICD_ISENABLER));
		for (size_t k = 0; !e && k < KVMKIT_ARRAY_SIZE(icc); k++) {
			uint64_t a = m | (ARM64_SYS_REG(icc[k][0], icc[k][1], icc[k][2], icc[k][3],
							icc[k][4]) &
					  KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK);

			/* The active-priority registers past the implemented
			 * priority bits do not exist. */
			if (sysreg_present(g, a))
				e = add(l, KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, a);
		}
	}
	return e;
}

static int reg_io(struct vgic *g, struct reg *r, bool write, const char *op)
{
	uint32_t v32 = (uint32_t)r->val;
	bool its = r->group == KVM_DEV_ARM_VGIC_GRP_ITS_REGS || r->group == ITS_STEP;
	bool wide = r->group == KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS || its;
	struct kvm_device_attr a = {
		.group = r->group,
		.attr = r->attr,
		.addr = (uint64_t)(uintptr_t)(wide ? (void *)&r->val : (void *)&v32),
	};

	if (r->group == ITS_STEP) {
		/* Restore the tables from guest RAM; nothing to read. */
		if (!write)
			return 0;
		a.addr = 0;
	}
	if (ioctl(its ? g->its_fd : g->dev_fd, write ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR,
		  &a) < 0)
		return kvmk_err_ioctl(write ? "KVM_SET_DEVICE_ATTR" : "KVM_GET_DEVICE_ATTR", errno,
				      "%s: vGIC group %u attr 0x%llx", op, r->group,
				      (unsigned long long)r->attr);
	if (!write && !wide)
		r->val = v32;
	return 0;
}

/* Before the registers are read: the LPIs' pending bits and the ITS's
 * tables into guest RAM (which a snapshot saves after this). */
static int flush_to_ram(struct vgic *g)
{
	struct kvm_device_attr a = { .group = KVM_DEV_ARM_VGIC_GRP_CTRL };

	if (g->version != 3)
		return 0;
	a.attr = KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES;
	if (ioctl(g->dev_fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		return kvmk_err_ioctl("KVM_SET_DEVICE_ATTR", errno, "SAVE_PENDING_TABLES");
	a.attr = KVM_DEV_ARM_ITS_SAVE_TABLES;
	if (g->its_fd >= 0 && ioctl(g->its_fd, KVM_SET_DEVICE_ATTR, &a) < 0)
		return kvmk_err_ioctl("KVM_SET_DEVICE_ATTR", errno, "ITS_SAVE_TABLES");
	return 0;
}

int kvmk_vgic_save(struct kvmkit_irqchip *chip, struct kvmk_blob *out)
{
	struct vgic *g = chip->priv;
	struct list l = { 0 };
	int e;

	if (!kvmk_vgic_ready(g))
		return kvmk_err_state("vgic", "not initialised", "every vCPU created", "save");
	e = flush_to_ram(g);
	e = e ?: build(chip, &l);
	for (unsigned int i = 0; !e && i < l.n; i++)
		e = reg_io(g, &l.r[i], false, OP_SAVE);
	e = e ?: kvmk_blob_put_u32(out, l.n);
	for (unsigned int i = 0; !e && i < l.n; i++) {
		e = kvmk_blob_put_u32(out, l.r[i].group);
		e = e ?: kvmk_blob_put_u32(out, (uint32_t)l.r[i].attr);
		e = e ?: kvmk_blob_put_u32(out, (uint32_t)(l.r[i].attr >> 32));
		e = e ?: kvmk_blob_put_u32(out, (uint32_t)l.r[i].val);
		e = e ?: kvmk_blob_put_u32(out, (uint32_t)(l.r[i].val >> 32));
	}
	free(l.r);
	return e;
}

int kvmk_vgic_restore(struct kvmkit_irqchip *chip, const uint8_t *p, size_t len)
{
	struct kvmk_reader rd = { p, len, OP_RESTORE };
	struct vgic *g = chip->priv;
	struct list l = { 0 };
	uint32_t n = 0, w[5];
	int e;

	if (!kvmk_vgic_ready(g))
		return kvmk_err_state("vgic", "not initialised", "every vCPU created", "restore");
	e = build(chip, &l);
	e = e ?: kvmk_reader_u32(&rd, &n, "vGIC register count");
	if (!e && n != l.n)
		e = kvmk_err_format(OP_RESTORE, "%u vGIC registers, this vGIC has %u", n, l.n);
	/* Parsed whole, each pair the expected one, before any write. */
	for (unsigned int i = 0; !e && i < l.n; i++) {
		for (int k = 0; !e && k < 5; k++)
			e = kvmk_reader_u32(&rd, &w[k], "vGIC register");
		if (e)
			break;
		if (w[0] != l.r[i].group || ((uint64_t)w[2] << 32 | w[1]) != l.r[i].attr)
			e = kvmk_err_format(OP_RESTORE,
					    "vGIC register %u: group %u attr 0x%llx where this "
					    "vGIC has group %u attr 0x%llx",
					    i, w[0],
					    (unsigned long long)((uint64_t)w[2] << 32 | w[1]),
					    l.r[i].group, (unsigned long long)l.r[i].attr);
		l.r[i].val = (uint64_t)w[4] << 32 | w[3];
	}
	if (!e && rd.left)
		e = kvmk_err_format(OP_RESTORE, "%zu bytes past the vGIC state", rd.left);
	for (unsigned int i = 0; !e && i < l.n; i++)
		e = reg_io(g, &l.r[i], true, OP_RESTORE);
	free(l.r);
	return e;
}
