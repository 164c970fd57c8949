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

/* Linux guests (linux.c): the checks before any VM exists, and the boot:
 * ACPI tables for this machine with the MMIO devices @devs, then the
 * kernel. */
struct kvmk_acpi_mmio_dev;
struct kvmkit_vm;
int kvmk_machine_check_linux(const struct kvmkit_machine_config *cfg);
/* Adds an MMIO device to those a Linux guest finds in the DSDT; from a
 * device's create (machine.c's table), before the guest is loaded. */
int kvmk_machine_declare_mmio(struct kvmkit_machine *m, const struct kvmk_acpi_mmio_dev *dev);
int kvmk_machine_boot_linux(struct kvmkit_vm *vm, const struct kvmkit_machine_config *cfg,
			    const struct kvmk_acpi_mmio_dev *devs, unsigned int ndevs);

#endif
