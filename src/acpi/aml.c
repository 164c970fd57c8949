// SPDX-License-Identifier: MIT
/* AML encoding (ACPI 6.x section 20): see aml.h. */
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "acpi"
#include "core/internal.h"
#include "acpi/aml.h"

#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE 0x0a
#define AML_WORD 0x0b
#define AML_DWORD 0x0c
#define AML_STRING 0x0d
#define AML_QWORD 0x0e
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_METHOD 0x14
#define AML_DUAL_NAME 0x2e
#define AML_MULTI_NAME 0x2f
#define AML_EXT 0x5b
#define AML_DEVICE 0x82 /* after AML_EXT */
#define AML_ROOT 0x5c
#define AML_PARENT 0x5e
#define AML_RETURN 0xa4
#define AML_ONES 0xff

#define PKG_MAX 0x0fffffffu /* 28 bits */

void kvmk_aml_init(struct kvmk_aml *a)
{
	memset(a, 0, sizeof(*a));
}

void kvmk_aml_free(struct kvmk_aml *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

static void fail(struct kvmk_aml *a, const char *why)
{
	if (!a->failed)
		a->failed = why;
}

int kvmk_aml_finish(struct kvmk_aml *a)
{
	if (!a->failed)
		return 0;
	if (!strcmp(a->failed, "out of memory"))
		return kvmk_err_resource("kvmk_aml", ENOMEM, "AML buffer");
	return kvmk_err_param("kvmk_aml", "aml", a->failed, "at byte %zu", a->len);
}

/* Room for @n more bytes. */
static bool reserve(struct kvmk_aml *a, size_t n)
{
	size_t cap;
	uint8_t *b;

	if (a->failed)
		return false;
	if (n <= a->cap - a->len)
		return true;
	if (n > PKG_MAX || a->len > PKG_MAX) {
		fail(a, "AML larger than 256 MiB");
		return false;
	}
	cap = a->cap ? a->cap : 256;
	while (cap - a->len < n)
		cap *= 2;
	b = realloc(a->buf, cap);
	if (!b) {
		fail(a, "out of memory");
		return false;
	}
	a->buf = b;
	a->cap = cap;
	return true;
}

void kvmk_aml_bytes(struct kvmk_aml *a, const void *p, size_t n)
{
	if (!n || !reserve(a, n))
		return;
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

void kvmk_aml_byte(struct kvmk_aml *a, uint8_t b)
{
	kvmk_aml_bytes(a, &b, 1);
}

static void le(struct kvmk_aml *a, uint64_t v, unsigned int n)
{
	uint8_t b[8];

	for (unsigned int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	kvmk_aml_bytes(a, b, n);
}

/* The PkgLength counts itself: one byte holds 0..63 in bits 0-5; longer
 * ones put the count of following bytes in bits 6-7, the low nibble in
 * bits 0-3 and the rest, 8 bits a byte, after it. */
unsigned int kvmk_aml_pkglength(size_t n, uint8_t out[4])
{
	for (unsigned int k = 1; k <= 4; k++) {
		uint64_t total = (uint64_t)n + k;
		uint64_t limit = k == 1 ? 0x3f : (1ull << (4 + 8 * (k - 1))) - 1;

		if (total > limit)
			continue;
		if (k == 1) {
			out[0] = (uint8_t)total;
			return 1;
		}
		out[0] = (uint8_t)(((k - 1) << 6) | (total & 0xf));
		for (unsigned int i = 1; i < k; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return k;
	}
	return 0;
}

void kvmk_aml_end(struct kvmk_aml *a, size_t mark)
{
	uint8_t pl[4];
	unsigned int k;

	if (a->failed)
		return;
	if (mark > a->len) {
		fail(a, "package end before its start");
		return;
	}
	k = kvmk_aml_pkglength(a->len - mark, pl);
	if (!k) {
		fail(a, "package longer than a PkgLength can say");
		return;
	}
	if (!reserve(a, k))
		return;
	memmove(a->buf + mark + k, a->buf + mark, a->len - mark);
	memcpy(a->buf + mark, pl, k);
	a->len += k;
}

static bool seg_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

void kvmk_aml_name(struct kvmk_aml *a, const char *path)
{
	char segs[255][4];
	unsigned int n = 0;
	const char *p = path;

	if (!path) {
		fail(a, "NULL name");
		return;
	}
	if (*p == '\\') {
		kvmk_aml_byte(a, AML_ROOT);
		p++;
	} else {
		while (*p == '^') {
			kvmk_aml_byte(a, AML_PARENT);
			p++;
		}
	}
	while (*p) {
		unsigned int len = 0;

		if (n == 255) {
			fail(a, "name with more than 255 segments");
			return;
		}
		memset(segs[n], '_', 4);
		while (*p && *p != '.') {
			if (len == 4 || !seg_char(*p, len == 0)) {
				fail(a, "invalid name segment");
				return;
			}
			segs[n][len++] = *p++;
		}
		if (!len) {
			fail(a, "empty name segment");
			return;
		}
		n++;
		if (*p == '.' && !*++p) {
			fail(a, "name ends with '.'");
			return;
		}
	}
	if (n == 0) {
		kvmk_aml_byte(a, AML_ZERO); /* NullName */
	} else if (n == 2) {
		kvmk_aml_byte(a, AML_DUAL_NAME);
	} else if (n > 2) {
		kvmk_aml_byte(a, AML_MULTI_NAME);
		kvmk_aml_byte(a, (uint8_t)n);
	}
	kvmk_aml_bytes(a, segs, (size_t)n * 4);
}

void kvmk_aml_integer(struct kvmk_aml *a, uint64_t v)
{
	if (v == 0) {
		kvmk_aml_byte(a, AML_ZERO);
	} else if (v == 1) {
		kvmk_aml_byte(a, AML_ONE);
	} else if (v == UINT64_MAX) {
		kvmk_aml_byte(a, AML_ONES);
	} else if (v <= 0xff) {
		kvmk_aml_byte(a, AML_BYTE);
		le(a, v, 1);
	} else if (v <= 0xffff) {
		kvmk_aml_byte(a, AML_WORD);
		le(a, v, 2);
	} else if (v <= 0xffffffff) {
		kvmk_aml_byte(a, AML_DWORD);
		le(a, v, 4);
	} else {
		kvmk_aml_byte(a, AML_QWORD);
		le(a, v, 8);
	}
}

void kvmk_aml_string(struct kvmk_aml *a, const char *s)
{
	if (!s) {
		fail(a, "NULL string");
		return;
	}
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p > 0x7f) {
			fail(a, "string is not ASCII");
			return;
		}
	kvmk_aml_byte(a, AML_STRING);
	kvmk_aml_bytes(a, s, strlen(s) + 1);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Three letters in 5 bits each and four hex digits, stored big-endian in a
 * DWord (the DWord's bytes are the id's bytes in order). */
void kvmk_aml_eisaid(struct kvmk_aml *a, const char *id)
{
	uint32_t v = 0;

	if (!id || strlen(id) != 7) {
		fail(a, "EISA id is not 7 characters");
		return;
	}
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			fail(a, "EISA id does not start with 3 capitals");
			return;
		}
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		int h = hexval(id[i]);

		if (h < 0) {
			fail(a, "EISA id does not end with 4 hex digits");
			return;
		}
		v = (v << 4) | (uint32_t)h;
	}
	kvmk_aml_byte(a, AML_DWORD);
	kvmk_aml_byte(a, (uint8_t)(v >> 24));
	kvmk_aml_byte(a, (uint8_t)(v >> 16));
	kvmk_aml_byte(a, (uint8_t)(v >> 8));
	kvmk_aml_byte(a, (uint8_t)v);
}

void kvmk_aml_buffer(struct kvmk_aml *a, const void *data, size_t n)
{
	size_t m;

	kvmk_aml_byte(a, AML_BUFFER);
	m = a->len;
	kvmk_aml_integer(a, n);
	kvmk_aml_bytes(a, data, n);
	kvmk_aml_end(a, m);
}

size_t kvmk_aml_scope_begin(struct kvmk_aml *a, const char *name)
{
	size_t m;

	kvmk_aml_byte(a, AML_SCOPE);
	m = a->len;
	kvmk_aml_name(a, name);
	return m;
}

size_t kvmk_aml_device_begin(struct kvmk_aml *a, const char *name)
{
	size_t m;

	kvmk_aml_byte(a, AML_EXT);
	kvmk_aml_byte(a, AML_DEVICE);
	m = a->len;
	kvmk_aml_name(a, name);
	return m;
}

size_t kvmk_aml_package_begin(struct kvmk_aml *a, uint8_t nelems)
{
	size_t m;

	kvmk_aml_byte(a, AML_PACKAGE);
	m = a->len;
	kvmk_aml_byte(a, nelems);
	return m;
}

size_t kvmk_aml_method_begin(struct kvmk_aml *a, const char *name, unsigned int nargs,
			     bool serialized)
{
	size_t m;

	if (nargs > 7)
		fail(a, "method with more than 7 arguments");
	kvmk_aml_byte(a, AML_METHOD);
	m = a->len;
	kvmk_aml_name(a, name);
	kvmk_aml_byte(a, (uint8_t)((nargs & 7) | (serialized ? 0x08 : 0)));
	return m;
}

void kvmk_aml_name_decl(struct kvmk_aml *a, const char *name)
{
	kvmk_aml_byte(a, AML_NAME);
	kvmk_aml_name(a, name);
}

void kvmk_aml_return(struct kvmk_aml *a)
{
	kvmk_aml_byte(a, AML_RETURN);
}

/* ---- resource descriptors (ACPI 6.x section 6.4) ---------------------- */

void kvmk_aml_res_io(struct kvmk_aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len)
{
	kvmk_aml_byte(a, 0x47); /* small item, I/O port, 7 bytes */
	kvmk_aml_byte(a, 0x01); /* 16-bit decode */
	le(a, min, 2);
	le(a, max, 2);
	kvmk_aml_byte(a, align);
	kvmk_aml_byte(a, len);
}

void kvmk_aml_res_irq_noflags(struct kvmk_aml *a, unsigned int irq)
{
	if (irq > 15) {
		fail(a, "IRQ descriptor for an IRQ above 15");
		return;
	}
	kvmk_aml_byte(a, 0x22); /* small item, IRQ, 2 bytes: edge, active high */
	le(a, 1u << irq, 2);
}

void kvmk_aml_res_mem32_fixed(struct kvmk_aml *a, uint32_t base, uint32_t len, bool writable)
{
	kvmk_aml_byte(a, 0x86); /* large item, 32-bit fixed memory */
	le(a, 9, 2);
	kvmk_aml_byte(a, writable ? 1 : 0);
	le(a, base, 4);
	le(a, len, 4);
}

void kvmk_aml_res_ext_irq(struct kvmk_aml *a, uint32_t gsi, bool level)
{
	kvmk_aml_byte(a, 0x89); /* large item, extended interrupt */
	le(a, 6, 2);
	/* Bit 0 consumer, bit 1 edge (0: level), bit 2 active low (0: high),
	 * bit 3 shared (0: exclusive). */
	kvmk_aml_byte(a, (uint8_t)(0x01 | (level ? 0 : 0x02)));
	kvmk_aml_byte(a, 1); /* one interrupt */
	le(a, gsi, 4);
}

void kvmk_aml_res_end(struct kvmk_aml *a)
{
	kvmk_aml_byte(a, 0x79); /* end tag; checksum 0: "the sum is fine" */
	kvmk_aml_byte(a, 0x00);
}
