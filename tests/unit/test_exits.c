// SPDX-License-Identifier: MIT
/* The vCPU exit decoder fed synthetic kvm_run records (no KVM): how a
 * system event (power off, reset, crash, others) stops the VM. */
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

static void test_stop_reason_names(void **state)
{
	/* Every stop reason has a name (the CLI prints it). */
	for (int r = KVMKIT_STOP_NONE; r <= KVMKIT_STOP_GUEST_CRASH; r++) {
		assert_non_null(kvmkit_stop_reason_name(r));
		assert_string_not_equal(kvmkit_stop_reason_name(r), "?");
	}
	assert_string_equal(kvmkit_stop_reason_name(KVMKIT_STOP_HOST_ERROR), "host error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_events),
		cmocka_unit_test(test_stop_reason_names),
	};

	return cmocka_run_group_tests_name("exits", tests, NULL, NULL);
}
