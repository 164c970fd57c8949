// SPDX-License-Identifier: MIT
/*
 * The AML encoder (PkgLength, integers, names, EISA ids, nesting) byte for
 * byte, and the ACPI tables: checksums and pointers checked here, and what
 * they declare checked by decompiling them with `iasl -d` (acpica-tools)
 * and reading the .dsl: every LAPIC, the IOAPIC, the ISA overrides, the
 * FADT's hardware-reduced registers, COM1, each MMIO device's window, GSI
 * and trigger, and _S5. The DSDT's disassembly must also compile again.
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

#include <kvmkit/kvmkit.h>
#include "acpi/acpi.h"
#include "acpi/aml.h"

static void expect_bytes(struct kvmk_aml *a, const uint8_t *want, size_t n)
{
	assert_null(a->failed);
	assert_int_equal(a->len, n);
	assert_memory_equal(a->buf, want, n);
	kvmk_aml_free(a);
}

/* Each of @bad, passed to @emit, fails the buffer: kvmk_aml_finish()
 * then refuses it. */
static void expect_refused(void (*emit)(struct kvmk_aml *, const char *), const char *what,
			   const char *const *bad, size_t n)
{
	struct kvmk_aml a;

	for (size_t i = 0; i < n; i++) {
		kvmk_aml_init(&a);
		emit(&a, bad[i]);
		if (!a.failed)
			fail_msg("%s '%s' accepted", what, bad[i]);
		assert_int_equal(kvmk_aml_finish(&a), -EINVAL);
		kvmk_aml_free(&a);
	}
}

static void test_pkglength(void **state)
{
	uint8_t b[4];

	assert_int_equal(kvmk_aml_pkglength(0, b), 1);
	assert_int_equal(b[0], 1);
	assert_int_equal(kvmk_aml_pkglength(62, b), 1);
	assert_int_equal(b[0], 63);
	/* 63 bytes + 2 = 65 = 0x41: count 1 in bits 6-7, nibble 1, then 0x04. */
	assert_int_equal(kvmk_aml_pkglength(63, b), 2);
	assert_int_equal(b[0], 0x41);
	assert_int_equal(b[1], 0x04);
	assert_int_equal(kvmk_aml_pkglength(4093, b), 2); /* 4095 */
	assert_int_equal(b[0], 0x4f);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(kvmk_aml_pkglength(4094, b), 3); /* 4097 = 0x1001 */
	assert_int_equal(b[0], 0x81);
	assert_int_equal(b[1], 0x00);
	assert_int_equal(b[2], 0x01);
	assert_int_equal(kvmk_aml_pkglength((1u << 20) - 4, b), 3);
	assert_int_equal(kvmk_aml_pkglength((1u << 20) - 3, b), 4);
	assert_int_equal(b[0], 0xc1); /* 0x100001 */
	assert_int_equal(kvmk_aml_pkglength((1u << 28) - 5, b), 4);
	assert_int_equal(kvmk_aml_pkglength((1u << 28) - 4, b), 0);
}

static void test_integers(void **state)
{
	struct kvmk_aml a;
	const uint8_t want[] = { 0x00, 0x01, 0x0a, 0x02, 0x0a, 0xff, 0x0b, 0x00,
				 0x01, 0x0c, 0x00, 0x00, 0x01, 0x00, 0x0e, 0x00,
				 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0xff };

	kvmk_aml_init(&a);
	kvmk_aml_integer(&a, 0);
	kvmk_aml_integer(&a, 1);
	kvmk_aml_integer(&a, 2);
	kvmk_aml_integer(&a, 0xff);
	kvmk_aml_integer(&a, 0x100);
	kvmk_aml_integer(&a, 0x10000);
	kvmk_aml_integer(&a, 1ull << 32);
	kvmk_aml_integer(&a, UINT64_MAX);
	expect_bytes(&a, want, sizeof(want));
}

static void test_names(void **state)
{
	struct kvmk_aml a;
	const uint8_t want[] = { '_',  'H',  'I', 'D', 0x5c, '_', 'S',	'B', '_',  0x5c, 0x2e,
				 '_',  'S',  'B', '_', 'C',  'O', 'M',	'1', 0x2f, 3,	 'A',
				 '_',  '_',  '_', 'B', '_',  '_', '_',	'C', '_',  '_',	 '_',
				 0x5e, 0x5e, 'F', 'O', 'O',  '_', 0x5c, 0x00 };
	const char *bad[] = { "1ABC", "ABCDE", "abc", "A..B", "A.", ".A", "\\^A", "A-B" };

	kvmk_aml_init(&a);
	kvmk_aml_name(&a, "_HID");
	kvmk_aml_name(&a, "\\_SB");
	kvmk_aml_name(&a, "\\_SB.COM1");
	kvmk_aml_name(&a, "A.B.C");
	kvmk_aml_name(&a, "^^FOO");
	kvmk_aml_name(&a, "\\");
	expect_bytes(&a, want, sizeof(want));
	expect_refused(kvmk_aml_name, "name", bad, sizeof(bad) / sizeof(bad[0]));
}

static void test_eisaid_string(void **state)
{
	struct kvmk_aml a;
	const uint8_t want[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01, 0x0d, 'L', 'N',
				 'R',  'O',  '0',  '0',	 '0',  '5',  0x00 };
	const char *bad[] = { "PNP050", "pNP0501", "PNP050G", "PNP05011" };

	kvmk_aml_init(&a);
	kvmk_aml_eisaid(&a, "PNP0501");
	kvmk_aml_string(&a, "LNRO0005");
	expect_bytes(&a, want, sizeof(want));
	expect_refused(kvmk_aml_eisaid, "EISA id", bad, sizeof(bad) / sizeof(bad[0]));
	kvmk_aml_init(&a);
	kvmk_aml_string(&a, "caf\xc3\xa9");
	assert_non_null(a.failed);
	kvmk_aml_free(&a);
}

/* A scope holding a device whose body passes 63 bytes: the inner
 * PkgLength takes two bytes and the outer one counts them. */
static void test_nesting(void **state)
{
	struct kvmk_aml a;
	uint8_t pad[70];
	size_t s, d, p;

	memset(pad, 0x31, sizeof(pad));
	kvmk_aml_init(&a);
	s = kvmk_aml_scope_begin(&a, "\\_SB");
	d = kvmk_aml_device_begin(&a, "DEV0");
	kvmk_aml_bytes(&a, pad, sizeof(pad));
	kvmk_aml_end(&a, d);
	kvmk_aml_end(&a, s);
	assert_null(a.failed);
	/* 10 ScopeOp, PkgLength(2), 5c "_SB_", 5b 82 PkgLength(2) "DEV0" pad */
	assert_int_equal(a.len, 1 + 2 + 5 + 2 + 2 + 4 + sizeof(pad));
	assert_int_equal(a.buf[0], 0x10);
	/* outer: 2 + 5 + 2 + 2 + 4 + 70 = 85 = 0x55 */
	assert_int_equal(a.buf[1], 0x45);
	assert_int_equal(a.buf[2], 0x05);
	assert_int_equal(a.buf[8], 0x5b);
	assert_int_equal(a.buf[9], 0x82);
	/* inner: 2 + 4 + 70 = 76 = 0x4c */
	assert_int_equal(a.buf[10], 0x4c);
	assert_int_equal(a.buf[11], 0x04);
	kvmk_aml_free(&a);

	kvmk_aml_init(&a);
	p = kvmk_aml_package_begin(&a, 2);
	kvmk_aml_integer(&a, 5);
	kvmk_aml_integer(&a, 0);
	kvmk_aml_end(&a, p);
	{
		const uint8_t want[] = { 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00 };

		expect_bytes(&a, want, sizeof(want));
	}
}

static const struct kvmk_acpi_mmio_dev devs[] = {
	{ 0xd0000000, 0x200, 5, false, "LNRO0005" },
	{ 0xd0001000, 0x200, 6, true, "LNRO0005" },
	{ 0xd0002000, 0x200, 7, false, "LNRO0005" },
};

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void test_tables_layout(void **state)
{
	static uint8_t buf[KVMK_ACPI_END - KVMK_ACPI_BASE];
	struct kvmk_acpi_config cfg = { 3, true, true, devs, 3 };
	struct kvmk_acpi_tables t;
	const uint64_t base = KVMK_ACPI_BASE;

	assert_int_equal(kvmk_acpi_build(&cfg, base, buf, sizeof(buf), &t), 0);
	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(sum(buf, 20), 0);
	assert_int_equal(sum(buf, 36), 0);
	assert_int_equal(buf[15], 2);
	assert_int_equal(rd64(buf + 24), base + t.xsdt);
	assert_int_equal(sum(buf + t.xsdt, t.xsdt_len), 0);
	assert_int_equal(sum(buf + t.fadt, t.fadt_len), 0);
	assert_int_equal(sum(buf + t.madt, t.madt_len), 0);
	assert_int_equal(sum(buf + t.dsdt, t.dsdt_len), 0);
	assert_int_equal(rd64(buf + t.xsdt + 36), base + t.fadt);
	assert_int_equal(rd64(buf + t.xsdt + 44), base + t.madt);
	assert_int_equal(rd64(buf + t.fadt + 140), base + t.dsdt);
	assert_int_equal(t.madt_len, 44 + 3 * 8 + 12 + 20 + 6);
	assert_true(t.len <= sizeof(buf));

	/* 300 vCPUs: x2APIC structures past APIC id 254. */
	cfg.vcpus = 300;
	assert_int_equal(kvmk_acpi_build(&cfg, base, buf, sizeof(buf), &t), 0);
	assert_int_equal(t.madt_len, 44 + 255 * 8 + 45 * 16 + 12 + 20 + 6);
	assert_int_equal(buf[t.madt + 44 + 255 * 8], 9);

	/* Too small an area, a bad config: refused. */
	cfg.vcpus = 2;
	assert_int_equal(kvmk_acpi_build(&cfg, base, buf, 200, &t), -EINVAL);
	cfg.vcpus = 0;
	assert_int_equal(kvmk_acpi_build(&cfg, base, buf, sizeof(buf), &t), -EINVAL);
	cfg.vcpus = 1;
	{
		struct kvmk_acpi_mmio_dev bad[] = {
			{ 0xfffff000, 0x2000, 5, false, "LNRO0005" }, /* crosses 4 GiB */
			{ 0xd0000000, 0, 5, false, "LNRO0005" }, /* empty */
			{ 0xd0000000, 0x200, 24, false, "LNRO0005" }, /* no IOAPIC pin */
			{ 0xd0000000, 0x200, 5, false, "lnro0005" }, /* lower case */
			{ 0xd0000000, 0x200, 5, false, "LNRO00050" }, /* 9 characters */
			{ 0xd0000000, 0x200, 5, false, NULL },
		};

		for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			cfg.devs = &bad[i];
			cfg.ndevs = 1;
			if (kvmk_acpi_build(&cfg, base, buf, sizeof(buf), &t) != -EINVAL)
				fail_msg("bad device %u accepted", i);
			assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
		}
	}
}

static void test_virtio_cmdline(void **state)
{
	char buf[256];
	int n = kvmk_acpi_virtio_cmdline(devs, 2, buf, sizeof(buf));

	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, "virtio_mmio.device=512@0xd0000000:5 "
				 "virtio_mmio.device=512@0xd0001000:6");
	assert_int_equal(kvmk_acpi_virtio_cmdline(devs, 2, buf, 40), -EINVAL);
	assert_int_equal(kvmk_acpi_virtio_cmdline(devs, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

/* ---- iasl -------------------------------------------------------------- */

static char dir[64];

static void write_file(const char *name, const void *p, size_t n)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static char *read_file(const char *name)
{
	char path[128];
	char *s = NULL;
	size_t cap = 0, len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("no %s", path);
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? 2 * cap : 65536;
			s = realloc(s, cap);
			assert_non_null(s);
		}
		size_t n = fread(s + len, 1, cap - len - 1, f);

		if (!n)
			break;
		len += n;
	}
	fclose(f);
	s[len] = 0;
	return s;
}

/* Runs iasl in the directory; its output goes to LOG. */
static int iasl(const char *args, const char *log)
{
	char cmd[512];
	int r;

	snprintf(cmd, sizeof(cmd), "cd '%s' && iasl %s > '%s' 2>&1", dir, args, log);
	r = system(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static void expect_in(const char *text, const char *what, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("%s does not contain '%s'", what, needle);
}

/* The text after the first occurrence of @start (so that a device's lines
 * are searched in its own block). */
static const char *after(const char *text, const char *start)
{
	const char *p = strstr(text, start);

	if (!p)
		fail_msg("no '%s' in the disassembly", start);
	return p;
}

static void test_iasl(void **state)
{
	static uint8_t buf[KVMK_ACPI_END - KVMK_ACPI_BASE];
	struct kvmk_acpi_config cfg = { 2, true, true, devs, 3 };
	struct kvmk_acpi_tables t;
	char *dsl, *log, *madt, *fadt;
	const char *p;

	if (system("command -v iasl > /dev/null 2>&1") != 0)
		skip(); /* acpica-tools (scripts/install-deps.sh) */
	snprintf(dir, sizeof(dir), "/tmp/kvmkit-acpi-XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(kvmk_acpi_build(&cfg, KVMK_ACPI_BASE, buf, sizeof(buf), &t), 0);
	write_file("dsdt.dat", buf + t.dsdt, t.dsdt_len);
	write_file("apic.dat", buf + t.madt, t.madt_len);
	write_file("facp.dat", buf + t.fadt, t.fadt_len);
	write_file("xsdt.dat", buf + t.xsdt, t.xsdt_len);
	assert_int_equal(iasl("-d dsdt.dat apic.dat facp.dat xsdt.dat", "d.log"), 0);
	log = read_file("d.log");
	if (strstr(log, "Error") || strstr(log, "Warning") || strstr(log, "checksum"))
		fail_msg("iasl -d complained:\n%s", log);
	free(log);

	dsl = read_file("dsdt.dsl");
	p = after(dsl, "Device (COM1)");
	expect_in(p, "COM1", "EisaId (\"PNP0501\")");
	expect_in(p, "COM1", "IO (Decode16,\n                    0x03F8,");
	expect_in(p, "COM1", "0x08,               // Length");
	expect_in(p, "COM1", "IRQNoFlags ()\n                    {4}");
	p = after(dsl, "Device (PEVT)");
	expect_in(p, "PEVT", "Name (_HID, \"QEMU0001\")");
	expect_in(p, "PEVT", "IO (Decode16,\n                    0x0604,");
	for (unsigned int i = 0; i < 3; i++) {
		char dev[32], win[64], irq[160];

		snprintf(dev, sizeof(dev), "Device (V%03X)", i);
		snprintf(win, sizeof(win), "0x%08X,         // Address Base",
			 (unsigned int)devs[i].base);
		snprintf(irq, sizeof(irq),
			 "Interrupt (ResourceConsumer, %s, ActiveHigh, Exclusive, ,, )\n"
			 "                {\n                    0x%08X,",
			 devs[i].level ? "Level" : "Edge", devs[i].gsi);
		p = after(dsl, dev);
		expect_in(p, dev, "Name (_HID, \"LNRO0005\")");
		expect_in(p, dev, win);
		expect_in(p, dev, "0x00000200,         // Address Length");
		expect_in(p, dev, irq);
	}
	expect_in(dsl, "DSDT", "Name (\\_S5, Package (0x04)");
	/* The disassembly is valid ASL: it compiles again without errors. */
	assert_int_equal(iasl("-p recompiled dsdt.dsl", "c.log"), 0);
	log = read_file("c.log");
	expect_in(log, "iasl", "0 Errors");
	free(log);
	free(dsl);

	madt = read_file("apic.dsl");
	p = after(madt, "Local Apic ID : 00");
	expect_in(p, "MADT", "Local Apic ID : 01");
	if (strstr(madt, "Local Apic ID : 02"))
		fail_msg("a third LAPIC for 2 vCPUs");
	p = after(madt, "[I/O APIC]");
	expect_in(p, "MADT", "Address : FEC00000");
	expect_in(p, "MADT", "Interrupt : 00000000");
	p = after(madt, "Source : 00");
	expect_in(p, "MADT", "Interrupt : 00000002");
	p = after(madt, "Source : 09");
	expect_in(p, "MADT", "Interrupt : 00000009");
	expect_in(p, "MADT", "Trigger Mode : 3");
	free(madt);

	fadt = read_file("facp.dsl");
	expect_in(fadt, "FADT", "Hardware Reduced (V5) : 1");
	expect_in(fadt, "FADT", "Reset Register Supported (V2) : 1");
	p = after(fadt, "Reset Register :");
	expect_in(p, "FADT", "Address : 0000000000000602");
	expect_in(p, "FADT", "Value to cause reset : 01");
	p = after(fadt, "Sleep Control Register :");
	expect_in(p, "FADT", "Address : 0000000000000600");
	p = after(fadt, "Sleep Status Register :");
	expect_in(p, "FADT", "Address : 0000000000000601");
	free(fadt);

	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		assert_int_equal(system(cmd), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglength),      cmocka_unit_test(test_integers),
		cmocka_unit_test(test_names),	       cmocka_unit_test(test_eisaid_string),
		cmocka_unit_test(test_nesting),	       cmocka_unit_test(test_tables_layout),
		cmocka_unit_test(test_virtio_cmdline), cmocka_unit_test(test_iasl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
