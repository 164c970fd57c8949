// SPDX-License-Identifier: MIT
/* The vCPU exit decoder fed synthetic kvm_run records (no KVM): how a
 * system event (power off, reset, crash, others) stops the VM, and which
 * PIO records are malformed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "fake_vcpu.h"

static void system_event(struct fake_vcpu *f, uint32_t type, uint64_t data0)
{
	struct kvm_run *run = f->vcpu.run;

	fake_vcpu_reset_stop(f);
	memset(run, 0, sizeof(*run));
	run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	run->system_event.type = type;
	run->system_event.ndata = 1;
	run->system_event.data[0] = data0;
	assert_int_equal(kvmk_vcpu_handle_exit(&f->vcpu), -EIO);
	assert_true(f->vm.stop_req);
}

static void test_system_events(void **state)
{
	struct fake_vcpu f;

	assert_int_equal(fake_vcpu_init(&f), 0);

	/* Reset and crash are not clean exits: each has its own reason, with
	 * the vCPU and the exit recorded. */
	system_event(&f, KVM_SYSTEM_EVENT_RESET, 0x1234);
	assert_int_equal(f.vm.stop.reason, KVMKIT_STOP_GUEST_RESET);
	assert_int_equal(f.vm.stop.vcpu, 0);
	assert_int_equal(f.vm.stop.exit_reason, KVM_EXIT_SYSTEM_EVENT);
	assert_non_null(strstr(f.vm.stop.detail, "reset"));
	assert_non_null(strstr(f.vm.stop.detail, "0x1234"));
	assert_string_equal(kvmkit_stop_reason_name(f.vm.stop.reason), "guest reset");

	system_event(&f, KVM_SYSTEM_EVENT_CRASH, 0);
	assert_int_equal(f.vm.stop.reason, KVMKIT_STOP_GUEST_CRASH);
	assert_int_equal(f.vm.stop.vcpu, 0);
	assert_non_null(strstr(f.vm.stop.detail, "crash"));
	assert_string_equal(kvmkit_stop_reason_name(f.vm.stop.reason), "guest crash");

	/* Power off: a clean exit, status 0. */
	system_event(&f, KVM_SYSTEM_EVENT_SHUTDOWN, 0);
	assert_int_equal(f.vm.stop.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(f.vm.stop.status, 0);
	assert_non_null(strstr(f.vm.stop.detail, "power off"));

	/* Any other type (arm64's WAKEUP and SUSPEND, SEV termination, or a
	 * future one) is not understood: unhandled, with the type. */
	system_event(&f, KVM_SYSTEM_EVENT_WAKEUP, 0);
	assert_int_equal(f.vm.stop.reason, KVMKIT_STOP_UNHANDLED_EXIT);
	assert_non_null(strstr(f.vm.stop.detail, "type 4"));
	system_event(&f, 0xdeadbeef, 0);
	assert_int_equal(f.vm.stop.reason, KVMKIT_STOP_UNHANDLED_EXIT);
	assert_non_null(strstr(f.vm.stop.detail, "type 3735928559"));

	fake_vcpu_free(&f);
}

static unsigned int dev_calls;
static uint64_t dev_last_off;

static void dev_read(void *opaque, uint64_t off, void *buf, unsigned int sz)
{
	dev_calls++;
	dev_last_off = off;
	memset(buf, 0x5a, sz);
}

static void dev_write(void *opaque, uint64_t off, const void *buf, unsigned int sz)
{
	dev_calls++;
	dev_last_off = off;
}

static const struct kvmkit_io_ops dev_ops = { dev_read, dev_write };

/* A PIO exit as KVM would hand it over: data in the page after the
 * kvm_run struct. */
static int pio_exit(struct fake_vcpu *f, uint8_t dir, uint8_t size, uint16_t port, uint32_t count,
		    uint64_t data_offset)
{
	struct kvm_run *run = f->vcpu.run;

	fake_vcpu_reset_stop(f);
	memset(run, 0, sizeof(*run));
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = dir;
	run->io.size = size;
	run->io.port = port;
	run->io.count = count;
	run->io.data_offset = data_offset;
	dev_calls = 0;
	return kvmk_vcpu_handle_exit(&f->vcpu);
}

static void test_pio_records(void **state)
{
	struct fake_vcpu f;

	assert_int_equal(fake_vcpu_init(&f), 0);
	assert_int_equal(kvmkit_bus_register(f.vm.pio, 0x3f8, 8, "fake", &dev_ops, NULL), 0);

	/* A well-formed rep read reaches the device count times. */
	assert_int_equal(pio_exit(&f, KVM_EXIT_IO_IN, 1, 0x3fa, 100, 4096), 0);
	assert_int_equal(dev_calls, 100);
	assert_int_equal(dev_last_off, 2);
	assert_false(f.vm.stop_req);

	/* Data inside struct kvm_run: the device's reads would overwrite the
	 * port mid-rep (the fuzz-exits finding). Malformed. */
	assert_int_equal(pio_exit(&f, KVM_EXIT_IO_IN, 2, 0x3fa, 2560, 0), -EIO);
	assert_int_equal(dev_calls, 0);
	assert_int_equal(f.vm.stop.reason, KVMKIT_STOP_INTERNAL_ERROR);
	assert_int_equal(pio_exit(&f, KVM_EXIT_IO_IN, 1, 0x3f8, 1, sizeof(struct kvm_run) - 1),
			 -EIO);
	assert_int_equal(pio_exit(&f, KVM_EXIT_IO_IN, 1, 0x3f8, 1, sizeof(struct kvm_run)), 0);
	/* A direction that is neither in nor out. */
	assert_int_equal(pio_exit(&f, 2, 1, 0x3f8, 1, 4096), -EIO);
	assert_int_equal(dev_calls, 0);
	/* Past the run area. */
	assert_int_equal(pio_exit(&f, KVM_EXIT_IO_OUT, 4, 0x3f8, 1, FAKE_RUN_SIZE - 3), -EIO);
	assert_int_equal(pio_exit(&f, KVM_EXIT_IO_OUT, 4, 0x3f8, 1, FAKE_RUN_SIZE - 4), 0);
	assert_int_equal(dev_calls, 1);

	fake_vcpu_free(&f);
}

static void test_stop_reason_names(void **state)
{
	/* Every stop reason has a name (the CLI prints it). */
	for (int r = KVMKIT_STOP_NONE; r <= KVMKIT_STOP_GUEST_CRASH; r++) {
		assert_non_null(kvmkit_stop_reason_name(r));
		assert_string_not_equal(kvmkit_stop_reason_name(r), "?");
	}
	assert_string_equal(kvmkit_stop_reason_name(KVMKIT_STOP_HOST_ERROR), "host-side failure");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_events),
		cmocka_unit_test(test_pio_records),
		cmocka_unit_test(test_stop_reason_names),
	};

	return cmocka_run_group_tests_name("exits", tests, NULL, NULL);
}
