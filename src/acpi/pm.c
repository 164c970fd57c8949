// SPDX-License-Identifier: MIT
/*
 * The registers the FADT points at, and the i8042's reset: a guest's
 * poweroff (S5 through the sleep control register) and reboot (the reset
 * register, or command 0xfe to the keyboard controller) and panic (QEMU's
 * pvpanic protocol) stop the VM with the reason `kvmkit run` maps to its
 * exit status (0, 118 and 119).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "acpi-pm"
#include "core/internal.h"
#include "acpi/acpi.h"
#include <kvmkit/vm.h>

struct kvmk_acpi_pm {
	struct kvmkit_vm *vm;
	bool pm_on, data_on, cmd_on; /* ranges registered */
};

#define WAK_STS 0x80

static void pm_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	uint8_t v = 0;

	/* The sleep status reads "awake": a guest entering a state kvmkit
	 * does not have (only S5 is declared) does not wait for good. */
	if (off == KVMK_ACPI_SLEEP_STATUS - KVMK_ACPI_PM_PORT)
		v = WAK_STS;
	/* pvpanic: the events this device takes. */
	if (off == KVMK_ACPI_PVPANIC - KVMK_ACPI_PM_PORT)
		v = KVMK_PVPANIC_PANICKED | KVMK_PVPANIC_CRASH_LOADED;
	memset(data, 0, size);
	memcpy(data, &v, 1);
}

static void pm_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmk_acpi_pm *pm = opaque;
	uint8_t v;

	memcpy(&v, data, 1);
	kvmk_debug("write 0x%x to port 0x%llx", v, (unsigned long long)(KVMK_ACPI_PM_PORT + off));
	switch (off) {
	case KVMK_ACPI_SLEEP_CONTROL - KVMK_ACPI_PM_PORT:
		if (!(v & KVMK_ACPI_SLP_EN))
			return;
		if (((v >> 2) & 7) == KVMK_ACPI_S5_TYPE) {
			kvmkit_vm_request_stop(pm->vm, KVMKIT_STOP_GUEST_EXIT, 0,
					       "ACPI S5 power-off");
			return;
		}
		kvmk_debug("sleep type %u ignored (only S5 is declared)", (v >> 2) & 7);
		return;
	case KVMK_ACPI_RESET_REG - KVMK_ACPI_PM_PORT:
		if (v == KVMK_ACPI_RESET_VALUE)
			kvmkit_vm_request_stop(pm->vm, KVMKIT_STOP_GUEST_RESET, 0,
					       "ACPI reset register");
		return;
	case KVMK_ACPI_PVPANIC - KVMK_ACPI_PM_PORT:
		if (v & KVMK_PVPANIC_PANICKED)
			kvmkit_vm_request_stop(pm->vm, KVMKIT_STOP_GUEST_CRASH, 0,
					       "pvpanic: the guest kernel panicked");
		else if (v & KVMK_PVPANIC_CRASH_LOADED)
			kvmk_info("pvpanic: the guest loaded its crash kernel");
		return;
	default:
		return; /* writes to the status register clear nothing kvmkit keeps */
	}
}

/* The i8042: status reads 0 (both buffers empty, so a driver's wait for
 * the input buffer ends at once), data reads 0; only the reset command
 * does anything. */
static void kbd_read(void *opaque, uint64_t off, void *data, unsigned int size)
{
	memset(data, 0, size);
}

static void kbd_cmd_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
	struct kvmk_acpi_pm *pm = opaque;
	uint8_t v;

	memcpy(&v, data, 1);
	kvmk_debug("i8042 command 0x%x", v);
	if (v == KVMK_I8042_RESET)
		kvmkit_vm_request_stop(pm->vm, KVMKIT_STOP_GUEST_RESET, 0,
				       "i8042 reset (command 0xfe)");
}

static void kbd_data_write(void *opaque, uint64_t off, const void *data, unsigned int size)
{
}

static const struct kvmkit_io_ops pm_ops = { .read = pm_read, .write = pm_write };
static const struct kvmkit_io_ops kbd_cmd_ops = { .read = kbd_read, .write = kbd_cmd_write };
static const struct kvmkit_io_ops kbd_data_ops = { .read = kbd_read, .write = kbd_data_write };

int kvmk_acpi_pm_create(struct kvmkit_vm *vm, struct kvmk_acpi_pm **out)
{
	struct kvmkit_bus *bus = kvmkit_vm_pio_bus(vm);
	struct kvmk_acpi_pm *pm = calloc(1, sizeof(*pm));
	int r;

	if (!pm)
		return kvmk_err_resource("kvmk_acpi_pm_create", ENOMEM, NULL);
	pm->vm = vm;
	r = kvmkit_bus_register(bus, KVMK_ACPI_PM_PORT, KVMK_ACPI_PM_LEN, "acpi-pm", &pm_ops, pm);
	pm->pm_on = !r;
	if (!r)
		r = kvmkit_bus_register(bus, KVMK_I8042_DATA, 1, "i8042-data", &kbd_data_ops, pm);
	pm->data_on = pm->pm_on && !r;
	if (!r)
		r = kvmkit_bus_register(bus, KVMK_I8042_CMD, 1, "i8042-cmd", &kbd_cmd_ops, pm);
	pm->cmd_on = pm->data_on && !r;
	if (r) {
		kvmk_acpi_pm_destroy(pm);
		return r;
	}
	*out = pm;
	return 0;
}

void kvmk_acpi_pm_destroy(struct kvmk_acpi_pm *pm)
{
	struct kvmkit_bus *bus;
	struct kvmkit_error saved;

	if (!pm)
		return;
	kvmk_err_save(&saved);
	bus = kvmkit_vm_pio_bus(pm->vm);
	if (pm->cmd_on)
		kvmkit_bus_unregister(bus, KVMK_I8042_CMD);
	if (pm->data_on)
		kvmkit_bus_unregister(bus, KVMK_I8042_DATA);
	if (pm->pm_on)
		kvmkit_bus_unregister(bus, KVMK_ACPI_PM_PORT);
	free(pm);
	kvmk_err_restore(&saved);
}
