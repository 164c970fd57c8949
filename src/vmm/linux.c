// SPDX-License-Identifier: MIT
/*
 * A machine's Linux boot: the ACPI tables describing this machine (its
 * vCPUs, COM1, the MMIO devices it lists) written at KVMK_ACPI_BASE, the
 * command line (with virtio_mmio.device= entries if asked), then the
 * kernel through the bzImage or PVH loader with the RSDP's address, and a
 * reset stub at the BIOS reset entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "machine"
#include "core/internal.h"
#include "acpi/acpi.h"
#include "vmm/machine_internal.h"
#include <kvmkit/kvmkit.h>

/*
 * What a BIOS has at its reset entry f000:fff0 (0xffff0): Linux's last
 * resort when the reset register and the i8042 were not tried or did not
 * work (with a hardware-reduced FADT it goes "EFI", then real mode to
 * f000:fff0) jumps there. kvmkit's asks the i8042 for a reset:
 * mov al, 0xfe; out 0x64, al; then cli; hlt in a loop.
 */
static const uint8_t reset_stub[] = { 0xb0, 0xfe, 0xe6, 0x64, 0xfa, 0xf4, 0xeb, 0xfd };
#define RESET_VECTOR 0xffff0ULL

int kvmk_machine_check_linux(const struct kvmkit_machine_config *cfg)
{
	if (!cfg->irqchip)
		return kvmk_err_param("kvmkit_machine_create", "irqchip",
				      "a Linux guest needs an irqchip (LAPICs, IOAPIC)", "none");
	return kvmkit_boot_check_linux(cfg->kernel, cfg->kernel_len, cfg->vm.mem_size, cfg->cmdline,
				       cfg->initrd ? cfg->initrd_len : 0);
}

int kvmk_machine_boot_linux(struct kvmkit_vm *vm, const struct kvmkit_machine_config *cfg,
			    const struct kvmk_acpi_mmio_dev *devs, unsigned int ndevs)
{
	struct kvmk_acpi_config acfg = { kvmkit_vm_config(vm)->vcpus, true, true, devs, ndevs };
	struct kvmkit_linux_boot boot = { cfg->kernel,	   cfg->kernel_len, cfg->initrd,
					  cfg->initrd_len, cfg->cmdline,    KVMK_ACPI_BASE };
	size_t area = KVMK_ACPI_END - KVMK_ACPI_BASE;
	struct kvmk_acpi_tables t;
	char *line = NULL;
	uint8_t *tables;
	int r;

	tables = calloc(1, area);
	if (!tables)
		return kvmk_err_resource("kvmkit_machine_create", ENOMEM, "ACPI tables");
	r = kvmk_acpi_build(&acfg, KVMK_ACPI_BASE, tables, area, &t);
	if (!r && cfg->virtio_mmio_cmdline && ndevs) {
		const char *append = cfg->cmdline ? cfg->cmdline : "";
		size_t n = strlen(append) + (size_t)ndevs * 64 + 2;

		line = malloc(n);
		if (!line) {
			r = kvmk_err_resource("kvmkit_machine_create", ENOMEM, "command line");
		} else {
			int k = snprintf(line, n, "%s%s", append, append[0] ? " " : "");

			r = kvmk_acpi_virtio_cmdline(devs, ndevs, line + k, n - (size_t)k);
			r = r < 0 ? r : 0;
			boot.cmdline = line;
		}
	}
	/* The loader checks everything before it writes; the tables go in
	 * last, into the reserved legacy area no loader uses. */
	if (!r)
		r = kvmkit_boot_linux(vm, &boot);
	if (!r)
		r = kvmkit_vm_write(vm, KVMK_ACPI_BASE, tables, t.len);
	if (!r)
		r = kvmkit_vm_write(vm, RESET_VECTOR, reset_stub, sizeof(reset_stub));
	if (!r)
		kvmk_debug("ACPI tables at 0x%llx, %zu bytes, %u MMIO device(s)",
			   (unsigned long long)KVMK_ACPI_BASE, t.len, ndevs);
	free(line);
	free(tables);
	return r;
}
