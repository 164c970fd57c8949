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

#endif
