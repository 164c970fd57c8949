// SPDX-License-Identifier: MIT
/*
 * The device tree of kvmkit's arm64 platform (include/kvmkit/arm64.h),
 * written with libfdt's sequential-write calls from a checked description.
 * No KVM here, so it builds and is tested (dtc decompiles it) on any host;
 * src/arch/arm64/fdt.c describes a live VM. Bindings followed: the
 * devicetree specification (memory, cpus, chosen), Linux's arm/psci.yaml,
 * arm,gic-v3.yaml and arm,gic.yaml, arm,arch_timer.yaml, 8250.yaml.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "fdt"
#include "core/internal.h"
#include <kvmkit/arm64.h>

#if KVMK_HAVE_LIBFDT
#include <libfdt.h>

#define GIC_PHANDLE 1
#define ITS_PHANDLE 2
#define FDT_BUF_SIZE (64 * 1024)
/* GIC interrupt specifier: type, number, flags (arm,gic.yaml). */
#define GIC_SPI 0
#define GIC_PPI 1
#define IRQ_EDGE_RISING 1
#define IRQ_LEVEL_HIGH 4
#define UART_CLOCK 1843200 /* the 16550's classic 1.8432 MHz */

static int check(const struct kvmkit_arm64_platform *p)
{
	const char *op = "kvmkit_arm64_fdt_build";
	unsigned int max =
		p->gic_version == 2 ? KVMKIT_ARM64_GICV2_MAX_VCPUS : KVMKIT_ARM64_GICV3_MAX_VCPUS;

	if (p->gic_version != 2 && p->gic_version != 3)
		return kvmk_err_param(op, "gic_version", "2 or 3", "%u", p->gic_version);
	if (p->its && p->gic_version != 3)
		return kvmk_err_param(op, "its", "an ITS needs a GICv3", "GICv%u", p->gic_version);
	if (!p->vcpus || p->vcpus > max)
		return kvmk_err_param(op, "vcpus", "1 up to the GIC's limit", "%u (GICv%u: %u)",
				      p->vcpus, p->gic_version, max);
	if (!p->mpidr)
		return kvmk_err_param(op, "mpidr", "no affinities", "NULL");
	for (unsigned int i = 0; i < p->vcpus; i++)
		for (unsigned int j = 0; j < i; j++)
			if (((p->mpidr[i] ^ p->mpidr[j]) & KVMKIT_ARM64_MPIDR_AFF_MASK) == 0)
				return kvmk_err_param(op, "mpidr", "two vCPUs with one affinity",
						      "vCPU %u and %u: 0x%llx", j, i,
						      (unsigned long long)p->mpidr[i]);
	if (!p->mem_size || p->mem_base + p->mem_size < p->mem_base)
		return kvmk_err_param(op, "mem_size", "non-zero, not past 2^64", "0x%llx+0x%llx",
				      (unsigned long long)p->mem_base,
				      (unsigned long long)p->mem_size);
	if (p->initrd_end && (p->initrd_end < p->initrd_start || p->initrd_start < p->mem_base ||
			      p->initrd_end - p->mem_base > p->mem_size))
		return kvmk_err_param(op, "initrd", "not inside RAM", "0x%llx-0x%llx",
				      (unsigned long long)p->initrd_start,
				      (unsigned long long)p->initrd_end);
	if (p->spis && p->uart_base && p->uart_gsi >= p->spis)
		return kvmk_err_param(op, "uart_gsi", "beyond the GIC's SPIs", "%u (%u SPIs)",
				      p->uart_gsi, p->spis);
	if (p->ndevs > KVMKIT_ARM64_FDT_MAX_DEVS || (p->ndevs && !p->devs))
		return kvmk_err_param(op, "ndevs", "at most 64, with devs", "%u", p->ndevs);
	for (unsigned int i = 0; i < p->ndevs; i++) {
		const struct kvmkit_arm64_mmio_dev *d = &p->devs[i];

		if (!d->compatible || !d->compatible[0] || strlen(d->compatible) > 64)
			return kvmk_err_param(op, "devs", "a compatible string of 1..64 bytes",
					      "device %u", i);
		if (!d->size || d->base < KVMKIT_ARM64_DEV_BASE ||
		    d->base > KVMKIT_ARM64_RAM_BASE || d->size > KVMKIT_ARM64_RAM_BASE - d->base)
			return kvmk_err_param(
				op, "devs", "outside the device window", "device %u: 0x%llx+0x%llx",
				i, (unsigned long long)d->base, (unsigned long long)d->size);
		if (p->spis && d->gsi >= p->spis)
			return kvmk_err_param(op, "devs", "GSI beyond the GIC's SPIs",
					      "device %u: %u (%u SPIs)", i, d->gsi, p->spis);
		for (unsigned int j = 0; j < i; j++)
			if (d->base < p->devs[j].base + p->devs[j].size &&
			    p->devs[j].base < d->base + d->size)
				return kvmk_err_param(op, "devs", "two devices overlap",
						      "device %u and %u", j, i);
	}
	if (p->bootargs && strlen(p->bootargs) > KVMKIT_ARM64_BOOTARGS_MAX)
		return kvmk_err_param(op, "bootargs", "too long", "%zu bytes (max %d)",
				      strlen(p->bootargs), KVMKIT_ARM64_BOOTARGS_MAX);
	return 0;
}

/* A reg or ranges pair in two cells each (#address-cells = #size-cells = 2). */
static int prop_reg(void *fdt, const uint64_t *pairs, unsigned int n)
{
	fdt64_t v[4];

	for (unsigned int i = 0; i < 2 * n; i++)
		v[i] = cpu_to_fdt64(pairs[i]);
	return fdt_property(fdt, "reg", v, (int)(n * 2 * sizeof(v[0])));
}

static int prop_cells(void *fdt, const char *name, const uint32_t *c, unsigned int n)
{
	fdt32_t v[12];

	for (unsigned int i = 0; i < n; i++)
		v[i] = cpu_to_fdt32(c[i]);
	return fdt_property(fdt, name, v, (int)(n * sizeof(v[0])));
}

static int cpus(void *fdt, const struct kvmkit_arm64_platform *p)
{
	bool aff3 = false;
	int r;

	for (unsigned int i = 0; i < p->vcpus; i++)
		aff3 |= (p->mpidr[i] >> 32 & 0xff) != 0;
	r = fdt_begin_node(fdt, "cpus");
	r = r ?: fdt_property_u32(fdt, "#address-cells", aff3 ? 2 : 1);
	r = r ?: fdt_property_u32(fdt, "#size-cells", 0);
	for (unsigned int i = 0; !r && i < p->vcpus; i++) {
		uint64_t aff = p->mpidr[i] & KVMKIT_ARM64_MPIDR_AFF_MASK;
		char name[32];

		snprintf(name, sizeof(name), "cpu@%llx", (unsigned long long)aff);
		r = fdt_begin_node(fdt, name);
		r = r ?: fdt_property_string(fdt, "device_type", "cpu");
		r = r ?: fdt_property_string(fdt, "compatible", "arm,arm-v8");
		r = r ?: fdt_property_string(fdt, "enable-method", "psci");
		if (!r)
			r = aff3 ? fdt_property_u64(fdt, "reg", aff) :
				   fdt_property_u32(fdt, "reg", (uint32_t)aff);
		r = r ?: fdt_end_node(fdt);
	}
	return r ?: fdt_end_node(fdt);
}

/* arm,gic-v3-its: the MSI controller devices name with msi-parent. */
static int its(void *fdt)
{
	uint64_t reg[2] = { KVMKIT_ARM64_GIC_ITS, KVMKIT_ARM64_GIC_ITS_SIZE };
	char name[32];
	int r;

	snprintf(name, sizeof(name), "msi-controller@%llx",
		 (unsigned long long)KVMKIT_ARM64_GIC_ITS);
	r = fdt_begin_node(fdt, name);
	r = r ?: fdt_property_string(fdt, "compatible", "arm,gic-v3-its");
	r = r ?: fdt_property(fdt, "msi-controller", NULL, 0);
	r = r ?: fdt_property_u32(fdt, "#msi-cells", 1);
	r = r ?: prop_reg(fdt, reg, 1);
	r = r ?: fdt_property_u32(fdt, "phandle", ITS_PHANDLE);
	return r ?: fdt_end_node(fdt);
}

static int gic(void *fdt, const struct kvmkit_arm64_platform *p)
{
	uint64_t reg[4] = { KVMKIT_ARM64_GIC_DIST, KVMKIT_ARM64_GIC_DIST_SIZE };
	char name[32];
	int r;

	snprintf(name, sizeof(name), "intc@%llx", (unsigned long long)KVMKIT_ARM64_GIC_DIST);
	if (p->gic_version == 3) {
		reg[2] = KVMKIT_ARM64_GICV3_REDIST;
		reg[3] = (uint64_t)p->vcpus * KVMKIT_ARM64_GICV3_REDIST_STRIDE;
	} else {
		reg[1] = 0x1000; /* the distributor's 4 KiB (arm-vgic.rst) */
		reg[2] = KVMKIT_ARM64_GICV2_CPU;
		reg[3] = KVMKIT_ARM64_GICV2_CPU_SIZE;
	}
	r = fdt_begin_node(fdt, name);
	r = r	  ?:
		    fdt_property_string(fdt, "compatible",
					p->gic_version == 3 ? "arm,gic-v3" : "arm,cortex-a15-gic");
	r = r ?: fdt_property_u32(fdt, "#interrupt-cells", 3);
	r = r ?: fdt_property(fdt, "interrupt-controller", NULL, 0);
	r = r ?: prop_reg(fdt, reg, 2);
	/* An interrupt provider states #address-cells (interrupt-map
	 * parsing); the GICv3's 2/2 and ranges leave room for an ITS child. */
	r = r ?: fdt_property_u32(fdt, "#address-cells", p->gic_version == 3 ? 2 : 0);
	if (p->gic_version == 3) {
		r = r ?: fdt_property_u32(fdt, "#size-cells", 2);
		r = r ?: fdt_property(fdt, "ranges", NULL, 0);
		r = r ?: fdt_property_u32(fdt, "#redistributor-regions", 1);
	}
	r = r ?: fdt_property_u32(fdt, "phandle", GIC_PHANDLE);
	if (p->its)
		r = r ?: its(fdt);
	return r ?: fdt_end_node(fdt);
}

static int timer(void *fdt, const struct kvmkit_arm64_platform *p)
{
	/* GICv2 interrupt specifiers carry the CPU mask in bits 15:8. */
	uint32_t flags = IRQ_LEVEL_HIGH;
	uint32_t cells[12];
	static const uint32_t ppis[4] = { 13, 14, 11, 10 };
	int r;

	if (p->gic_version == 2)
		flags |= ((1u << p->vcpus) - 1) << 8;
	for (unsigned int i = 0; i < 4; i++) {
		cells[3 * i] = GIC_PPI;
		cells[3 * i + 1] = ppis[i];
		cells[3 * i + 2] = flags;
	}
	r = fdt_begin_node(fdt, "timer");
	r = r ?: fdt_property_string(fdt, "compatible", "arm,armv8-timer");
	r = r ?: prop_cells(fdt, "interrupts", cells, 12);
	r = r ?: fdt_property(fdt, "always-on", NULL, 0);
	return r ?: fdt_end_node(fdt);
}

/* The PMUv3's overflow interrupt: PPI 7 (INTID 23), level, on every CPU. */
static int pmu(void *fdt, const struct kvmkit_arm64_platform *p)
{
	uint32_t cells[3] = { GIC_PPI, KVMKIT_ARM64_PMU_PPI - 16, IRQ_LEVEL_HIGH };
	int r;

	if (p->gic_version == 2)
		cells[2] |= ((1u << p->vcpus) - 1) << 8;
	r = fdt_begin_node(fdt, "pmu");
	r = r ?: fdt_property_string(fdt, "compatible", "arm,armv8-pmuv3");
	r = r ?: prop_cells(fdt, "interrupts", cells, 3);
	return r ?: fdt_end_node(fdt);
}

static int uart(void *fdt, const struct kvmkit_arm64_platform *p, const char *name)
{
	uint64_t reg[2] = { p->uart_base, 8 };
	uint32_t irq[3] = { GIC_SPI, p->uart_gsi, IRQ_LEVEL_HIGH };
	int r = fdt_begin_node(fdt, name);

	r = r ?: fdt_property_string(fdt, "compatible", "ns16550a");
	r = r ?: prop_reg(fdt, reg, 1);
	r = r ?: prop_cells(fdt, "interrupts", irq, 3);
	r = r ?: fdt_property_u32(fdt, "clock-frequency", UART_CLOCK);
	r = r ?: fdt_property_u32(fdt, "reg-shift", 0);
	r = r ?: fdt_property_u32(fdt, "reg-io-width", 1);
	return r ?: fdt_end_node(fdt);
}

static int mmio_dev(void *fdt, const struct kvmkit_arm64_mmio_dev *d)
{
	uint64_t reg[2] = { d->base, d->size };
	uint32_t irq[3] = { GIC_SPI, d->gsi, d->level ? IRQ_LEVEL_HIGH : IRQ_EDGE_RISING };
	char name[96];
	int r;

	/* The node name is the compatible's device part: virtio_mmio@... */
	snprintf(name, sizeof(name), "%s@%llx",
		 strcmp(d->compatible, "virtio,mmio") ? "device" : "virtio_mmio",
		 (unsigned long long)d->base);
	r = fdt_begin_node(fdt, name);
	r = r ?: fdt_property_string(fdt, "compatible", d->compatible);
	r = r ?: prop_reg(fdt, reg, 1);
	r = r ?: prop_cells(fdt, "interrupts", irq, 3);
	r = r ?: fdt_property(fdt, "dma-coherent", NULL, 0);
	return r ?: fdt_end_node(fdt);
}

static int write_tree(void *fdt, const struct kvmkit_arm64_platform *p)
{
	uint64_t mem[2] = { p->mem_base, p->mem_size };
	char name[48], uart_name[32], path[40];
	int r;

	snprintf(uart_name, sizeof(uart_name), "serial@%llx", (unsigned long long)p->uart_base);
	snprintf(path, sizeof(path), "/%s", uart_name);
	r = fdt_create(fdt, FDT_BUF_SIZE);
	r = r ?: fdt_finish_reservemap(fdt);
	r = r ?: fdt_begin_node(fdt, "");
	r = r ?: fdt_property_string(fdt, "compatible", "linux,dummy-virt");
	r = r ?: fdt_property_string(fdt, "model", "kvmkit arm64");
	r = r ?: fdt_property_u32(fdt, "#address-cells", 2);
	r = r ?: fdt_property_u32(fdt, "#size-cells", 2);
	r = r ?: fdt_property_u32(fdt, "interrupt-parent", GIC_PHANDLE);

	r = r ?: fdt_begin_node(fdt, "chosen");
	if (p->bootargs)
		r = r ?: fdt_property_string(fdt, "bootargs", p->bootargs);
	if (p->initrd_end) {
		r = r ?: fdt_property_u64(fdt, "linux,initrd-start", p->initrd_start);
		r = r ?: fdt_property_u64(fdt, "linux,initrd-end", p->initrd_end);
	}
	if (p->uart_base)
		r = r ?: fdt_property_string(fdt, "stdout-path", path);
	r = r ?: fdt_end_node(fdt);

	snprintf(name, sizeof(name), "memory@%llx", (unsigned long long)p->mem_base);
	r = r ?: fdt_begin_node(fdt, name);
	r = r ?: fdt_property_string(fdt, "device_type", "memory");
	r = r ?: prop_reg(fdt, mem, 1);
	r = r ?: fdt_end_node(fdt);

	r = r ?: cpus(fdt, p);
	r = r ?: fdt_begin_node(fdt, "psci");
	r = r ?: fdt_property_string(fdt, "compatible", "arm,psci-0.2");
	r = r ?: fdt_property_string(fdt, "method", "hvc");
	r = r ?: fdt_end_node(fdt);
	r = r ?: gic(fdt, p);
	r = r ?: timer(fdt, p);
	if (p->pmu)
		r = r ?: pmu(fdt, p);
	if (p->uart_base)
		r = r ?: uart(fdt, p, uart_name);
	for (unsigned int i = 0; i < p->ndevs; i++)
		r = r ?: mmio_dev(fdt, &p->devs[i]);
	r = r ?: fdt_end_node(fdt);
	return r ?: fdt_finish(fdt);
}

int kvmkit_arm64_fdt_build(const struct kvmkit_arm64_platform *p, void **dtb, size_t *len)
{
	void *fdt;
	int r = check(p);

	if (r)
		return r;
	fdt = calloc(1, FDT_BUF_SIZE);
	if (!fdt)
		return kvmk_err_resource("kvmkit_arm64_fdt_build", ENOMEM, "%d bytes",
					 FDT_BUF_SIZE);
	r = write_tree(fdt, p);
	if (!r)
		r = fdt_pack(fdt);
	if (r) {
		free(fdt);
		/* The buffer holds the largest description check() lets by. */
		return kvmk_err_resource("kvmkit_arm64_fdt_build", ENOSPC, "libfdt: %s",
					 fdt_strerror(r));
	}
	*len = fdt_totalsize(fdt);
	*dtb = fdt;
	return 0;
}
#else
int kvmkit_arm64_fdt_build(const struct kvmkit_arm64_platform *p, void **dtb, size_t *len)
{
	return kvmk_err_unsupported("kvmkit_arm64_fdt_build", ENOTSUP,
				    "kvmkit was built without libfdt");
}
#endif
