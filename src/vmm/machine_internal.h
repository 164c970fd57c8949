/* SPDX-License-Identifier: MIT */
/*
 * What the snapshot module (src/migration/) needs from a machine beyond
 * the public API. Internal.
 */
#ifndef KVMKIT_VMM_MACHINE_INTERNAL_H
#define KVMKIT_VMM_MACHINE_INTERNAL_H

#include <stdbool.h>

#include <kvmkit/machine.h>

/* kvmkit_machine_create() without a guest image: the VM, irqchip, vCPUs and
 * devices of @cfg (cfg->kernel unused; testdev must be ON or OFF), RAM left
 * as the VM config makes it. For a restore, which brings its own state. */
int kvmk_machine_create_bare(const struct kvmkit_machine_config *cfg, struct kvmkit_machine **out);
/* Whether the machine has the test device. */
bool kvmk_machine_has_testdev(const struct kvmkit_machine *m);

#endif
