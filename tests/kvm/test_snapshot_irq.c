// SPDX-License-Identifier: MIT
/*
 * Interrupts in flight across a snapshot (issue 12): a level line asserted
 * while its IOAPIC entry is masked is saved with the irqchip's state and,
 * once the restored guest unmasks the entry, delivered exactly once, in
 * both irqchip modes. The guest is irq_lab: its handler program lowers the
 * line through the test device before the EOI, so the level interrupt is
 * taken once per assertion.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvmkit/snapshot.h>

#include "lab.h"

#define PVM_LEVEL_IN_SERVICE                                                   \
	"KVM-PVM acts on a level interrupt's EOI at the first exit after its " \
	"delivery, so a handler that lowers the line through a port takes it twice"

static void level_across_snapshot(enum kvmkit_irqchip_mode mode)
{
	struct kvmkit_machine_config cfg;
	char dir[] = "/tmp/kvmkit-snapirq-XXXXXX";
	struct lab l, r;
	void *image;
	size_t len;
	int gsi;

	chip_mode = mode;
	lab_start(&l, 1);
	lab_cmd(&l, 0, GUEST_LAB_LAPIC_ENABLE, 0, 0, 0);
	lab_cmd(&l, 0, GUEST_LAB_STI, 0, 0, 0);
	gsi = kvmkit_gsi_alloc_line(l.chip);
	lab_op(&l, 0x45, 0, OP_LINE(gsi, 0));
	lab_cmd(&l, 0, GUEST_LAB_IOAPIC_WRITE, (uint64_t)gsi, rte(0x45, 0, true) | RTE_MASKED, 0);
	assert_int_equal(irq_assert(l.chip, (uint32_t)gsi), -1); /* masked: held at the pin */
	lab_expect_count(&l, 0, 0x45, 0);

	assert_non_null(mkdtemp(dir));
	assert_int_equal(kvmkit_vm_pause(l.vm), 0);
	assert_int_equal(kvmkit_machine_snapshot(l.m, dir), 0);
	kvmkit_machine_destroy(l.m);

	/* The restored machine: lab_start's configuration, from the files. */
	assert_int_equal(kvmkit_read_file(guest_path("irq_lab"), &image, &len), 0);
	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = 1;
	cfg.vm.mem_size = 64 << 20;
	cfg.kernel = image;
	cfg.kernel_len = len;
	cfg.irqchip = true;
	cfg.irqchip_mode = mode;
	cfg.testdev = KVMKIT_TESTDEV_ON;
	memset(&r, 0, sizeof(r));
	if (kvmkit_machine_restore(&cfg, dir, &r.m))
		fail_msg("restore: %s", kvmkit_strerror());
	free(image);
	rm_dir(dir);
	r.vm = kvmkit_machine_vm(r.m);
	r.chip = kvmkit_machine_irqchip(r.m);
	r.vcpus = 1;
	assert_int_equal(kvmkit_vm_start(r.vm), 0);
	/* Still held, not delivered by the restore itself. */
	lab_expect_count(&r, 0, 0x45, 0);
	/* The guest unmasks: the saved level is seen and delivered, once. */
	lab_cmd(&r, 0, GUEST_LAB_IOAPIC_WRITE, (uint64_t)gsi, rte(0x45, 0, true), 0);
	lab_expect_count(&r, 0, 0x45, 1);
	/* And the pin works as before: assert again, one more. */
	assert_int_equal(irq_assert(r.chip, (uint32_t)gsi), 1);
	lab_expect_count(&r, 0, 0x45, 2);
	lab_finish(&r);
}

static void test_level_across_snapshot(void **state)
{
	host_quirk(host_is_kvm_pvm(), PVM_LEVEL_IN_SERVICE);
	level_across_snapshot(KVMKIT_IRQCHIP_KERNEL);
	level_across_snapshot(KVMKIT_IRQCHIP_SPLIT);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_across_snapshot),
	};

	test_args(argc, argv);
	require_kvm();
	return cmocka_run_group_tests_name("snapshot_irq", tests, NULL, NULL);
}
