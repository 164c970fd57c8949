/* SPDX-License-Identifier: MIT */
/*
 * A machine: a VM with its vCPUs, the standard devices (16550 UART on COM1,
 * isa-debug-exit, report device, fw_cfg, the test device if configured)
 * and a loaded guest: ELF64, Multiboot, or Linux (a bzImage or a PVH
 * vmlinux, linux_boot.h), which also gets ACPI tables and the ACPI
 * power-management device (poweroff: GUEST_EXIT status 0; reboot:
 * GUEST_RESET; docs/PLATFORM.md). This is what `kvmkit run`
 * assembles; library users may build their own instead.
 *
 * Threads: create, run and destroy come from the application's threads,
 * never from a vCPU thread (kvmkit_machine_destroy() there is refused and
 * logged), and destroy last, when no other thread uses the machine. While
 * kvmkit_machine_run() waits, other threads may use the VM (e.g.
 * kvmkit_vm_stop() or kvmkit_vm_request_stop() on kvmkit_machine_vm()).
 * Ownership: the config's image, initrd and strings are read during
 * kvmkit_machine_create() (copied into guest memory) and may be freed after
 * it. console_fd is borrowed: kvmkit writes to it and never closes it; keep
 * it open until kvmkit_machine_destroy(). What the getters return belongs
 * to the machine until kvmkit_machine_destroy().
 */
#ifndef KVMKIT_MACHINE_H
#define KVMKIT_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include <kvmkit/vm.h>
#include <kvmkit/devices.h>
#include <kvmkit/irq.h>
#include <kvmkit/virtio.h>
#include <kvmkit/virtio_io.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whether the machine has the test device (devices.h). AUTO: yes for
 * Multiboot images (the external test suites that boot them, such as
 * kvm-unit-tests, expect it), no for ELF64 images. */
enum kvmkit_testdev_mode {
	KVMKIT_TESTDEV_AUTO = 0,
	KVMKIT_TESTDEV_ON,
	KVMKIT_TESTDEV_OFF,
};

/* A virtio-blk disk of the machine (virtio.h). */
struct kvmkit_machine_disk {
	const char *path; /* raw image */
	bool read_only;
	const char *serial; /* GET_ID; NULL: none */
};

#define KVMKIT_MACHINE_MAX_DISKS 8

/* An MMIO device a Linux guest learns of from the DSDT (virtio-mmio: hid
 * "LNRO0005"): a window below 4 GiB and an IOAPIC pin (0..23), level for
 * a device that holds its line until the guest's EOI (irqfd + resample),
 * edge otherwise. The caller registers the device itself on
 * kvmkit_vm_mmio_bus(kvmkit_machine_vm(m)) before the machine runs. */
struct kvmkit_machine_mmio_dev {
	uint64_t base;
	uint32_t size;
	uint32_t gsi;
	bool level;
	const char *hid; /* 1-8 characters, A-Z 0-9 */
};

struct kvmkit_machine_config {
	struct kvmkit_vm_config vm;
	const void *kernel; /* ELF64 image in memory */
	size_t kernel_len;
	int console_fd; /* where UART output goes; -1: kept only in memory */
	bool irqchip; /* an irqchip (x86); the UART gets IRQ 4 */
	enum kvmkit_irqchip_mode irqchip_mode; /* kernel or split (both with PIC and PIT) */
	enum kvmkit_testdev_mode testdev; /* default AUTO */
	/* Multiboot and Linux images only (an ELF64 guest with these is
	 * refused): */
	const char *cmdline; /* Multiboot: after kernel_path; Linux: the
				  * kernel's command line; NULL: none */
	const void *initrd; /* Multiboot module 0 or Linux initrd, NULL: none */
	size_t initrd_len;
	const char *initrd_path; /* module 0's string; NULL: "initrd" */
	const char *kernel_path; /* argv[0] of the command line; NULL: "kernel" */
	/* virtio-mmio devices (need the irqchip), in window order from
	 * KVMKIT_VIRTIO_MMIO_BASE: the rng first, then the disks, then the
	 * console (virtio_console below). Each gets an
	 * IOAPIC pin (arm64: an SPI, named in the device tree) from
	 * kvmkit_gsi_alloc_pin() and the trigger below. */
	bool virtio_rng;
	struct kvmkit_machine_disk disks[KVMKIT_MACHINE_MAX_DISKS];
	unsigned int ndisks;
	enum kvmkit_virtio_trigger virtio_trigger; /* default EDGE */
	/* The console is a virtio-console (after the disks; Linux:
	 * console=hvc0): console_fd gets its output and
	 * kvmkit_machine_virtio_console() takes input; the UART's output is
	 * then kept in memory only. */
	bool virtio_console;
	/* After those (virtio_io.h): virtio-net on the tap net_tap (NULL:
	 * none; net_vhost: packets moved by vhost-net), then virtio-vsock with
	 * the guest cid vsock_cid (0: none). A machine with either cannot be
	 * saved. */
	const char *net_tap;
	bool net_vhost;
	uint64_t vsock_cid;
	/* Linux: also name each virtio-mmio device on the command line
	 * ("virtio_mmio.device=SIZE@BASE:GSI", for kernels built with
	 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES), besides the ACPI DSDT. */
	bool virtio_mmio_cmdline;
	/* Linux: more MMIO devices to declare, after the machine's own (at
	 * most 256 in all). */
	const struct kvmkit_machine_mmio_dev *mmio_devs;
	unsigned int n_mmio_devs;
	/* arm64 only (elsewhere they must stay 0): the vGIC's version (0
	 * auto: GICv3, else GICv2; 2 or 3: only that one) and interrupt count
	 * (0: 256), as kvmkit_irqchip_config's gic_version and gic_nr_irqs. */
	unsigned int gic_version;
	unsigned int gic_nr_irqs;
};

struct kvmkit_machine;

void kvmkit_machine_config_init(struct kvmkit_machine_config *cfg);
int kvmkit_machine_create(const struct kvmkit_machine_config *cfg, struct kvmkit_machine **out);
/* Stops the VM if it runs, then destroys the devices and the VM. */
void kvmkit_machine_destroy(struct kvmkit_machine *m);

struct kvmkit_vm *kvmkit_machine_vm(struct kvmkit_machine *m);
struct kvmkit_uart *kvmkit_machine_uart(struct kvmkit_machine *m);
struct kvmkit_report *kvmkit_machine_report(struct kvmkit_machine *m);
/* NULL unless the config asked for an irqchip. */
struct kvmkit_irqchip *kvmkit_machine_irqchip(struct kvmkit_machine *m);
/* The machine's virtio-mmio devices, in window order (@i < count; NULL
 * past it). Firmware tables describe each from kvmkit_virtio_get_info():
 * window base and size, GSI (IOAPIC pin) and trigger. */
unsigned int kvmkit_machine_virtio_count(const struct kvmkit_machine *m);
struct kvmkit_virtio *kvmkit_machine_virtio(struct kvmkit_machine *m, unsigned int i);
/* The virtio-console, or NULL without virtio_console. */
struct kvmkit_virtio *kvmkit_machine_virtio_console(struct kvmkit_machine *m);

/* Starts the VM and waits until it stops or @timeout_ms passes (-1: no
 * limit; on timeout the VM is stopped and reason is TIMEOUT). Once per
 * machine: the VM does not start twice. A machine running already (from
 * kvmkit_machine_incoming()) is only waited for. */
int kvmkit_machine_run(struct kvmkit_machine *m, int timeout_ms, struct kvmkit_stop_info *info);

/* The devices' own state (UART registers, receive FIFO and output not yet
 * written; fw_cfg selection; report values; test device scratch) as one
 * versioned blob (malloc'ed, the caller frees it), for snapshots. Save with
 * the VM paused or stopped; restore into a machine of the same
 * configuration before it runs. A blob for other devices, of another
 * version, truncated or inconsistent is refused (KVMKIT_ERR_FORMAT). A
 * device whose state was refused may keep part of the new state only if an
 * earlier device in the table accepted its part (each device checks its own
 * bytes before changing anything). */
int kvmkit_machine_save_devices(struct kvmkit_machine *m, void **buf, size_t *len);
int kvmkit_machine_restore_devices(struct kvmkit_machine *m, const void *buf, size_t len);

/* The embedded demo guest (prints a banner, powers off with status 0): a
 * static image. */
const void *kvmkit_demo_guest(size_t *len);

#ifdef __cplusplus
}
#endif
#endif
