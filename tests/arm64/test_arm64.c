// SPDX-License-Identifier: MIT
/*
 * arm64 guest tests, run inside the emulated arm64 host (tests/hosts) in
 * one process, one case after the other: the vCPUs and PSCI, the vGIC
 * (created version, SPIs through KVM_IRQ_LINE and irqfds, level irqfds
 * with resample, irqfds bound before the vGIC's init), and the refusals.
 * Every interrupt count is what the guest's handler counted (arm64_abi.h).
 *
 * The platform cases are here, the interrupt cases in cases_irq.c, the
 * saved-state cases in cases_state.c, the lab and the small harness (no
 * static libcmocka in Debian) in lab.c.
 *
 * usage: test-arm64 [-v] [--expect-gic 2|3] [--only NAME] [GUEST_DIR]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvmkit/kvmkit.h>
#if KVMK_HAVE_LIBFDT
#include <libfdt.h>
#endif

#include "lab.h"

int expect_gic;
static int failures;

/* ---- cases ---------------------------------------------------------------- */

/* The machine (vGIC, UART on MMIO) boots hello.elf: its line on the UART,
 * then PSCI SYSTEM_OFF: a guest exit with status 0. */
static void t_hello(void)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_stop_info info;
	char out[512];
	void *img = NULL;
	size_t len, n;

	CHECK(read_guest("hello", &img, &len) == 0, "%s", kvmkit_strerror());
	kvmkit_machine_config_init(&cfg);
	cfg.vm.mem_size = 64 << 20;
	cfg.kernel = img;
	cfg.kernel_len = len;
	CHECK(kvmkit_machine_create(&cfg, &m) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_machine_run(m, WAIT_MS, &info) == 0, "%s", kvmkit_strerror());
	n = kvmkit_uart_output(kvmkit_machine_uart(m), out, sizeof(out) - 1);
	out[n] = 0;
	CHECK(info.reason == KVMKIT_STOP_GUEST_EXIT && info.status == 0, "stop %s: %s (output %s)",
	      kvmkit_stop_reason_name(info.reason), info.detail, out);
	CHECK(strstr(out, "hello from vCPU 0 of 1, PSCI 0x"), "output: %s", out);
out:
	kvmkit_machine_destroy(m);
	free(img);
}

/* PSCI SYSTEM_RESET stops the VM as a guest reset. */
static void t_psci_reset(void)
{
	struct kvmkit_stop_info info;
	struct lab l;
	uint64_t v = 0;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	/* KVM's PSCI is 0.2 or later (major in bits 31:16). */
	CHECK(lab_cmd(&l, 0, A64_CMD_PSCI_VERSION, 0, 0, 0, &v) == 0, "no answer");
	CHECK((v >> 16) >= 1 || (v & 0xffff) >= 2, "PSCI version 0x%llx", (unsigned long long)v);
	lab_cmd(&l, 0, A64_CMD_SYSTEM_RESET, 0, 0, 0, NULL);
	CHECK(kvmkit_vm_wait(l.vm, WAIT_MS, &info) == 0, "%s", kvmkit_strerror());
	CHECK(info.reason == KVMKIT_STOP_GUEST_RESET, "stop %s: %s",
	      kvmkit_stop_reason_name(info.reason), info.detail);
out:
	lab_free(&l);
}

/* A guest access KVM cannot hand to userspace (a load pair from MMIO: no
 * syndrome) stops the VM, saying where; kvmkit itself
 * goes on (the next case runs in the same process). Hosts without
 * KVM_CAP_ARM_NISV_TO_USER: KVM_RUN's ENOSYS, an internal error. */
static void t_bad_mmio(void)
{
	struct kvmkit_stop_info info;
	struct lab l;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	lab_cmd(&l, 0, A64_CMD_BAD_MMIO, 0, 0, 0, NULL);
	CHECK(kvmkit_vm_wait(l.vm, WAIT_MS, &info) == 0, "%s", kvmkit_strerror());
	if (kvmkit_vm_check_cap(l.vm, KVM_CAP_ARM_NISV_TO_USER) > 0)
		CHECK(info.reason == KVMKIT_STOP_UNHANDLED_EXIT &&
			      strstr(info.detail, "MMIO access at 0x9000000"),
		      "stop %s: %s", kvmkit_stop_reason_name(info.reason), info.detail);
	else
		CHECK(info.reason == KVMKIT_STOP_INTERNAL_ERROR, "stop %s: %s",
		      kvmkit_stop_reason_name(info.reason), info.detail);
	printf("  %s\n", info.detail);
out:
	lab_free(&l);
}

/* The vGIC version created, and what the guest's distributor says. */
static void t_gic_version(void)
{
	struct lab l;
	uint64_t typer = 0;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	printf("  created GICv%d\n", l.gic);
	CHECK(!expect_gic || l.gic == expect_gic, "GICv%d created, GICv%d expected", l.gic,
	      expect_gic);
	/* GICD_TYPER.ITLinesNumber: (256 / 32) - 1 for the default 256. */
	CHECK(lab_cmd(&l, 0, A64_CMD_GICD_READ, 0x4, 0, 0, &typer) == 0, "no answer");
	CHECK((typer & 0x1f) == 7, "GICD_TYPER 0x%llx", (unsigned long long)typer);
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
}

/* vCPU 1 starts powered off; vCPU 0 starts it with PSCI CPU_ON; its MPIDR
 * is the one kvmkit reports; CPU_OFF stops it (AFFINITY_INFO: off) and
 * CPU_ON brings it back; an SPI routed to it is taken there only. */
static void t_smp_psci(void)
{
	struct kvmkit_vcpu *v1;
	struct lab l;
	uint64_t r = 1, mpidr = 0, aff;
	uint32_t intid;
	int gsi;

	CHECK(lab_start(&l, 2, NULL, NULL, NULL) == 0, "lab");
	v1 = kvmkit_vm_vcpu(l.vm, 1);
	CHECK(*mbox(&l, 1, A64_MBOX_ONLINE) == 0, "vCPU 1 ran before CPU_ON");
	aff = kvmkit_vcpu_mpidr(v1) & KVMKIT_ARM64_MPIDR_AFF_MASK;
	CHECK(aff == 1, "vCPU 1's affinity 0x%llx", (unsigned long long)aff);
	CHECK(lab_cmd(&l, 0, A64_CMD_CPU_ON, aff, 1, 0, &r) == 0, "no answer");
	CHECK(r == 0, "CPU_ON returned %lld", (long long)r);
	CHECK(wait_u64(mbox(&l, 1, A64_MBOX_ONLINE), A64_ONLINE_MAGIC) == 0, "vCPU 1 never ran");
	CHECK(lab_cmd(&l, 1, A64_CMD_MPIDR, 0, 0, 0, &mpidr) == 0, "no answer");
	CHECK(mpidr == kvmkit_vcpu_mpidr(v1), "guest MPIDR 0x%llx, kvmkit 0x%llx",
	      (unsigned long long)mpidr, (unsigned long long)kvmkit_vcpu_mpidr(v1));
	/* PSCI: ALREADY_ON (-4) for a running vCPU. */
	r = 1;
	CHECK(lab_cmd(&l, 0, A64_CMD_CPU_ON, aff, 1, 0, &r) == 0, "no answer");
	CHECK((int64_t)r == -4, "second CPU_ON returned %lld", (long long)r);
	/* CPU_OFF: AFFINITY_INFO says OFF (1); CPU_ON brings it back. */
	CHECK(lab_cmd(&l, 0, A64_CMD_AFFINITY_INFO, aff, 0, 0, &r) == 0 && r == 0, "on: %lld",
	      (long long)r);
	*mbox(&l, 1, A64_MBOX_ONLINE) = 0;
	lab_cmd(&l, 1, A64_CMD_CPU_OFF, 0, 0, 0, NULL);
	for (uint64_t end = now_ms() + WAIT_MS; r != 1 && now_ms() < end; usleep(1000))
		CHECK(lab_cmd(&l, 0, A64_CMD_AFFINITY_INFO, aff, 0, 0, &r) == 0, "no answer");
	CHECK(r == 1, "AFFINITY_INFO after CPU_OFF: %lld", (long long)r);
	CHECK(lab_cmd(&l, 0, A64_CMD_CPU_ON, aff, 1, 0, &r) == 0 && r == 0, "CPU_ON again: %lld",
	      (long long)r);
	CHECK(wait_u64(mbox(&l, 1, A64_MBOX_ONLINE), A64_ONLINE_MAGIC) == 0,
	      "vCPU 1 did not come back");
	CHECK(lab_cmd(&l, 1, A64_CMD_MPIDR, 0, 0, 0, &mpidr) == 0, "no answer after CPU_ON");
	CHECK(lab_cmd(&l, 1, A64_CMD_GIC_INIT, (uint64_t)l.gic, 0, 0, NULL) == 0, "gic init 1");
	gsi = kvmkit_gsi_alloc_line(l.chip);
	intid = (uint32_t)gsi + KVMKIT_ARM64_SPI_BASE;
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(&l, 1), NULL) == 0, "spi");
	CHECK(kvmkit_irq_pulse(l.chip, (uint32_t)gsi, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(wait_count(&l, 1, intid, 1) == 0, "vCPU 1 took nothing");
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 1, intid) == 1 && count_of(&l, 0, intid) == 0, "counts %u/%u",
	      count_of(&l, 0, intid), count_of(&l, 1, intid));
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
}

/* A forced version: the host's own is created; the other one, which
 * neither emulated host has (QEMU's GICv3 has no GICv2 compatibility), is
 * refused as unsupported. Needs --expect-gic. */
static void t_gic_forced(void)
{
	struct kvmkit_irqchip_config icfg;
	struct kvmkit_vm_config cfg;
	struct kvmkit_irqchip *chip;
	struct kvmkit_vm *vm = NULL;
	int r;

	if (!expect_gic) {
		printf("  (no --expect-gic: nothing to compare)\n");
		return;
	}
	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 16 << 20;
	kvmkit_irqchip_config_init(&icfg);
	icfg.gic_version = expect_gic == 3 ? KVMKIT_GIC_V2 : KVMKIT_GIC_V3;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	r = kvmkit_irqchip_create(vm, &icfg, &chip);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_UNSUPPORTED, "GICv%u: %d %s",
	      icfg.gic_version, r, kvmkit_strerror());
	printf("  forced GICv%u refused: %s\n", icfg.gic_version, kvmkit_strerror());
	kvmkit_vm_destroy(vm);
	vm = NULL;
	icfg.gic_version = (unsigned int)expect_gic;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_create(vm, &icfg, &chip) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_gic_version(chip) == expect_gic, "GICv%d",
	      kvmkit_irqchip_gic_version(chip));
out:
	kvmkit_vm_destroy(vm);
}

/* The device tree of a live VM: its vCPUs' affinities, its vGIC version.
 * (tests/unit/test_arm64_fdt.c has dtc decompile the whole tree.) */
static void t_fdt(void)
{
#if KVMK_HAVE_LIBFDT
	struct kvmkit_arm64_platform p;
	const fdt32_t *reg;
	struct lab l;
	void *dtb = NULL;
	size_t len;
	int node, n;

	CHECK(lab_start(&l, 2, NULL, NULL, NULL) == 0, "lab");
	CHECK(kvmkit_arm64_platform_of(l.vm, &p) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_arm64_fdt_build(&p, &dtb, &len) == 0, "%s", kvmkit_strerror());
	CHECK(fdt_check_header(dtb) == 0 && fdt_totalsize(dtb) == len, "bad blob");
	node = fdt_path_offset(dtb, "/cpus/cpu@1");
	CHECK(node >= 0, "no /cpus/cpu@1: %s", fdt_strerror(node));
	reg = fdt_getprop(dtb, node, "reg", &n);
	CHECK(reg && n == 4 &&
		      fdt32_to_cpu(*reg) == (kvmkit_vcpu_mpidr(kvmkit_vm_vcpu(l.vm, 1)) &
					     KVMKIT_ARM64_MPIDR_AFF_MASK),
	      "cpu@1 reg");
	node = fdt_path_offset(dtb, "/intc@8000000/msi-controller@8080000");
	CHECK((node >= 0) == kvmkit_irqchip_has_its(l.chip), "ITS node %d", node);
	node = fdt_path_offset(dtb, "/intc@8000000");
	CHECK(node >= 0 && fdt_node_check_compatible(dtb, node,
						     l.gic == 3 ? "arm,gic-v3" :
								  "arm,cortex-a15-gic") == 0,
	      "GIC node for GICv%d", l.gic);
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	free(dtb);
	lab_free(&l);
#else
	printf("  (built without libfdt)\n");
#endif
}

/* A 64-byte arm64 Image header (booting.rst) followed by @len - 64 bytes. */
static uint8_t *fake_image(size_t len, uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	uint8_t *b = calloc(1, len);

	if (!b)
		return NULL;
	memcpy(b + 8, &text_offset, 8);
	memcpy(b + 16, &image_size, 8);
	memcpy(b + 24, &flags, 8);
	memcpy(b + 0x38, "ARM\x64", 4);
	return b;
}

/* The Linux loader checks the image and the room before writing. */
static void t_linux_refusals(void)
{
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm = NULL;
	uint8_t *img = NULL;
	int r;

	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 16 << 20;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_create(vm, NULL, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vm_create_vcpu(vm, 0, NULL) == 0, "%s", kvmkit_strerror());
	img = fake_image(4096, 0, 8192, 2 /* LE, 4K pages */);
	CHECK(img, "alloc");
	CHECK(kvmkit_arm64_image_detect(img, 4096) && !kvmkit_arm64_image_detect(img, 63),
	      "detect");
	r = kvmkit_boot_arm64_linux(vm, img, 63, NULL, 0, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT, "truncated: %d", r);
	img[0x38] = 'X';
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT, "bad magic: %d", r);
	free(img);
	img = fake_image(4096, 0, 8192, 1 /* big-endian */);
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && strstr(kvmkit_strerror(), "big-endian"), "BE: %s", kvmkit_strerror());
	free(img);
	img = fake_image(4096, 0, 8192, 3 << 1 /* 64K pages */);
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && strstr(kvmkit_strerror(), "64K"), "64K: %s", kvmkit_strerror());
	free(img);
	img = fake_image(4096, 0, 1ull << 40, 2); /* image_size past RAM */
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT, "huge: %d", r);
	free(img);
	img = fake_image(4096, 0x1001, 8192, 2); /* unaligned text_offset */
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT, "offset: %d", r);
	free(img);
	/* An initrd that leaves no room below the device tree's 2 MiB. */
	img = fake_image(4096, 0, 8192, 2);
	r = kvmkit_boot_arm64_linux(vm, img, 4096, img, 15 << 20, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_PARAM &&
		      strstr(kvmkit_strerror(), "initrd"),
	      "initrd: %d %s", r, kvmkit_strerror());
	/* And one that fits: loaded, vCPU 0 at the image, X0 at the DTB
	 * (which needs libfdt: without it the boot says so). */
	r = kvmkit_boot_arm64_linux(vm, img, 4096, img, 4096, "console=ttyS0");
	CHECK(KVMK_HAVE_LIBFDT ? r == 0 : r == -ENOTSUP, "%d %s", r, kvmkit_strerror());
out:
	free(img);
	kvmkit_vm_destroy(vm);
}

/* What kvmkit refuses, with the error it records. */
static void t_refusals(void)
{
	struct kvmkit_irqchip_config icfg;
	struct kvmkit_vm_config cfg;
	struct kvmkit_irqchip *chip;
	struct kvmkit_vm *vm = NULL;
	int r;

	kvmkit_vm_config_init(&cfg);
	cfg.vcpus = 2;
	cfg.mem_size = 16 << 20;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	kvmkit_irqchip_config_init(&icfg);
	icfg.gic_nr_irqs = 100;
	r = kvmkit_irqchip_create(vm, &icfg, &chip);
	CHECK(r == -EINVAL && kvmkit_last_error()->kind == KVMKIT_ERR_PARAM &&
		      strstr(kvmkit_strerror(), "gic_nr_irqs"),
	      "nr_irqs 100: %d %s", r, kvmkit_strerror());
	icfg.gic_nr_irqs = 1024; /* the docs' maximum, which KVM refuses */
	CHECK(kvmkit_irqchip_create(vm, &icfg, &chip) == -EINVAL &&
		      strstr(kvmkit_strerror(), "992"),
	      "nr_irqs 1024: %s", kvmkit_strerror());
	icfg.gic_nr_irqs = 32;
	CHECK(kvmkit_irqchip_create(vm, &icfg, &chip) == -EINVAL, "nr_irqs 32 accepted");
	icfg.gic_nr_irqs = 256;
	icfg.gic_version = 4;
	CHECK(kvmkit_irqchip_create(vm, &icfg, &chip) == -EINVAL, "version 4 accepted");
	kvmkit_vm_destroy(vm);
	vm = NULL;

	/* A GICv2 serves 8 vCPUs at most. A GICv2-only host says so itself
	 * (KVM_CAP_MAX_VCPUS is 8 there): then kvmkit_vm_create refuses. */
	cfg.vcpus = 9;
	if (kvmkit_vm_create(&cfg, &vm) == 0) {
		icfg.gic_version = KVMKIT_GIC_V2;
		r = kvmkit_irqchip_create(vm, &icfg, &chip);
		CHECK(r == -EINVAL && strstr(kvmkit_strerror(), "8 vCPUs"),
		      "v2 with 9 vCPUs: %d %s", r, kvmkit_strerror());
		kvmkit_vm_destroy(vm);
		vm = NULL;
	} else {
		CHECK(strstr(kvmkit_strerror(), "KVM_CAP_MAX_VCPUS"), "%s", kvmkit_strerror());
	}

	/* Before every vCPU exists the vGIC is not initialised: a line is
	 * refused (an irqfd is queued instead, see the irqfd case). */
	cfg.vcpus = 2;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_create(vm, NULL, &chip) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vm_create_vcpu(vm, 0, NULL) == 0, "%s", kvmkit_strerror());
	r = kvmkit_irq_line(chip, 16, true, NULL);
	CHECK(r == -EBUSY && kvmkit_last_error()->kind == KVMKIT_ERR_STATE,
	      "line before init: %d %s", r, kvmkit_strerror());
	CHECK(kvmkit_vm_create_vcpu(vm, 1, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irq_line(chip, 16, true, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irq_line(chip, 16, false, NULL) == 0, "%s", kvmkit_strerror());
	/* GIC routes: chip 0 only, pins below the SPIs. */
	CHECK(kvmkit_irq_route_irqchip(chip, 40, 1, 3) == -EINVAL, "irqchip 1 accepted");
	CHECK(kvmkit_irq_route_irqchip(chip, 40, 0, 224) == -EINVAL, "pin 224 accepted");
out:
	kvmkit_vm_destroy(vm);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "hello", t_hello },
	{ "psci_reset", t_psci_reset },
	{ "bad_mmio", t_bad_mmio },
	{ "gic_version", t_gic_version },
	{ "gic_forced", t_gic_forced },
	{ "spi_line_edge", t_spi_line_edge },
	{ "spi_masked", t_spi_masked },
	{ "virtio_rng", t_virtio_rng },
	{ "spi_irqfd_edge_early", t_spi_irqfd_edge_early },
	{ "spi_irqfd_level_resample", t_spi_irqfd_level_resample },
	{ "routes_before_init", t_routes_before_init },
	{ "smp_psci", t_smp_psci },
	{ "spi_reroute_irqfd", t_spi_reroute_irqfd },
	{ "nr_irqs", t_nr_irqs },
	{ "ppi_line", t_ppi_line },
	{ "sgi", t_sgi },
	{ "vtimer", t_vtimer },
	{ "its_msi", t_its_msi },
	{ "fdt", t_fdt },
	{ "vcpu_state", t_vcpu_state },
	{ "gic_state", t_gic_state },
	{ "machine_snapshot", t_machine_snapshot },
	{ "linux_refusals", t_linux_refusals },
	{ "refusals", t_refusals },
};

int main(int argc, char **argv)
{
	const char *only = NULL;
	unsigned int ran = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--expect-gic") && i + 1 < argc)
			expect_gic = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else if (argv[i][0] != '-')
			guest_dir = argv[i];
		else {
			fprintf(stderr,
				"usage: %s [-v] [--expect-gic 2|3] [--only NAME] [GUEST_DIR]\n",
				argv[0]);
			return 2;
		}
	}
	alarm(240); /* a hang anywhere fails the binary, never the suite's timeout */
	if (!kvmkit_kvm_available()) {
		printf("%s: no /dev/kvm\n", getenv("KVMKIT_REQUIRE_KVM") ? "FAILED" : "skipped");
		return getenv("KVMKIT_REQUIRE_KVM") ? 1 : 77;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t t0;

		if (only && strcmp(only, cases[i].name))
			continue;
		fail_msg[0] = 0;
		t0 = now_ms();
		cases[i].fn();
		ran++;
		if (fail_msg[0]) {
			failures++;
			printf("FAIL %s: %s\n", cases[i].name, fail_msg);
		} else {
			printf("ok   %s (%llu ms)\n", cases[i].name,
			       (unsigned long long)(now_ms() - t0));
		}
		fflush(stdout);
	}
	printf("arm64: %u run, %d failed\n", ran, failures);
	return failures || !ran ? 1 : 0;
}
