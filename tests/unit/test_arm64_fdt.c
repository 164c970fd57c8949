// SPDX-License-Identifier: MIT
/*
 * The arm64 device tree (src/boot/arm64_fdt.c), decompiled by dtc and
 * checked line by line: memory, cpus with psci, psci over hvc, the GIC
 * (v3 and v2), the timer's PPIs, the UART's level SPI, /chosen. dtc must
 * also have nothing to warn about. Then the descriptions it refuses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <libfdt.h>

#include <kvmkit/kvmkit.h>

/* dtc's output (stdout and stderr) for @dtb; malloc'ed. */
static char *decompile(const void *dtb, size_t len)
{
	char path[] = "/tmp/kvmkit-fdt-XXXXXX";
	char cmd[256];
	size_t cap = 1 << 16, n = 0;
	char *out = malloc(cap);
	int fd = mkstemp(path);
	FILE *p;

	assert_non_null(out);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, dtb, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s -I dtb -O dts %s 2>&1", DTC, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n < cap - 1) {
		size_t r = fread(out + n, 1, cap - 1 - n, p);

		if (!r)
			break;
		n += r;
	}
	out[n] = 0;
	assert_int_equal(pclose(p), 0);
	unlink(path);
	return out;
}

static void platform(struct kvmkit_arm64_platform *p, unsigned int gic, unsigned int vcpus,
		     const uint64_t *mpidr)
{
	memset(p, 0, sizeof(*p));
	p->vcpus = vcpus;
	p->mpidr = mpidr;
	p->mem_base = KVMKIT_ARM64_RAM_BASE;
	p->mem_size = 256 << 20;
	p->gic_version = gic;
	p->uart_base = KVMKIT_ARM64_UART;
	p->uart_gsi = KVMKIT_ARM64_UART_GSI;
}

#define HAS(s, sub)                                                 \
	do {                                                        \
		if (!strstr(s, sub))                                \
			fail_msg("missing \"%s\" in:\n%s", sub, s); \
	} while (0)

static void test_gicv3_two_cpus(void **state)
{
	const uint64_t mpidr[2] = { 0x80000000, 0x80000001 };
	struct kvmkit_arm64_platform p;
	void *dtb;
	size_t len;
	char *dts;

	static const struct kvmkit_arm64_mmio_dev devs[2] = {
		{ "virtio,mmio", 0x0a000000, 0x200, 16, false },
		{ "virtio,mmio", 0x0a000200, 0x200, 17, true },
	};

	platform(&p, 3, 2, mpidr);
	p.spis = 224;
	p.devs = devs;
	p.ndevs = 2;
	p.its = true;
	p.pmu = true;
	p.bootargs = "console=ttyS0 earlycon";
	assert_int_equal(kvmkit_arm64_fdt_build(&p, &dtb, &len), 0);
	assert_int_equal(fdt_check_header(dtb), 0);
	assert_int_equal(fdt_totalsize(dtb), len);
	dts = decompile(dtb, len);
	/* dtc checks the bindings it knows (unit addresses, cells, ...). */
	if (strstr(dts, "Warning") || strstr(dts, "ERROR"))
		fail_msg("dtc complains:\n%s", dts);
	HAS(dts, "compatible = \"linux,dummy-virt\";");
	HAS(dts, "interrupt-parent = <0x01>;");
	HAS(dts, "bootargs = \"console=ttyS0 earlycon\";");
	HAS(dts, "stdout-path = \"/serial@9000000\";");
	HAS(dts, "memory@80000000 {\n\t\tdevice_type = \"memory\";\n"
		 "\t\treg = <0x00 0x80000000 0x00 0x10000000>;");
	HAS(dts, "cpus {\n\t\t#address-cells = <0x01>;\n\t\t#size-cells = <0x00>;");
	HAS(dts, "cpu@0 {\n\t\t\tdevice_type = \"cpu\";\n\t\t\tcompatible = \"arm,arm-v8\";\n"
		 "\t\t\tenable-method = \"psci\";\n\t\t\treg = <0x00>;");
	HAS(dts, "cpu@1 {");
	HAS(dts, "reg = <0x01>;");
	HAS(dts, "psci {\n\t\tcompatible = \"arm,psci-0.2\";\n\t\tmethod = \"hvc\";");
	HAS(dts, "intc@8000000 {\n\t\tcompatible = \"arm,gic-v3\";\n"
		 "\t\t#interrupt-cells = <0x03>;\n\t\tinterrupt-controller;\n"
		 "\t\treg = <0x00 0x8000000 0x00 0x10000 0x00 0x80a0000 0x00 0x40000>;");
	HAS(dts, "phandle = <0x01>;");
	HAS(dts, "msi-controller@8080000 {\n\t\t\tcompatible = \"arm,gic-v3-its\";\n"
		 "\t\t\tmsi-controller;\n\t\t\t#msi-cells = <0x01>;\n"
		 "\t\t\treg = <0x00 0x8080000 0x00 0x20000>;");
	HAS(dts, "compatible = \"arm,armv8-timer\";\n\t\tinterrupts = <0x01 0x0d 0x04 0x01 "
		 "0x0e 0x04 0x01 0x0b 0x04 0x01 0x0a 0x04>;");
	HAS(dts, "pmu {\n\t\tcompatible = \"arm,armv8-pmuv3\";\n"
		 "\t\tinterrupts = <0x01 0x07 0x04>;");
	HAS(dts, "serial@9000000 {\n\t\tcompatible = \"ns16550a\";\n"
		 "\t\treg = <0x00 0x9000000 0x00 0x08>;\n\t\tinterrupts = <0x00 0x01 0x04>;");
	HAS(dts, "reg-io-width = <0x01>;");
	/* Each device's SPI with the trigger kvmkit signals it with. */
	HAS(dts, "virtio_mmio@a000000 {\n\t\tcompatible = \"virtio,mmio\";\n"
		 "\t\treg = <0x00 0xa000000 0x00 0x200>;\n\t\tinterrupts = <0x00 0x10 0x01>;\n"
		 "\t\tdma-coherent;");
	HAS(dts, "virtio_mmio@a000200 {\n\t\tcompatible = \"virtio,mmio\";\n"
		 "\t\treg = <0x00 0xa000200 0x00 0x200>;\n\t\tinterrupts = <0x00 0x11 0x04>;");
	free(dts);
	free(dtb);
}

static void test_gicv2(void **state)
{
	const uint64_t mpidr[4] = { 0x80000000, 0x80000001, 0x80000002, 0x80000003 };
	struct kvmkit_arm64_platform p;
	void *dtb;
	size_t len;
	char *dts;

	platform(&p, 2, 4, mpidr);
	p.uart_base = 0; /* no UART node, no stdout-path */
	p.pmu = true;
	assert_int_equal(kvmkit_arm64_fdt_build(&p, &dtb, &len), 0);
	dts = decompile(dtb, len);
	if (strstr(dts, "Warning") || strstr(dts, "ERROR"))
		fail_msg("dtc complains:\n%s", dts);
	HAS(dts, "compatible = \"arm,cortex-a15-gic\";");
	HAS(dts, "reg = <0x00 0x8000000 0x00 0x1000 0x00 0x8010000 0x00 0x2000>;");
	/* GICv2 PPI specifiers carry the CPU mask: 4 CPUs, 0xf << 8. */
	HAS(dts, "interrupts = <0x01 0x0d 0xf04 0x01 0x0e 0xf04 0x01 0x0b 0xf04 0x01 0x0a 0xf04>;");
	HAS(dts, "cpu@3 {");
	HAS(dts, "compatible = \"arm,armv8-pmuv3\";\n\t\tinterrupts = <0x01 0x07 0xf04>;");
	assert_null(strstr(dts, "serial@"));
	assert_null(strstr(dts, "stdout-path"));
	assert_null(strstr(dts, "#redistributor-regions"));
	assert_null(strstr(dts, "msi-controller"));
	free(dts);
	free(dtb);
}

/* Affinity 3 set: two cells per cpu reg. */
static void test_aff3(void **state)
{
	const uint64_t mpidr[2] = { 0x80000000, 0x0100000000ull | 0x80000000 };
	struct kvmkit_arm64_platform p;
	void *dtb;
	size_t len;
	char *dts;

	platform(&p, 3, 2, mpidr);
	assert_int_equal(kvmkit_arm64_fdt_build(&p, &dtb, &len), 0);
	dts = decompile(dtb, len);
	assert_null(strstr(dts, "pmu")); /* only when the platform has one */
	HAS(dts, "#address-cells = <0x02>;\n\t\t#size-cells = <0x00>;");
	HAS(dts, "cpu@100000000 {");
	HAS(dts, "reg = <0x01 0x00>;");
	free(dts);
	free(dtb);
}

static void refused(const struct kvmkit_arm64_platform *p, const char *what)
{
	void *dtb = NULL;
	size_t len = 0;

	assert_int_equal(kvmkit_arm64_fdt_build(p, &dtb, &len), -EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	if (!strstr(kvmkit_strerror(), what))
		fail_msg("'%s' does not name %s", kvmkit_strerror(), what);
	assert_null(dtb);
}

static void test_refusals(void **state)
{
	uint64_t mpidr[9] = { 0, 1, 2, 3, 4, 5, 6, 7, 8 };
	static char longargs[KVMKIT_ARM64_BOOTARGS_MAX + 2];
	struct kvmkit_arm64_platform p;

	platform(&p, 4, 1, mpidr);
	refused(&p, "gic_version");
	platform(&p, 2, 1, mpidr);
	p.its = true;
	refused(&p, "its");
	platform(&p, 2, 9, mpidr);
	refused(&p, "vcpus");
	platform(&p, 3, 0, mpidr);
	refused(&p, "vcpus");
	platform(&p, 3, 124, mpidr);
	refused(&p, "vcpus");
	platform(&p, 3, 1, NULL);
	refused(&p, "mpidr");
	mpidr[1] = 0x80000000; /* the same affinity as vCPU 0 */
	platform(&p, 3, 2, mpidr);
	refused(&p, "mpidr");
	mpidr[1] = 1;
	platform(&p, 3, 2, mpidr);
	p.mem_size = 0;
	refused(&p, "mem_size");
	platform(&p, 3, 2, mpidr);
	p.mem_base = ~0ull - 4095;
	p.mem_size = 8192;
	refused(&p, "mem_size");
	{
		struct kvmkit_arm64_mmio_dev d[2] = {
			{ "virtio,mmio", 0x0a000000, 0x200, 16, false },
			{ "virtio,mmio", 0x0a000100, 0x200, 17, false },
		};

		platform(&p, 3, 2, mpidr);
		p.devs = d;
		p.ndevs = 2;
		refused(&p, "overlap");
		d[1].base = 0x09000000; /* below the device window (the UART's) */
		refused(&p, "device window");
		d[1].base = 0x7ffffe00;
		d[1].size = 0x400; /* into RAM */
		refused(&p, "device window");
		d[1].size = 0x200;
		d[1].gsi = 224;
		p.spis = 224;
		refused(&p, "SPIs");
		d[1].gsi = 17;
		d[1].compatible = "";
		refused(&p, "compatible");
		d[1].compatible = "virtio,mmio";
		p.ndevs = 65;
		refused(&p, "ndevs");
		p.ndevs = 2;
		p.uart_gsi = 300;
		refused(&p, "uart_gsi");
	}
	mpidr[1] = 1;
	memset(longargs, 'a', sizeof(longargs) - 1);
	platform(&p, 3, 2, mpidr);
	p.bootargs = longargs;
	refused(&p, "bootargs");
	/* The largest accepted description fits. */
	longargs[KVMKIT_ARM64_BOOTARGS_MAX] = 0;
	{
		static uint64_t many[KVMKIT_ARM64_GICV3_MAX_VCPUS];
		void *dtb;
		size_t len;

		for (unsigned int i = 0; i < KVMKIT_ARM64_GICV3_MAX_VCPUS; i++)
			many[i] = ((uint64_t)(i / 16) << 8) | (i % 16);
		platform(&p, 3, KVMKIT_ARM64_GICV3_MAX_VCPUS, many);
		p.bootargs = longargs;
		assert_int_equal(kvmkit_arm64_fdt_build(&p, &dtb, &len), 0);
		assert_int_equal(fdt_check_header(dtb), 0);
		free(dtb);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gicv3_two_cpus),
		cmocka_unit_test(test_gicv2),
		cmocka_unit_test(test_aff3),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
