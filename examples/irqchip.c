// SPDX-License-Identifier: MIT
/*
 * The interrupt set-up sequence, step by step: check KVM, create the
 * in-kernel irqchip, route a GSI to an IOAPIC pin, raise and lower the line,
 * send an MSI, and print the statistics. Each step says what it did, or
 * clearly that the host does not support it.
 *
 *   build/examples/irqchip-example
 */
#include <stdio.h>
#include <stdlib.h>

#include <kvmkit/kvmkit.h>
#include <linux/kvm.h>

static int step(const char *what, int r)
{
	if (r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_UNSUPPORTED)
		printf("  %-42s unsupported on this host: %s\n", what, kvmkit_strerror());
	else if (r < 0)
		printf("  %-42s FAILED: %s\n", what, kvmkit_strerror());
	else
		printf("  %-42s ok (%d)\n", what, r);
	return r;
}

int main(void)
{
	struct kvmkit_system *sys;
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm;
	struct kvmkit_irqchip *chip;
	struct kvmkit_gsi_stats st;
	int gsi, r;

	printf("1. KVM\n");
	if (step("open /dev/kvm", kvmkit_system_open(NULL, &sys)) < 0)
		return 1;
	step("KVM_CAP_IRQCHIP", kvmkit_system_check_cap(sys, KVM_CAP_IRQCHIP));
	step("KVM_CAP_IRQ_ROUTING (max routes)", kvmkit_system_check_cap(sys, KVM_CAP_IRQ_ROUTING));
	step("KVM_CAP_IRQ_INJECT_STATUS", kvmkit_system_check_cap(sys, KVM_CAP_IRQ_INJECT_STATUS));
	step("KVM_CAP_IRQFD_RESAMPLE", kvmkit_system_check_cap(sys, KVM_CAP_IRQFD_RESAMPLE));
	kvmkit_system_close(sys);

	printf("2. VM and in-kernel irqchip (before any vCPU)\n");
	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 16 << 20;
	if (step("create VM", kvmkit_vm_create(&cfg, &vm)) < 0)
		return 1;
	r = step("create irqchip (PIC, IOAPIC, LAPIC, PIT)", kvmkit_irqchip_create(vm, NULL, &chip));
	if (r < 0) {
		kvmkit_vm_destroy(vm);
		return 1;
	}
	printf("     IOAPIC pins %u, routing capacity %u\n", kvmkit_irqchip_pins(chip),
	       kvmkit_irqchip_route_capacity(chip));
	step("create vCPU 0", kvmkit_vm_create_vcpu(vm, 0, NULL));

	printf("3. Route a device GSI to an IOAPIC pin\n");
	gsi = step("allocate a device line (16..23)", kvmkit_gsi_alloc_line(chip));
	if (gsi >= 0 && step("stage gsi -> IOAPIC pin",
			     kvmkit_irq_route_irqchip(chip, (uint32_t)gsi, KVMKIT_IRQCHIP_IOAPIC,
						      (uint32_t)gsi)) == 0)
		step("commit the table (KVM_SET_GSI_ROUTING)", kvmkit_irq_routes_commit(chip));

	printf("4. Raise and lower the line (no guest has unmasked the pin yet)\n");
	if (gsi >= 0) {
		struct kvmkit_irq_status ist;

		if (step("assert", kvmkit_irq_line(chip, (uint32_t)gsi, true, &ist)) == 0)
			printf("  %-42s %s%s\n", "  status", kvmkit_irq_result_name(ist.result),
			       ist.result == KVMKIT_IRQ_MASKED ? " (expected: pin masked at reset)"
							       : "");
		step("deassert", kvmkit_irq_line(chip, (uint32_t)gsi, false, NULL));
	}

	printf("5. MSI\n");
	step("KVM_SIGNAL_MSI to APIC 0, vector 0x40", kvmkit_signal_msi(chip, 0xfee00000, 0x40, -1, NULL));
	step("MSI with device id", kvmkit_signal_msi(chip, 0xfee00000, 0x40, 0x0008, NULL));

	printf("6. Statistics\n");
	if (gsi >= 0 && kvmkit_irq_gsi_stats(chip, (uint32_t)gsi, &st) == 0)
		printf("  gsi %d: asserts %llu, delivered %llu, coalesced %llu, masked %llu\n", gsi,
		       (unsigned long long)st.asserts, (unsigned long long)st.deliveries,
		       (unsigned long long)st.coalesced, (unsigned long long)st.masked);
	kvmkit_vm_destroy(vm);
	return 0;
}
