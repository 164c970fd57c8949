/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for an x86 kvmkit machine (README.md here): RSDP (v2), XSDT,
 * FADT (hardware-reduced: poweroff through the sleep control register,
 * reboot through the reset register), MADT (a LAPIC per vCPU, the IOAPIC,
 * ISA overrides) and a DSDT (COM1, the machine's MMIO devices, _S5), and
 * the small power-management device behind those registers. Internal: the
 * machine builds the tables and places them at KVMK_ACPI_BASE.
 */
#ifndef KVMKIT_ACPI_ACPI_H
#define KVMKIT_ACPI_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvmkit_vm;

/* In the legacy BIOS area, where the kernel's RSDP scan looks too. */
#define KVMK_ACPI_BASE 0xe0000ULL
#define KVMK_ACPI_END 0x100000ULL
#define KVMK_ACPI_MAX_DEVS 256
#define KVMK_ACPI_IOAPIC_ADDR 0xfec00000u
#define KVMK_ACPI_LAPIC_ADDR 0xfee00000u
#define KVMK_ACPI_SCI_IRQ 9

/* The power-management device's I/O ports (pm.c). */
#define KVMK_ACPI_PM_PORT 0x600
#define KVMK_ACPI_SLEEP_CONTROL (KVMK_ACPI_PM_PORT + 0) /* SLP_TYP << 2 | SLP_EN */
#define KVMK_ACPI_SLEEP_STATUS (KVMK_ACPI_PM_PORT + 1) /* WAK_STS (0x80) */
#define KVMK_ACPI_RESET_REG (KVMK_ACPI_PM_PORT + 2)
#define KVMK_ACPI_RESET_VALUE 0x01
#define KVMK_ACPI_PVPANIC (KVMK_ACPI_PM_PORT + 4) /* QEMU's pvpanic protocol */
#define KVMK_ACPI_PM_LEN 5
#define KVMK_PVPANIC_PANICKED 0x01
#define KVMK_PVPANIC_CRASH_LOADED 0x02
#define KVMK_ACPI_S5_TYPE 5 /* SLP_TYP of \_S5 */
#define KVMK_ACPI_SLP_EN 0x20
#define KVMK_I8042_DATA 0x60
#define KVMK_I8042_CMD 0x64
#define KVMK_I8042_RESET 0xfe

/* An MMIO device the DSDT declares (virtio-mmio: hid "LNRO0005"). */
struct kvmk_acpi_mmio_dev {
	uint64_t base; /* below 4 GiB (Memory32Fixed) */
	uint32_t size;
	uint32_t gsi; /* an IOAPIC pin, 0..23 */
	bool level; /* level-triggered (irqfd + resample), else edge */
	const char *hid; /* 1-8 characters, A-Z 0-9 */
};

struct kvmk_acpi_config {
	unsigned int vcpus; /* APIC ids 0..vcpus-1 */
	bool com1; /* the 16550 at 0x3f8, IRQ 4 */
	bool pvpanic; /* QEMU0001 at KVMK_ACPI_PVPANIC */
	const struct kvmk_acpi_mmio_dev *devs;
	unsigned int ndevs;
};

/* Where each table landed: offsets from the start of the blob. */
struct kvmk_acpi_tables {
	size_t len; /* bytes used */
	size_t rsdp, xsdt, fadt, madt, dsdt;
	size_t xsdt_len, fadt_len, madt_len, dsdt_len;
};

/* Builds the tables into @buf (@size bytes) for guest address @base: the
 * RSDP first (so @base is its address), each table 16-byte aligned, every
 * checksum set. -EINVAL (KVMKIT_ERR_PARAM) for a bad config (no vCPU, a
 * device outside 32 bits, a GSI past the IOAPIC, a bad _HID, too many
 * devices) or when the tables need more than @size bytes. */
int kvmk_acpi_build(const struct kvmk_acpi_config *cfg, uint64_t base, void *buf, size_t size,
		    struct kvmk_acpi_tables *out);

/* "virtio_mmio.device=<size>@<base>:<gsi>" for each device, separated by
 * spaces, into @buf (NUL-terminated); the length, or -EINVAL if @size is
 * too small. */
int kvmk_acpi_virtio_cmdline(const struct kvmk_acpi_mmio_dev *devs, unsigned int ndevs, char *buf,
			     size_t size);

/* The power-management device: sleep control/status and reset registers
 * at KVMK_ACPI_PM_PORT, a pvpanic register, and the i8042's ports
 * answering "ready" with command 0xfe as a reset. S5 stops the VM as
 * GUEST_EXIT status 0, a reset as GUEST_RESET, a panic as GUEST_CRASH. */
struct kvmk_acpi_pm;
int kvmk_acpi_pm_create(struct kvmkit_vm *vm, struct kvmk_acpi_pm **out);
void kvmk_acpi_pm_destroy(struct kvmk_acpi_pm *pm);

#endif
