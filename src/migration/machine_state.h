/* SPDX-License-Identifier: MIT */
/*
 * A machine's state as the snapshot saves it, for the other user of that
 * serialisation, live migration: snapshot.c gathers and applies it, and
 * the migration streams the same state file (snap_format.h) in one record.
 * Internal.
 */
#ifndef KVMKIT_MIGRATION_MACHINE_STATE_H
#define KVMKIT_MIGRATION_MACHINE_STATE_H

#include <kvmkit/machine.h>

#include "migration/snap_format.h"

/* The description and every state blob of @m (PAUSED or STOPPED) into @s:
 * the VM clock, the irqchip, each vCPU, the devices, the RAM layout (each
 * region's file_off as a snapshot's memory file would lay it). Free with
 * kvmk_snap_gathered_free(), on failure too. */
int kvmk_snap_gather(struct kvmkit_machine *m, struct kvmk_snap *s);
void kvmk_snap_gathered_free(struct kvmk_snap *s);
/* The irqchip, every vCPU, the devices, then the VM clock, from a parsed
 * @s, into @m built for it and not started. */
int kvmk_snap_apply(struct kvmkit_machine *m, const struct kvmk_snap *s);

/* A machine as a state file or a source's hello describes it, and who
 * describes it in the words of the errors (machine_check.c). */
struct kvmk_saved_machine {
	const char *op; /* the public call the errors name */
	const char *whose; /* "snapshot": the vCPUs differ from the snapshot's */
	const char *place; /* "in the snapshot": 2 here, 1 in the snapshot */
	const char *kind; /* "snapshot": snapshot of architecture 2 */
	uint32_t arch, vcpus, irqchip; /* as in struct kvmk_snap */
	uint64_t mem_size;
	uint32_t nr_regions;
	uint64_t gpa[KVMK_SNAP_MAX_REGIONS], size[KVMK_SNAP_MAX_REGIONS];
};

/* @d's architecture is this host's and its vCPU count, RAM size and
 * irqchip are @cfg's; else KVMKIT_ERR_FORMAT or _PARAM naming the field. */
int kvmk_saved_check_config(const struct kvmk_saved_machine *d,
			    const struct kvmkit_machine_config *cfg);
/* @vm (built for @d) has @d's RAM regions, in the same order. */
int kvmk_saved_check_layout(const struct kvmk_saved_machine *d, struct kvmkit_vm *vm);

#endif
