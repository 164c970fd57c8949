// SPDX-License-Identifier: MIT
/* A machine: VM + vCPUs + standard devices + a loaded ELF64 guest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "machine"
#include "core/internal.h"
#include "devices/devices_internal.h"
#include "acpi/acpi.h"
#include "vmm/machine_internal.h"
#include "vmm/machine_virtio.h"
#include <kvmkit/kvmkit.h>
#if defined(__aarch64__)
#include "arch/arm64/arm64_vm.h"
#endif

struct kvmkit_machine {
	struct kvmkit_vm *vm;
	struct kvmkit_uart *uart;
	struct kvmkit_line *uart_line;
	struct kvmkit_debug_exit *debug_exit;
	struct kvmkit_report *report;
	struct kvmkit_fwcfg *fwcfg;
	struct kvmkit_testdev *testdev;
	struct kvmkit_line *testdev_lines[KVMKIT_TESTDEV_IRQ_LINES];
	struct kvmk_machine_virtio virtio;
	struct kvmk_acpi_pm *acpi_pm; /* Linux guests: the FADT's registers */
	/* MMIO devices of this machine a Linux guest finds in the DSDT
	 * (kvmk_machine_declare_mmio: the virtio-mmio transports). */
	struct kvmk_acpi_mmio_dev acpi_devs[KVMK_ACPI_MAX_DEVS];
	unsigned int n_acpi_devs;
	unsigned int nr_created; /* devices[] entries created, in order */
};

/*
 * The machine's devices, created in this order and destroyed in the reverse
 * one. Each entry creates its device (registering its bus ranges), connects
 * its interrupt through a line handle from the irq API where it has one,
 * and destroys both.
 */
struct machine_device {
	const char *name;
	int (*create)(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg);
	void (*destroy)(struct kvmkit_machine *m);
	/* Saved state (NULL: none); only called for a device that exists. */
	int (*save)(struct kvmkit_machine *m, struct kvmk_blob *out);
	int (*restore)(struct kvmkit_machine *m, const uint8_t *p, size_t len);
};

/* x86: COM1's ports and IRQ 4; arm64: on MMIO, on SPI 1 (kvmkit/arm64.h). */
#if defined(__aarch64__)
#define UART_CREATE(vm, fd, out) kvmkit_uart_create_mmio(vm, KVMKIT_ARM64_UART, fd, out)
#define UART_GSI KVMKIT_ARM64_UART_GSI
#else
#define UART_CREATE(vm, fd, out) kvmkit_uart_create(vm, KVMKIT_UART_COM1, fd, out)
#define UART_GSI KVMKIT_UART_COM1_IRQ
#endif

static int uart_create(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg)
{
	struct kvmkit_irqchip *chip = kvmkit_vm_irqchip(m->vm);
	int r = UART_CREATE(m->vm, cfg->virtio_console ? -1 : cfg->console_fd, &m->uart);

	if (r || !chip)
		return r;
	r = kvmkit_line_open(chip, UART_GSI, &m->uart_line);
	return r ? r : kvmkit_uart_connect_irq(m->uart, m->uart_line);
}

static void uart_destroy(struct kvmkit_machine *m)
{
	kvmkit_uart_destroy(m->uart);
	kvmkit_line_close(m->uart_line);
}

static int uart_save(struct kvmkit_machine *m, struct kvmk_blob *out)
{
	return kvmk_uart_save(m->uart, out);
}

static int uart_restore(struct kvmkit_machine *m, const uint8_t *p, size_t len)
{
	return kvmk_uart_restore(m->uart, p, len);
}

/* The virtio devices (machine_virtio.c): created per architecture below,
 * released and saved alike. */
#if defined(__x86_64__) || defined(__aarch64__)
static void virtio_destroy(struct kvmkit_machine *m)
{
	kvmk_machine_virtio_destroy(&m->virtio);
}

static int virtio_save(struct kvmkit_machine *m, struct kvmk_blob *out)
{
	return kvmk_machine_virtio_save(&m->virtio, out);
}

static int virtio_restore(struct kvmkit_machine *m, const uint8_t *p, size_t len)
{
	return kvmk_machine_virtio_restore(&m->virtio, p, len);
}
#endif

/* Port devices: x86 only (arm64 has no port I/O). */
#if defined(__x86_64__)
static int debug_exit_create(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg)
{
	return kvmkit_debug_exit_create(m->vm, KVMKIT_DEBUG_EXIT_PORT, &m->debug_exit);
}

static void debug_exit_destroy(struct kvmkit_machine *m)
{
	kvmkit_debug_exit_destroy(m->debug_exit);
}

static int report_create(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg)
{
	return kvmkit_report_create(m->vm, KVMKIT_REPORT_PORT, &m->report);
}

static void report_destroy(struct kvmkit_machine *m)
{
	kvmkit_report_destroy(m->report);
}

static int fwcfg_create(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg)
{
	return kvmkit_fwcfg_create(m->vm, NULL, &m->fwcfg);
}

static void fwcfg_destroy(struct kvmkit_machine *m)
{
	kvmkit_fwcfg_destroy(m->fwcfg);
}

/* On for Multiboot images (external test suites expect it), off for
 * others, unless the config says. */
static int testdev_create(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg)
{
	struct kvmkit_irqchip *chip = kvmkit_vm_irqchip(m->vm);
	int r;

	if (cfg->testdev == KVMKIT_TESTDEV_OFF ||
	    (cfg->testdev == KVMKIT_TESTDEV_AUTO &&
	     !kvmkit_multiboot_detect(cfg->kernel, cfg->kernel_len)))
		return 0;
	r = kvmkit_testdev_create(m->vm, &m->testdev);
	/* Port 0x2000 + n drives GSI n, as kvm-unit-tests expect. */
	for (unsigned int n = 0; !r && chip && n < KVMKIT_TESTDEV_IRQ_LINES; n++) {
		r = kvmkit_line_open(chip, n, &m->testdev_lines[n]);
		if (!r)
			r = kvmkit_testdev_connect_irq(m->testdev, n, m->testdev_lines[n]);
	}
	return r;
}

static void testdev_destroy(struct kvmkit_machine *m)
{
	kvmkit_testdev_destroy(m->testdev);
	for (unsigned int n = 0; n < KVMKIT_TESTDEV_IRQ_LINES; n++)
		kvmkit_line_close(m->testdev_lines[n]);
}

/* Poweroff and reboot for the ACPI tables of a Linux guest. */
static int acpi_pm_create(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg)
{
	if (!cfg->kernel || !kvmkit_linux_detect(cfg->kernel, cfg->kernel_len))
		return 0;
	return kvmk_acpi_pm_create(m->vm, &m->acpi_pm);
}

static void acpi_pm_destroy(struct kvmkit_machine *m)
{
	kvmk_acpi_pm_destroy(m->acpi_pm);
}

/* The virtio devices: machine_virtio.c. */
static int virtio_create(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg)
{
	struct kvmkit_irqchip *chip = kvmkit_vm_irqchip(m->vm);
	struct kvmkit_line *sci = NULL;
	int r;

	/* Pin 9 is the SCI in the MADT (level, active high): Linux cannot
	 * register an edge device there. A line on it while the pins are
	 * handed out keeps the devices off it. */
	if (chip && kvmkit_line_open(chip, KVMK_ACPI_SCI_IRQ, &sci))
		sci = NULL;
	r = kvmk_machine_virtio_create(m->vm, cfg, &m->virtio);
	kvmkit_line_close(sci);

	/* Each transport in the DSDT of a Linux guest, with the trigger the
	 * device signals (edge: irqfd; level: irqfd + resample). */
	for (unsigned int i = 0; !r && i < m->virtio.n; i++) {
		struct kvmkit_virtio_info info;
		struct kvmk_acpi_mmio_dev a;

		kvmkit_virtio_get_info(m->virtio.dev[i], &info);
		a = (struct kvmk_acpi_mmio_dev){ info.base, (uint32_t)info.size, info.gsi,
						 info.trigger == KVMKIT_VIRTIO_IRQ_LEVEL,
						 "LNRO0005" };
		r = kvmk_machine_declare_mmio(m, &a);
	}
	return r;
}

static int report_save(struct kvmkit_machine *m, struct kvmk_blob *out)
{
	return kvmk_report_save(m->report, out);
}

static int report_restore(struct kvmkit_machine *m, const uint8_t *p, size_t len)
{
	return kvmk_report_restore(m->report, p, len);
}

static int fwcfg_save(struct kvmkit_machine *m, struct kvmk_blob *out)
{
	return kvmk_fwcfg_save(m->fwcfg, out);
}

static int fwcfg_restore(struct kvmkit_machine *m, const uint8_t *p, size_t len)
{
	return kvmk_fwcfg_restore(m->fwcfg, p, len);
}

static int testdev_save(struct kvmkit_machine *m, struct kvmk_blob *out)
{
	return m->testdev ? kvmk_testdev_save(m->testdev, out) : 0;
}

static int testdev_restore(struct kvmkit_machine *m, const uint8_t *p, size_t len)
{
	return kvmk_testdev_restore(m->testdev, p, len);
}

#endif

/* arm64: the virtio devices (machine_virtio.c), each also named in the
 * device tree the Linux boot builds: its window and SPI, edge or level as
 * the device signals it. */
#if defined(__aarch64__)
static int arm64_virtio_create(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg)
{
	struct kvmkit_virtio_info info;
	int r = kvmk_machine_virtio_create(m->vm, cfg, &m->virtio);

	for (unsigned int i = 0; !r && i < m->virtio.n; i++) {
		struct kvmkit_arm64_mmio_dev d = { "virtio,mmio" };

		kvmkit_virtio_get_info(m->virtio.dev[i], &info);
		d.base = info.base;
		d.size = info.size;
		d.gsi = info.gsi;
		d.level = info.trigger == KVMKIT_VIRTIO_IRQ_LEVEL;
		r = kvmk_arm64_fdt_add_dev(m->vm, &d);
	}
	return r;
}
#endif

unsigned int kvmkit_machine_virtio_count(const struct kvmkit_machine *m)
{
	return m->virtio.n;
}

struct kvmkit_virtio *kvmkit_machine_virtio(struct kvmkit_machine *m, unsigned int i)
{
	return i < m->virtio.n ? m->virtio.dev[i] : NULL;
}

struct kvmkit_virtio *kvmkit_machine_virtio_console(struct kvmkit_machine *m)
{
	return m->virtio.console;
}

static const struct machine_device devices[] = {
	{ "uart16550", uart_create, uart_destroy, uart_save, uart_restore },
#if defined(__x86_64__)
	{ "isa-debug-exit", debug_exit_create, debug_exit_destroy, NULL, NULL },
	{ "report", report_create, report_destroy, report_save, report_restore },
	{ "fw_cfg", fwcfg_create, fwcfg_destroy, fwcfg_save, fwcfg_restore },
	/* Before the test device, whose lines take every pin. */
	{ "virtio", virtio_create, virtio_destroy, virtio_save, virtio_restore },
	{ "testdev", testdev_create, testdev_destroy, testdev_save, testdev_restore },
	{ "acpi-pm", acpi_pm_create, acpi_pm_destroy, NULL, NULL },
#endif
#if defined(__aarch64__)
	{ "virtio", arm64_virtio_create, virtio_destroy, virtio_save, virtio_restore },
#endif
};

extern const unsigned char kvmkit_demo_guest_elf[];
extern const unsigned long kvmkit_demo_guest_elf_len;

const void *kvmkit_demo_guest(size_t *len)
{
	*len = kvmkit_demo_guest_elf_len;
	return kvmkit_demo_guest_elf;
}

/* From meson.build's project() through the generated kvmkit/version.h. */
const char *kvmkit_version(void)
{
	return KVMKIT_VERSION_STRING;
}

void kvmkit_machine_config_init(struct kvmkit_machine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	kvmkit_vm_config_init(&cfg->vm);
	cfg->console_fd = -1;
	cfg->irqchip = true;
}

/* Multiboot (an ELF32 image with a multiboot header) or ELF64; on arm64
 * also a Linux Image, which takes the command line and initrd. */
static int check_guest(const struct kvmkit_machine_config *cfg)
{
#if defined(__aarch64__)
	if (kvmkit_arm64_image_detect(cfg->kernel, cfg->kernel_len))
		return 0; /* checked against the VM's RAM at boot */
	if (cfg->initrd || (cfg->cmdline && cfg->cmdline[0]))
		return kvmk_err_param("kvmkit_machine_create", "cmdline",
				      "a command line or initrd needs a Linux Image",
				      "the kernel is not an arm64 Image");
#else
	if (kvmkit_linux_detect(cfg->kernel, cfg->kernel_len))
		return kvmk_machine_check_linux(cfg);
#endif
	if (kvmkit_multiboot_detect(cfg->kernel, cfg->kernel_len))
		return kvmkit_boot_check_multiboot(cfg->kernel, cfg->kernel_len, cfg->vm.mem_size,
						   cfg->initrd ? cfg->initrd_len : 0);
	if (cfg->kernel_len >= 16 && memcmp(cfg->kernel, "\177ELF", 4))
		return kvmk_err_format(
			"kvmkit_machine_create",
			"not a kernel: not an ELF file (vmlinux, Multiboot, ELF64) or a bzImage");
	if (cfg->initrd || (cfg->cmdline && cfg->cmdline[0]))
		return kvmk_err_param(
			"kvmkit_machine_create", "cmdline",
			"a command line or initrd needs a multiboot image or Linux",
			"the kernel is not an ELF32 multiboot image, bzImage or PVH vmlinux");
	return kvmkit_boot_check_elf64(cfg->kernel, cfg->kernel_len, cfg->vm.mem_size);
}

/* Multiboot command line: "<kernel path> <append>", argv[0] first as QEMU
 * passes it. */
int kvmk_machine_declare_mmio(struct kvmkit_machine *m, const struct kvmk_acpi_mmio_dev *dev)
{
	if (m->n_acpi_devs == KVMK_ACPI_MAX_DEVS)
		return kvmk_err_resource("kvmk_machine_declare_mmio", ENOSPC, "%d devices",
					 KVMK_ACPI_MAX_DEVS);
	m->acpi_devs[m->n_acpi_devs++] = *dev;
	return 0;
}

static int boot_guest(struct kvmkit_machine *m, const struct kvmkit_machine_config *cfg)
{
	struct kvmkit_vm *vm = m->vm;
	struct kvmkit_multiboot_module mod = { cfg->initrd, cfg->initrd_len,
					       cfg->initrd_path ? cfg->initrd_path : "initrd" };
	const char *argv0 = cfg->kernel_path ? cfg->kernel_path : "kernel";
	const char *append = cfg->cmdline ? cfg->cmdline : "";
	char *line;
	int r;

#if defined(__aarch64__)
	if (kvmkit_arm64_image_detect(cfg->kernel, cfg->kernel_len))
		return kvmkit_boot_arm64_linux(vm, cfg->kernel, cfg->kernel_len, cfg->initrd,
					       cfg->initrd_len, cfg->cmdline);
#else
	if (kvmkit_linux_detect(cfg->kernel, cfg->kernel_len)) {
		if (cfg->n_mmio_devs && !cfg->mmio_devs)
			return kvmk_err_param("kvmkit_machine_create", "mmio_devs",
					      "NULL with a count", "%u", cfg->n_mmio_devs);
		for (unsigned int i = 0; i < cfg->n_mmio_devs; i++) {
			const struct kvmkit_machine_mmio_dev *d = &cfg->mmio_devs[i];
			struct kvmk_acpi_mmio_dev a = { d->base, d->size, d->gsi, d->level,
							d->hid };

			r = kvmk_machine_declare_mmio(m, &a);
			if (r)
				return r;
		}
		return kvmk_machine_boot_linux(vm, cfg, m->acpi_devs, m->n_acpi_devs);
	}
#endif
	if (!kvmkit_multiboot_detect(cfg->kernel, cfg->kernel_len))
		return kvmkit_boot_elf64(vm, cfg->kernel, cfg->kernel_len);
	if (asprintf(&line, "%s%s%s", argv0, append[0] ? " " : "", append) < 0)
		return kvmk_err_resource("kvmkit_machine_create", ENOMEM, "command line");
	r = kvmkit_boot_multiboot_modules(vm, cfg->kernel, cfg->kernel_len, line, &mod,
					  cfg->initrd ? 1 : 0);
	free(line);
	return r;
}

/* Everything but the guest image (boot false: a restore's machine). */
static int create(const struct kvmkit_machine_config *cfg, bool boot, struct kvmkit_machine **out)
{
	struct kvmkit_machine *m;
	int r;

	if (boot && !cfg->kernel)
		return kvmk_err_param("kvmkit_machine_create", "kernel", "no guest image",
				      "(none)");
	if ((unsigned int)cfg->testdev > KVMKIT_TESTDEV_OFF)
		return kvmk_err_param("kvmkit_machine_create", "testdev", "not AUTO, ON or OFF",
				      "%d", (int)cfg->testdev);
	r = boot ? check_guest(cfg) : 0;
	if (r)
		return r;
#if !defined(__aarch64__)
	if (cfg->gic_version || cfg->gic_nr_irqs)
		return kvmk_err_param("kvmkit_machine_create", "gic_version",
				      "the vGIC options are arm64-only", "%u/%u", cfg->gic_version,
				      cfg->gic_nr_irqs);
#endif
	m = calloc(1, sizeof(*m));
	if (!m)
		return kvmk_err_resource("kvmkit_machine_create", ENOMEM, NULL);
	r = kvmkit_vm_create(&cfg->vm, &m->vm);
	if (r)
		goto fail;
	/* The irqchip must exist before any vCPU (api.rst 4.24). */
	if (cfg->irqchip) {
		struct kvmkit_irqchip_config icfg;

		kvmkit_irqchip_config_init(&icfg);
		icfg.mode = cfg->irqchip_mode;
		icfg.gic_version = cfg->gic_version;
		if (cfg->gic_nr_irqs)
			icfg.gic_nr_irqs = cfg->gic_nr_irqs;
		r = kvmkit_irqchip_create(m->vm, &icfg, NULL);
		if (r)
			goto fail;
	}
	for (unsigned int i = 0; i < cfg->vm.vcpus; i++) {
		r = kvmkit_vm_create_vcpu(m->vm, i, NULL);
		if (r)
			goto fail;
	}
	for (unsigned int i = 0; i < KVMKIT_ARRAY_SIZE(devices); i++) {
		r = devices[i].create(m, cfg);
		m->nr_created = i + 1; /* a half-created device is released too */
		if (r) {
			kvmk_debug("device %s: %s", devices[i].name, kvmkit_strerror());
			goto fail;
		}
	}
	r = boot ? boot_guest(m, cfg) : 0;
	if (r)
		goto fail;
	*out = m;
	return 0;
fail:
	kvmkit_machine_destroy(m);
	return r;
}

int kvmkit_machine_create(const struct kvmkit_machine_config *cfg, struct kvmkit_machine **out)
{
	return create(cfg, true, out);
}

int kvmk_machine_create_bare(const struct kvmkit_machine_config *cfg, struct kvmkit_machine **out)
{
	return create(cfg, false, out);
}

bool kvmk_machine_has_testdev(const struct kvmkit_machine *m)
{
	return m->testdev != NULL;
}

void kvmkit_machine_destroy(struct kvmkit_machine *m)
{
	struct kvmkit_error saved;

	if (!m)
		return;
	kvmk_err_save(&saved);
	/* vCPUs must be stopped before the devices they call go away; from
	 * one of them the VM cannot stop (-EDEADLK): destroy nothing. */
	if (m->vm && kvmkit_vm_state(m->vm) != KVMKIT_VM_CREATED &&
	    kvmkit_vm_stop(m->vm) == -EDEADLK) {
		kvmk_error("kvmkit_machine_destroy called from a vCPU thread: refused");
		return;
	}
	while (m->nr_created)
		devices[--m->nr_created].destroy(m);
	kvmkit_vm_destroy(m->vm);
	free(m);
	kvmk_err_restore(&saved);
}

/* ---- devices' saved state ---------------------------------------------------
 * u32 magic "KDEV", u32 version, u32 count N, then N x { u32 name length,
 * name, u32 state length, state } for the devices that exist and have
 * state, in table order. Restore wants the same devices in the same order. */
#define DEV_MAGIC 0x5645444bu
#define DEV_VERSION 1u

static bool has_state(const struct kvmkit_machine *m, unsigned int i)
{
	return devices[i].save && i < m->nr_created &&
	       (strcmp(devices[i].name, "testdev") || m->testdev) &&
	       (strcmp(devices[i].name, "virtio") || m->virtio.n);
}

int kvmkit_machine_save_devices(struct kvmkit_machine *m, void **buf, size_t *len)
{
	struct kvmk_blob b = { 0 }, d = { 0 };
	uint32_t n = 0;
	int r;

	for (unsigned int i = 0; i < KVMKIT_ARRAY_SIZE(devices); i++)
		n += has_state(m, i);
	r = kvmk_blob_put_u32(&b, DEV_MAGIC);
	if (!r)
		r = kvmk_blob_put_u32(&b, DEV_VERSION);
	if (!r)
		r = kvmk_blob_put_u32(&b, n);
	for (unsigned int i = 0; !r && i < KVMKIT_ARRAY_SIZE(devices); i++) {
		if (!has_state(m, i))
			continue;
		d.len = 0;
		r = devices[i].save(m, &d);
		if (!r)
			r = kvmk_blob_put_u32(&b, (uint32_t)strlen(devices[i].name));
		if (!r)
			r = kvmk_blob_put(&b, devices[i].name, strlen(devices[i].name));
		if (!r)
			r = kvmk_blob_put_u32(&b, (uint32_t)d.len);
		if (!r && d.len)
			r = kvmk_blob_put(&b, d.data, d.len);
	}
	kvmk_blob_free(&d);
	if (r) {
		kvmk_blob_free(&b);
		return r;
	}
	*buf = b.data;
	*len = b.len;
	return 0;
}

int kvmkit_machine_restore_devices(struct kvmkit_machine *m, const void *buf, size_t len)
{
	struct kvmk_reader rd = { buf, len, "kvmkit_machine_restore_devices" };
	struct {
		const uint8_t *p;
		uint32_t len;
	} st[KVMKIT_ARRAY_SIZE(devices)] = { { 0 } };
	uint32_t magic, version, n, want = 0;
	int r = kvmk_reader_u32(&rd, &magic, "magic");

	if (!r && magic != DEV_MAGIC)
		r = kvmk_err_format(rd.op, "not a device state (magic 0x%08x)", magic);
	if (!r)
		r = kvmk_reader_u32(&rd, &version, "version");
	if (!r && version != DEV_VERSION)
		r = kvmk_err_format(rd.op, "device state version %u, this kvmkit reads %u", version,
				    DEV_VERSION);
	if (!r)
		r = kvmk_reader_u32(&rd, &n, "device count");
	for (unsigned int i = 0; i < KVMKIT_ARRAY_SIZE(devices); i++)
		want += has_state(m, i);
	if (!r && n != want)
		r = kvmk_err_format(rd.op, "%u devices saved, this machine has %u", n, want);
	/* Parse it all first: a state is applied only if every part is there. */
	for (unsigned int i = 0; !r && i < KVMKIT_ARRAY_SIZE(devices); i++) {
		uint32_t nl;
		char name[32];

		if (!has_state(m, i))
			continue;
		r = kvmk_reader_u32(&rd, &nl, "device name length");
		if (!r && nl >= sizeof(name))
			r = kvmk_err_format(rd.op, "device name of %u bytes", nl);
		if (!r)
			r = kvmk_reader_get(&rd, name, nl, "device name");
		if (!r) {
			name[nl] = 0;
			if (strcmp(name, devices[i].name))
				r = kvmk_err_format(rd.op,
						    "device '%s' where this machine has '%s'", name,
						    devices[i].name);
		}
		if (!r)
			r = kvmk_reader_u32(&rd, &st[i].len, "device state length");
		if (!r && st[i].len > rd.left)
			r = kvmk_err_format(rd.op, "device '%s': state truncated", devices[i].name);
		if (!r) {
			st[i].p = rd.p;
			rd.p += st[i].len;
			rd.left -= st[i].len;
		}
	}
	if (!r && rd.left)
		r = kvmk_err_format(rd.op, "%zu bytes past the device states", rd.left);
	for (unsigned int i = 0; !r && i < KVMKIT_ARRAY_SIZE(devices); i++)
		if (has_state(m, i))
			r = devices[i].restore(m, st[i].p, st[i].len);
	return r;
}

struct kvmkit_vm *kvmkit_machine_vm(struct kvmkit_machine *m)
{
	return m->vm;
}

struct kvmkit_uart *kvmkit_machine_uart(struct kvmkit_machine *m)
{
	return m->uart;
}

struct kvmkit_report *kvmkit_machine_report(struct kvmkit_machine *m)
{
	return m->report;
}

struct kvmkit_irqchip *kvmkit_machine_irqchip(struct kvmkit_machine *m)
{
	return kvmkit_vm_irqchip(m->vm);
}

int kvmkit_machine_run(struct kvmkit_machine *m, int timeout_ms, struct kvmkit_stop_info *info)
{
	struct kvmkit_stop_info local;
	int r;

	if (!info)
		info = &local;
	/* A machine kvmkit_machine_incoming() returned runs already. */
	r = kvmkit_vm_state(m->vm) == KVMKIT_VM_RUNNING ? 0 : kvmkit_vm_start(m->vm);
	if (r)
		return r;
	r = kvmkit_vm_wait(m->vm, timeout_ms, info);
	if (r == -ETIMEDOUT) {
		kvmkit_vm_stop(m->vm);
		info->reason = KVMKIT_STOP_TIMEOUT;
		snprintf(info->detail, sizeof(info->detail), "no exit within %d ms", timeout_ms);
		return 0;
	}
	return r;
}
