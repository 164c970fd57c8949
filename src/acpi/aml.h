/* SPDX-License-Identifier: MIT */
/*
 * A small AML encoder (ACPI 6.x, section 20 "ACPI Machine Language
 * Specification"): name strings, integers, strings, packages, buffers,
 * scopes, devices, methods, PkgLength, and the resource descriptors a
 * _CRS of kvmkit's devices needs. Internal.
 *
 * Output goes into a growable buffer. A construct with a PkgLength is
 * opened (its opcode written, a mark returned) and closed (the PkgLength
 * for what was written since is inserted at the mark), so nesting needs no
 * size computed in advance. Errors (out of memory, a package over the
 * 2^28-byte limit, a name that is no valid NameString) are sticky: the
 * buffer is marked failed and kvmk_aml_finish() reports it once.
 */
#ifndef KVMKIT_ACPI_AML_H
#define KVMKIT_ACPI_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvmk_aml {
	uint8_t *buf;
	size_t len, cap;
	const char *failed; /* why, or NULL */
};

void kvmk_aml_init(struct kvmk_aml *a);
void kvmk_aml_free(struct kvmk_aml *a);
/* 0, or -EINVAL/-ENOMEM with the thread's error recorded (KVMKIT_ERR_PARAM
 * naming what failed first). */
int kvmk_aml_finish(struct kvmk_aml *a);

void kvmk_aml_bytes(struct kvmk_aml *a, const void *p, size_t n);
void kvmk_aml_byte(struct kvmk_aml *a, uint8_t b);

/* PkgLength for @n bytes following it: the encoded bytes into @out (1 to
 * 4) and their count, or 0 if @n is too long (2^28 - 4 bytes at most). */
unsigned int kvmk_aml_pkglength(size_t n, uint8_t out[4]);

/* NameString: "\\" root prefix, '^' parent prefixes, then 0 or more name
 * segments of 1-4 characters ('A'-'Z', '_', then digits too), separated
 * by '.', padded with '_'. */
void kvmk_aml_name(struct kvmk_aml *a, const char *path);
/* Data objects. */
void kvmk_aml_integer(struct kvmk_aml *a, uint64_t v); /* smallest encoding */
void kvmk_aml_string(struct kvmk_aml *a, const char *s); /* ASCII 1..0x7f */
/* A compressed EISA id, "PNP0501": three letters, four hex digits. */
void kvmk_aml_eisaid(struct kvmk_aml *a, const char *id);
void kvmk_aml_buffer(struct kvmk_aml *a, const void *data, size_t n);

/* Constructs with a PkgLength: begin returns the mark end takes. */
size_t kvmk_aml_scope_begin(struct kvmk_aml *a, const char *name);
size_t kvmk_aml_device_begin(struct kvmk_aml *a, const char *name);
size_t kvmk_aml_package_begin(struct kvmk_aml *a, uint8_t nelems);
size_t kvmk_aml_method_begin(struct kvmk_aml *a, const char *name, unsigned int nargs,
			     bool serialized);
void kvmk_aml_end(struct kvmk_aml *a, size_t mark);

/* Name(NAME, <data object that follows>). */
void kvmk_aml_name_decl(struct kvmk_aml *a, const char *name);
/* Return (<term that follows>). */
void kvmk_aml_return(struct kvmk_aml *a);

/* Resource descriptors (section 6.4), written into @a, which then becomes
 * the contents of a _CRS buffer; kvmk_aml_res_end() adds the end tag. */
void kvmk_aml_res_io(struct kvmk_aml *a, uint16_t min, uint16_t max, uint8_t align, uint8_t len);
void kvmk_aml_res_irq_noflags(struct kvmk_aml *a, unsigned int irq); /* 0..15 */
void kvmk_aml_res_mem32_fixed(struct kvmk_aml *a, uint32_t base, uint32_t len, bool writable);
/* Extended Interrupt: consumer, exclusive, active high; edge or level. */
void kvmk_aml_res_ext_irq(struct kvmk_aml *a, uint32_t gsi, bool level);
void kvmk_aml_res_end(struct kvmk_aml *a);

#endif
