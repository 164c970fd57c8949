/* SPDX-License-Identifier: MIT */
/*
 * arm64: kvmkit's guest memory map, the vGIC's configuration and the
 * vCPU calls that only exist on arm64. The map (src/arch/arm64/README.md
 * has the table and the reasons):
 *
 *   0x0800_0000  GIC distributor, 64 KiB
 *   0x0801_0000  GICv2 CPU interface, 8 KiB used (64 KiB reserved)
 *   0x0808_0000  GICv3 ITS, 128 KiB (with a GICv3 whose host has one)
 *   0x080a_0000  GICv3 redistributors, 2 x 64 KiB per vCPU, up to 123 vCPUs
 *   0x0900_0000  16550 UART on MMIO (byte registers, stride 1), SPI 1
 *   0x0a00_0000  virtio-mmio windows: 0x0a00_0000 + n * 0x1000, n < 32
 *                (kvmkit/virtio.h), each 0x200 bytes, an SPI from 16 up
 *   0x0a02_0000  free for devices (test devices)
 *   0x8000_0000  RAM (mem_size bytes)
 *
 * Interrupt numbers: kvmkit's GSIs on arm64 are SPI numbers: GSI n is the
 * SPI whose GIC INTID is n + 32 (the default route: GSI n -> irqchip 0,
 * pin n). KVM_IRQ_LINE wants the raw INTID and KVM_IRQFD the route's pin:
 * the vGIC back end converts in one place, callers only see GSIs.
 *
 * vCPU entry (kvmkit_boot_elf64 on arm64): vCPU 0 starts at the ELF entry
 * at EL1h with DAIF masked and the MMU off, X0 = vCPU index (0), X1 = vCPU
 * count, X2 = RAM size, X3 = RAM base; the others are powered off until the
 * guest starts them with PSCI CPU_ON (their X0 is the call's context id).
 * PSCI 0.2+ (SMCCC through HVC) is KVM's own: SYSTEM_OFF stops the VM with
 * status 0, SYSTEM_RESET as a guest reset.
 */
#ifndef KVMKIT_ARM64_H
#define KVMKIT_ARM64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVMKIT_ARM64_GIC_DIST 0x08000000ULL
#define KVMKIT_ARM64_GIC_DIST_SIZE 0x10000ULL
#define KVMKIT_ARM64_GICV2_CPU 0x08010000ULL
#define KVMKIT_ARM64_GICV2_CPU_SIZE 0x2000ULL
#define KVMKIT_ARM64_GIC_ITS 0x08080000ULL
#define KVMKIT_ARM64_GIC_ITS_SIZE 0x20000ULL
/* Where MSIs are written: the ITS's GITS_TRANSLATER (data = event id,
 * device id through KVM_MSI_VALID_DEVID). */
#define KVMKIT_ARM64_GITS_TRANSLATER (KVMKIT_ARM64_GIC_ITS + 0x10040ULL)
#define KVMKIT_ARM64_GICV3_REDIST 0x080a0000ULL
#define KVMKIT_ARM64_GICV3_REDIST_SIZE 0x00f60000ULL
#define KVMKIT_ARM64_GICV3_REDIST_STRIDE 0x20000ULL /* two 64 KiB frames */
#define KVMKIT_ARM64_GICV3_MAX_VCPUS \
	(KVMKIT_ARM64_GICV3_REDIST_SIZE / KVMKIT_ARM64_GICV3_REDIST_STRIDE)
#define KVMKIT_ARM64_GICV2_MAX_VCPUS 8
#define KVMKIT_ARM64_UART 0x09000000ULL
#define KVMKIT_ARM64_UART_GSI 1 /* SPI 1, INTID 33 */
#define KVMKIT_ARM64_DEV_BASE 0x0a000000ULL
/* virtio-mmio: KVMKIT_VIRTIO_MMIO_BASE (= this) + slot * 0x1000, 32 slots. */
#define KVMKIT_ARM64_VIRTIO_MMIO 0x0a000000ULL
#define KVMKIT_ARM64_VIRTIO_MMIO_END 0x0a020000ULL
#define KVMKIT_ARM64_RAM_BASE 0x80000000ULL

/* MPIDR's affinity fields (Aff3, Aff2..0): what PSCI CPU_ON's target and
 * the GIC's routing take (bit 31 is RES1 in MPIDR, refused there). */
#define KVMKIT_ARM64_MPIDR_AFF_MASK 0xff00ffffffULL

/* First SPI's INTID: GSI n is INTID n + 32. SPIs end below INTID 1020
 * (1020..1023 are special), so a GIC of 1024 interrupts has 988. */
#define KVMKIT_ARM64_SPI_BASE 32
#define KVMKIT_ARM64_SPI_END 1020
/* The guest PMU's overflow interrupt (kvmkit run --cpu pmu): PPI 7. */
#define KVMKIT_ARM64_PMU_PPI 23
/* The most interrupts KVM's vGIC takes (a multiple of 32 below 1020). */
#define KVMKIT_GIC_MAX_IRQS 992

/* The vGIC versions (kvmkit_irqchip_config.gic_version). */
enum kvmkit_gic_version {
	KVMKIT_GIC_AUTO = 0, /* GICv3, else GICv2 */
	KVMKIT_GIC_V2 = 2,
	KVMKIT_GIC_V3 = 3,
};

/*
 * The device tree of kvmkit's arm64 platform (libfdt), built from a
 * description: memory, the cpus (enable-method psci, reg = affinity), psci
 * (0.2+, over HVC), the GIC (v3: distributor and one redistributor region;
 * v2: distributor and CPU interface; an ITS child node as msi-controller),
 * every device of @devs (dma-coherent, its SPI edge-rising or
 * level-high as it says), the architected timer's PPIs (secure
 * and non-secure physical 13/14, virtual 11, hypervisor 10; level), the
 * UART (ns16550a, its SPI level-high: kvmkit drives it as a level line) and
 * /chosen (bootargs, stdout-path). The description is checked (vCPU count
 * for the GIC version, affinities, sizes, bootargs length): KVMKIT_ERR_PARAM.
 * Pure: no KVM; builds on every host where libfdt was found (else
 * -ENOTSUP). *dtb is malloc'ed, the caller frees it.
 */
/* A device on MMIO for the device tree (virtio-mmio and the like): its
 * window, which must lie in [KVMKIT_ARM64_DEV_BASE, KVMKIT_ARM64_RAM_BASE),
 * and its SPI with the trigger kvmkit signals it with (level: a line held
 * or an irqfd with resample; edge: a pulse or a plain irqfd). */
struct kvmkit_arm64_mmio_dev {
	const char *compatible; /* e.g. "virtio,mmio" */
	uint64_t base, size;
	uint32_t gsi; /* SPI n = INTID n + 32 */
	bool level;
};
#define KVMKIT_ARM64_FDT_MAX_DEVS 64

struct kvmkit_arm64_platform {
	unsigned int vcpus;
	const uint64_t *mpidr; /* vcpus entries (affinity bits are used) */
	uint64_t mem_base, mem_size;
	unsigned int gic_version; /* 2 or 3 */
	bool its; /* GICv3 only: an ITS node (msi-controller) in the GIC's */
	uint64_t uart_base; /* 0: no UART node */
	uint32_t uart_gsi; /* its SPI */
	const char *bootargs; /* NULL: none; at most 2047 bytes */
	/* An initrd at [initrd_start, initrd_end) in RAM (/chosen
	 * linux,initrd-*); initrd_end 0: none. */
	uint64_t initrd_start, initrd_end;
	/* SPIs the GIC has (0: not checked); every GSI named must be below. */
	unsigned int spis;
	bool pmu; /* a PMUv3 node (arm,armv8-pmuv3) on PPI 7, INTID 23 */
	const struct kvmkit_arm64_mmio_dev *devs; /* ndevs entries */
	unsigned int ndevs; /* at most KVMKIT_ARM64_FDT_MAX_DEVS */
};
#define KVMKIT_ARM64_BOOTARGS_MAX 2047
int kvmkit_arm64_fdt_build(const struct kvmkit_arm64_platform *p, void **dtb, size_t *len);

#if defined(__aarch64__)
struct kvmkit_vm;
struct kvmkit_vcpu;
struct kvmkit_irqchip;

/* KVM_GET_ONE_REG / KVM_SET_ONE_REG of register @id (KVM_REG_ARM64_*,
 * 64-bit registers only). vcpu.h's register rule applies. */
int kvmkit_vcpu_get_one_reg(struct kvmkit_vcpu *vcpu, uint64_t id, uint64_t *val);
int kvmkit_vcpu_set_one_reg(struct kvmkit_vcpu *vcpu, uint64_t id, uint64_t val);
/* The vCPU's MPIDR_EL1 (its affinity: PSCI CPU_ON's target, the GIC's
 * routing), as KVM set it at the vCPU's creation. Any thread, any time. */
uint64_t kvmkit_vcpu_mpidr(struct kvmkit_vcpu *vcpu);
/* Sets PC to @pc and X0..X(n-1) to @x (n <= 8) of a vCPU that has not run. */
int kvmkit_arm64_vcpu_set_entry(struct kvmkit_vcpu *vcpu, uint64_t pc, const uint64_t *x,
				unsigned int n);
/* Drives PPI @intid (16..31) of vCPU @vcpu to @level (KVM_IRQ_LINE's PPI
 * type). PPIs are per vCPU, not GSIs: no route, no statistics. PPIs a KVM
 * device owns (the timers' 27 and 30, 26, the PMU's when it is on) are
 * refused by KVM. After every vCPU exists (the vGIC's init). */
int kvmkit_irqchip_ppi(struct kvmkit_irqchip *chip, unsigned int vcpu, uint32_t intid, bool level);
/* The vGIC version created (2 or 3; 0 for another back end). */
int kvmkit_irqchip_gic_version(const struct kvmkit_irqchip *chip);
/* Whether the vGIC has an ITS (GICv3 where the host has one): then MSIs
 * (kvmkit_signal_msi, MSI routes, kvmkit_msi handles) reach LPIs, with a
 * device id (KVM_CAP_MSI_DEVID). */
bool kvmkit_irqchip_has_its(const struct kvmkit_irqchip *chip);
/* Which vGIC versions this host can create in @vm (KVM_CREATE_DEVICE_TEST;
 * before any vCPU). */
int kvmkit_arm64_gic_probe(struct kvmkit_vm *vm, bool *v2, bool *v3, bool *its);
/* @vm's platform for kvmkit_arm64_fdt_build(): its vCPUs (all created) and
 * their MPIDRs (valid while @vm lives), RAM, vGIC version, the UART of
 * kvmkit's map and a machine's virtio-mmio devices (kvmkit_machine_create
 * adds them: window, SPI, trigger); bootargs NULL. -EBUSY (state) without a vGIC or vCPUs. */
int kvmkit_arm64_platform_of(struct kvmkit_vm *vm, struct kvmkit_arm64_platform *out);
/*
 * The arm64 Linux boot protocol (Linux's Documentation/arch/arm64/booting.rst):
 * an uncompressed Image (64-byte header: "ARM\x64" magic at 0x38,
 * text_offset, image_size, flags; little-endian, 4 KiB pages) at a 2 MiB
 * aligned base in RAM plus text_offset; the device tree (kvmkit's platform,
 * with @cmdline and the initrd) 8-byte aligned in the last 2 MiB of RAM; the
 * initrd page-aligned right below it; vCPU 0 at the image with X0 = the
 * DTB, X1..X3 = 0, the others left for PSCI CPU_ON. Everything is checked
 * before anything is written (KVMKIT_ERR_FORMAT for the image,
 * KVMKIT_ERR_PARAM when it does not fit).
 */
#define KVMKIT_ARM64_IMAGE_MAGIC 0x644d5241u /* "ARM\x64" at 0x38 */
bool kvmkit_arm64_image_detect(const void *buf, size_t len);
/* Loads an Image (kvmkit_arm64_image_detect), its initrd (NULL: none) and
 * the device tree; every vCPU must exist, and a vGIC. */
int kvmkit_boot_arm64_linux(struct kvmkit_vm *vm, const void *image, size_t len, const void *initrd,
			    size_t initrd_len, const char *cmdline);
#endif

#ifdef __cplusplus
}
#endif
#endif
