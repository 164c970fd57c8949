/* SPDX-License-Identifier: MIT */
/*
 * The snapshot state file (docs/SNAPSHOT.md): a parser that checks a file
 * whole (magic, version, CRC-32, then every field and section) without
 * any KVM call, so that the fuzz target and the unit tests drive it alone,
 * and the writer that produces it. Internal.
 */
#ifndef KVMKIT_MIGRATION_SNAP_FORMAT_H
#define KVMKIT_MIGRATION_SNAP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include <kvmkit/vm.h>

#include "core/internal.h"

#define KVMK_SNAP_MAGIC "KVMKSNAP"
#define KVMK_SNAP_VERSION 1u
#define KVMK_SNAP_MAX_REGIONS 64u
#define KVMK_SNAP_MAX_VCPUS 4096u
#define KVMK_SNAP_PAGE 4096u

/* header.machine_flags */
#define KVMK_SNAP_F_TESTDEV (1u << 0)

enum kvmk_snap_tag {
	KVMK_SNAP_SEC_CLOCK = 1,
	KVMK_SNAP_SEC_IRQCHIP = 2,
	KVMK_SNAP_SEC_VCPU = 3,
	KVMK_SNAP_SEC_DEVICES = 4,
};

struct kvmk_snap_region {
	uint64_t gpa, size, file_off;
	uint32_t flags, slot;
};

struct kvmk_snap_ref {
	const uint8_t *p; /* into the parsed buffer */
	size_t len;
};

struct kvmk_snap {
	uint32_t version;
	uint32_t arch; /* enum kvmkit_arch */
	uint32_t vcpus;
	uint32_t irqchip; /* 0: none, else 1 + enum kvmkit_irqchip_mode */
	uint32_t machine_flags;
	uint64_t mem_size;
	uint32_t nr_regions;
	struct kvmk_snap_region regions[KVMK_SNAP_MAX_REGIONS];
	uint64_t clock; /* KVM_GET_CLOCK */
	uint32_t clock_flags;
	struct kvmk_snap_ref irqchip_blob, devices_blob;
	struct kvmk_snap_ref *vcpu; /* vcpus entries, by id; malloc'ed by parse */
};

/* Checks @buf (@len bytes) whole and fills @s with pointers into it; the
 * buffer must outlive @s. KVMKIT_ERR_FORMAT for anything malformed. Call
 * kvmk_snap_release() after success. */
int kvmk_snap_parse(const void *buf, size_t len, struct kvmk_snap *s);
void kvmk_snap_release(struct kvmk_snap *s);
/* The file for @s (every section it names), CRC included, into @out. */
int kvmk_snap_build(const struct kvmk_snap *s, struct kvmk_blob *out);
/* Bytes the memory file holds: the sum of the region sizes. */
uint64_t kvmk_snap_memory_len(const struct kvmk_snap *s);

#endif
