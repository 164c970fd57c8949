// SPDX-License-Identifier: MIT
/*
 * ACPI table builder (ACPI 6.x, section 5.2): RSDP, XSDT, FADT, MADT and
 * the DSDT, laid out one after the other in one blob the machine copies to
 * KVMK_ACPI_BASE. Every table carries kvmkit's OEM fields and a checksum.
 */
#include <stdio.h>
#include <string.h>

#define KVMK_LOG_MODULE "acpi"
#include "core/internal.h"
#include "acpi/acpi.h"
#include "acpi/aml.h"

#define OP "kvmk_acpi_build"
#define HDR_LEN 36
#define FADT_LEN 276 /* ACPI 6.0 and later */

/* FADT flags and IA-PC boot architecture flags. */
#define FADT_PWR_BUTTON (1u << 4) /* no fixed power button */
#define FADT_SLP_BUTTON (1u << 5)
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED (1u << 20)
#define BOOT_VGA_NOT_PRESENT (1u << 2)
#define BOOT_CMOS_RTC_NOT_PRESENT (1u << 5)

/* MADT structures. */
#define MADT_LAPIC 0
#define MADT_IOAPIC 1
#define MADT_ISO 2
#define MADT_LAPIC_NMI 4
#define MADT_X2APIC 9
#define MADT_PCAT_COMPAT 1u

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return (uint8_t)-s;
}

/* The common header; the checksum is set once the table is complete. */
static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	t[9] = 0;
	memcpy(t + 10, "KVMKIT", 6);
	memcpy(t + 16, "KVMKIT  ", 8);
	put32(t + 24, 1); /* OEM revision */
	memcpy(t + 28, "KVMK", 4); /* creator id */
	put32(t + 32, 1);
}

static void seal(uint8_t *t, size_t len)
{
	t[9] = 0;
	t[9] = checksum(t, len);
}

/* Generic Address Structure: a byte-wide register in system I/O space. */
static void gas_io8(uint8_t *p, uint16_t port)
{
	p[0] = 1; /* SystemIO */
	p[1] = 8; /* bit width */
	p[2] = 0; /* bit offset */
	p[3] = 1; /* byte access */
	put64(p + 4, port);
}

static size_t align16(size_t v)
{
	return (v + 15) & ~(size_t)15;
}

static int check_config(const struct kvmk_acpi_config *cfg)
{
	if (!cfg || !cfg->vcpus)
		return kvmk_err_param(OP, "vcpus", "no vCPU", "0");
	if (cfg->ndevs > KVMK_ACPI_MAX_DEVS || (cfg->ndevs && !cfg->devs))
		return kvmk_err_param(OP, "ndevs", "too many devices, or none given", "%u (max %d)",
				      cfg->ndevs, KVMK_ACPI_MAX_DEVS);
	for (unsigned int i = 0; i < cfg->ndevs; i++) {
		const struct kvmk_acpi_mmio_dev *d = &cfg->devs[i];
		size_t hl = d->hid ? strlen(d->hid) : 0;

		if (!d->size || d->base > UINT32_MAX || d->size > (1ull << 32) - d->base)
			return kvmk_err_param(OP, "device", "window not inside the low 4 GiB",
					      "%u: 0x%llx+0x%x", i, (unsigned long long)d->base,
					      d->size);
		if (d->gsi > 23)
			return kvmk_err_param(OP, "device", "GSI is no IOAPIC pin (0..23)",
					      "%u: %u", i, d->gsi);
		if (hl < 1 || hl > 8)
			return kvmk_err_param(OP, "device", "_HID of 1 to 8 characters", "%u", i);
		for (size_t k = 0; k < hl; k++)
			if (!((d->hid[k] >= 'A' && d->hid[k] <= 'Z') ||
			      (d->hid[k] >= '0' && d->hid[k] <= '9')))
				return kvmk_err_param(OP, "device", "_HID not A-Z 0-9", "%u: %s", i,
						      d->hid);
	}
	return 0;
}

/* Name(_CRS, ResourceTemplate() { ... }) from the descriptors in @res. */
static void crs(struct kvmk_aml *a, struct kvmk_aml *res)
{
	kvmk_aml_res_end(res);
	kvmk_aml_name_decl(a, "_CRS");
	if (res->failed)
		a->failed = res->failed;
	else
		kvmk_aml_buffer(a, res->buf, res->len);
	kvmk_aml_free(res);
}

/* Device(@name) { _HID (an EISA id if @eisa, else a string), _UID @uid,
 * _CRS from @res }. */
static void device(struct kvmk_aml *a, const char *name, const char *hid, bool eisa, uint64_t uid,
		   struct kvmk_aml *res)
{
	size_t dev = kvmk_aml_device_begin(a, name);

	kvmk_aml_name_decl(a, "_HID");
	if (eisa)
		kvmk_aml_eisaid(a, hid);
	else
		kvmk_aml_string(a, hid);
	kvmk_aml_name_decl(a, "_UID");
	kvmk_aml_integer(a, uid);
	crs(a, res);
	kvmk_aml_end(a, dev);
}

static void dsdt_body(struct kvmk_aml *a, const struct kvmk_acpi_config *cfg)
{
	size_t sb, pkg;

	sb = kvmk_aml_scope_begin(a, "\\_SB");
	if (cfg->com1) {
		struct kvmk_aml res;

		kvmk_aml_init(&res);
		kvmk_aml_res_io(&res, 0x3f8, 0x3f8, 1, 8);
		kvmk_aml_res_irq_noflags(&res, 4);
		device(a, "COM1", "PNP0501", true, 0, &res);
	}
	if (cfg->pvpanic) {
		struct kvmk_aml res;

		/* QEMU's pvpanic device: Linux's pvpanic-mmio driver takes its
		 * I/O port from _CRS. */
		kvmk_aml_init(&res);
		kvmk_aml_res_io(&res, KVMK_ACPI_PVPANIC, KVMK_ACPI_PVPANIC, 1, 1);
		device(a, "PEVT", "QEMU0001", false, 0, &res);
	}
	for (unsigned int i = 0; i < cfg->ndevs; i++) {
		const struct kvmk_acpi_mmio_dev *d = &cfg->devs[i];
		struct kvmk_aml res;
		char name[16];

		/* V000..V0FF: one device each, numbered as the machine lists them. */
		snprintf(name, sizeof(name), "V%03X", i & 0xfff);
		kvmk_aml_init(&res);
		kvmk_aml_res_mem32_fixed(&res, (uint32_t)d->base, d->size, true);
		kvmk_aml_res_ext_irq(&res, d->gsi, d->level);
		device(a, name, d->hid, false, i, &res);
	}
	kvmk_aml_end(a, sb);
	/* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved. */
	kvmk_aml_name_decl(a, "\\_S5");
	pkg = kvmk_aml_package_begin(a, 4);
	kvmk_aml_integer(a, KVMK_ACPI_S5_TYPE);
	kvmk_aml_integer(a, KVMK_ACPI_S5_TYPE);
	kvmk_aml_integer(a, 0);
	kvmk_aml_integer(a, 0);
	kvmk_aml_end(a, pkg);
}

static size_t madt_size(unsigned int vcpus)
{
	size_t n = 44 + 12 + 2 * 10 + 6;

	for (unsigned int i = 0; i < vcpus; i++)
		n += i < 255 ? 8 : 16;
	return n;
}

static void madt(uint8_t *t, size_t len, unsigned int vcpus)
{
	uint8_t *p = t + 44;

	header(t, "APIC", (uint32_t)len, 5);
	put32(t + 36, KVMK_ACPI_LAPIC_ADDR);
	put32(t + 40, MADT_PCAT_COMPAT); /* the 8259 pair exists (masked by Linux) */
	for (unsigned int i = 0; i < vcpus; i++) {
		/* xAPIC ids end at 254 (255 is the broadcast): x2APIC past it. */
		if (i < 255) {
			p[0] = MADT_LAPIC;
			p[1] = 8;
			p[2] = (uint8_t)i; /* processor UID */
			p[3] = (uint8_t)i; /* APIC id = vCPU index (cpuid.c) */
			put32(p + 4, 1); /* enabled */
			p += 8;
		} else {
			p[0] = MADT_X2APIC;
			p[1] = 16;
			put16(p + 2, 0);
			put32(p + 4, i); /* x2APIC id */
			put32(p + 8, 1); /* enabled */
			put32(p + 12, i); /* UID */
			p += 16;
		}
	}
	p[0] = MADT_IOAPIC;
	p[1] = 12;
	p[2] = 0; /* IOAPIC id */
	p[3] = 0;
	put32(p + 4, KVMK_ACPI_IOAPIC_ADDR);
	put32(p + 8, 0); /* GSI base */
	p += 12;
	/* ISA IRQ 0 (the PIT) is wired to pin 2, as on every PC; flags 0:
	 * conforms to the bus (ISA: edge, active high). */
	p[0] = MADT_ISO;
	p[1] = 10;
	p[2] = 0;
	p[3] = 0;
	put32(p + 4, 2);
	put16(p + 8, 0);
	p += 10;
	/* The SCI, level active high (flags: polarity 01, trigger 11). */
	p[0] = MADT_ISO;
	p[1] = 10;
	p[2] = 0;
	p[3] = KVMK_ACPI_SCI_IRQ;
	put32(p + 4, KVMK_ACPI_SCI_IRQ);
	put16(p + 8, 0x000d);
	p += 10;
	/* LINT1 of every processor is the NMI input. */
	p[0] = MADT_LAPIC_NMI;
	p[1] = 6;
	p[2] = 0xff; /* all processors */
	put16(p + 3, 0);
	p[5] = 1; /* LINT1 */
	seal(t, len);
}

static void fadt(uint8_t *t, uint64_t dsdt)
{
	memset(t, 0, FADT_LEN);
	header(t, "FACP", FADT_LEN, 6);
	put32(t + 40, (uint32_t)dsdt);
	put16(t + 46, KVMK_ACPI_SCI_IRQ);
	put16(t + 109, BOOT_VGA_NOT_PRESENT | BOOT_CMOS_RTC_NOT_PRESENT);
	put32(t + 112, FADT_HW_REDUCED | FADT_RESET_REG_SUP | FADT_PWR_BUTTON | FADT_SLP_BUTTON);
	gas_io8(t + 116, KVMK_ACPI_RESET_REG);
	t[128] = KVMK_ACPI_RESET_VALUE;
	t[131] = 0; /* FADT minor version: 6.0 */
	put64(t + 140, dsdt); /* X_DSDT */
	gas_io8(t + 244, KVMK_ACPI_SLEEP_CONTROL);
	gas_io8(t + 256, KVMK_ACPI_SLEEP_STATUS);
	memcpy(t + 268, "KVMKIT\0\0", 8); /* hypervisor vendor identity */
	seal(t, FADT_LEN);
}

int kvmk_acpi_build(const struct kvmk_acpi_config *cfg, uint64_t base, void *buf, size_t size,
		    struct kvmk_acpi_tables *out)
{
	struct kvmk_aml aml;
	struct kvmk_acpi_tables l = { 0 };
	uint8_t *b = buf;
	int r = check_config(cfg);

	if (r)
		return r;
	if (!buf || !out)
		return kvmk_err_param(OP, "buf", "NULL", "NULL");
	kvmk_aml_init(&aml);
	dsdt_body(&aml, cfg);
	r = kvmk_aml_finish(&aml);
	if (r) {
		kvmk_aml_free(&aml);
		return r;
	}
	l.rsdp = 0;
	l.xsdt = 64;
	l.xsdt_len = HDR_LEN + 2 * 8;
	l.fadt = align16(l.xsdt + l.xsdt_len);
	l.fadt_len = FADT_LEN;
	l.madt = align16(l.fadt + l.fadt_len);
	l.madt_len = madt_size(cfg->vcpus);
	l.dsdt = align16(l.madt + l.madt_len);
	l.dsdt_len = HDR_LEN + aml.len;
	l.len = l.dsdt + l.dsdt_len;
	if (l.len > size || base > UINT32_MAX - l.len) {
		kvmk_aml_free(&aml);
		return kvmk_err_param(OP, "size", "the ACPI tables do not fit their area",
				      "%zu bytes needed, %zu available", l.len, size);
	}
	memset(b, 0, l.len);

	/* DSDT: revision 2, so integers are 64-bit. */
	header(b + l.dsdt, "DSDT", (uint32_t)l.dsdt_len, 2);
	memcpy(b + l.dsdt + HDR_LEN, aml.buf, aml.len);
	seal(b + l.dsdt, l.dsdt_len);
	kvmk_aml_free(&aml);

	madt(b + l.madt, l.madt_len, cfg->vcpus);
	fadt(b + l.fadt, base + l.dsdt);

	header(b + l.xsdt, "XSDT", (uint32_t)l.xsdt_len, 1);
	put64(b + l.xsdt + HDR_LEN, base + l.fadt);
	put64(b + l.xsdt + HDR_LEN + 8, base + l.madt);
	seal(b + l.xsdt, l.xsdt_len);

	/* RSDP v2: the first checksum covers the ACPI 1.0 part (20 bytes),
	 * the extended one all 36; no RSDT (the XSDT is the one to use). */
	memcpy(b, "RSD PTR ", 8);
	memcpy(b + 9, "KVMKIT", 6);
	b[15] = 2;
	put32(b + 16, 0);
	put32(b + 20, 36);
	put64(b + 24, base + l.xsdt);
	b[8] = checksum(b, 20);
	b[32] = checksum(b, 36);
	*out = l;
	return 0;
}

int kvmk_acpi_virtio_cmdline(const struct kvmk_acpi_mmio_dev *devs, unsigned int ndevs, char *buf,
			     size_t size)
{
	size_t used = 0;

	if (!buf || !size)
		return kvmk_err_param("kvmk_acpi_virtio_cmdline", "size", "no buffer", "0");
	buf[0] = 0;
	for (unsigned int i = 0; i < ndevs; i++) {
		int n = snprintf(buf + used, size - used, "%svirtio_mmio.device=%u@0x%llx:%u",
				 used ? " " : "", devs[i].size, (unsigned long long)devs[i].base,
				 devs[i].gsi);

		if (n < 0 || (size_t)n >= size - used) {
			buf[used] = 0;
			return kvmk_err_param("kvmk_acpi_virtio_cmdline", "size",
					      "command line too long", "%zu bytes", size);
		}
		used += (size_t)n;
	}
	return (int)used;
}
