// SPDX-License-Identifier: MIT
/* Lifecycle transitions, slot allocation, error records, logging. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include <kvmkit/kvmkit.h>
#include "core/internal.h"
#include "kvm/kvm_internal.h"

static const char *const ops[] = { "start", "pause", "resume", "stop" };

/* Expected result of every (state, op) pair: the target state, or -1. */
static const int expected[5][4] = {
	/*               start                pause               resume              stop */
	[KVMKIT_VM_CREATED] = { KVMKIT_VM_RUNNING, -1, -1, -1 },
	[KVMKIT_VM_RUNNING] = { -1, KVMKIT_VM_PAUSED, -1, KVMKIT_VM_STOPPED },
	[KVMKIT_VM_PAUSED] = { -1, -1, KVMKIT_VM_RUNNING, KVMKIT_VM_STOPPED },
	[KVMKIT_VM_STOPPED] = { -1, -1, -1, -1 },
	[KVMKIT_VM_ERROR] = { -1, -1, -1, -1 },
};

static void test_transitions(void **state)
{
	for (int s = KVMKIT_VM_CREATED; s <= KVMKIT_VM_ERROR; s++) {
		for (unsigned int o = 0; o < 4; o++) {
			enum kvmkit_vm_state to = 99;
			int r = kvmkit_vm_check_transition(s, ops[o], &to);

			if (expected[s][o] >= 0) {
				assert_int_equal(r, 0);
				assert_int_equal(to, expected[s][o]);
				continue;
			}
			assert_int_equal(r, -EBUSY);
			const struct kvmkit_error *e = kvmkit_last_error();

			assert_int_equal(e->kind, KVMKIT_ERR_STATE);
			assert_string_equal(e->op, ops[o]);
			assert_string_equal(e->value, kvmkit_vm_state_name(s));
			assert_int_equal(to, 99);
			/* The one-line form names the current and the expected state. */
			assert_non_null(strstr(kvmkit_strerror(), kvmkit_vm_state_name(s)));
			assert_non_null(strstr(kvmkit_strerror(), "expected"));
		}
	}
	assert_int_equal(kvmkit_vm_check_transition(KVMKIT_VM_RUNNING, "explode", NULL), -EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
}

static void test_slots(void **state)
{
	struct kvmk_region regions[8];

	memset(regions, 0, sizeof(regions));
	assert_int_equal(kvmk_region_pick_slot(regions, 8, 4, 0, 0x10000), 0);
	regions[0] = (struct kvmk_region){ .used = true, .slot = 0, .gpa = 0, .size = 0x10000 };
	assert_int_equal(kvmk_region_pick_slot(regions, 8, 4, 0x10000, 0x1000), 1);
	regions[1] =
		(struct kvmk_region){ .used = true, .slot = 1, .gpa = 0x10000, .size = 0x1000 };
	/* Overlap with either region is refused and names the slot. */
	assert_int_equal(kvmk_region_pick_slot(regions, 8, 4, 0xf000, 0x2000), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "slot 0"));
	assert_int_equal(kvmk_region_pick_slot(regions, 8, 4, 0x10fff, 1), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "slot 1"));
	/* Fill up to max_slots = 4. */
	regions[2] =
		(struct kvmk_region){ .used = true, .slot = 2, .gpa = 0x20000, .size = 0x1000 };
	regions[3] =
		(struct kvmk_region){ .used = true, .slot = 3, .gpa = 0x30000, .size = 0x1000 };
	assert_int_equal(kvmk_region_pick_slot(regions, 8, 4, 0x40000, 0x1000), -ENOSPC);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_RESOURCE);
	/* A freed slot is reused first. */
	regions[1].used = false;
	assert_int_equal(kvmk_region_pick_slot(regions, 8, 4, 0x40000, 0x1000), 1);
	/* The host may allow fewer slots than kvmkit's table. */
	memset(regions, 0, sizeof(regions));
	assert_int_equal(kvmk_region_pick_slot(regions, 8, 0, 0, 0x1000), -ENOSPC);
}

static void test_error_lines(void **state)
{
	struct kvmkit_error e = { .kind = KVMKIT_ERR_IOCTL, .err = EINVAL };
	char buf[256];

	strcpy(e.op, "KVM_CREATE_VCPU");
	strcpy(e.reason, "vcpu id=9");
	kvmkit_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf,
			    "ioctl KVM_CREATE_VCPU failed: Invalid argument (EINVAL) [vcpu id=9]");

	memset(&e, 0, sizeof(e));
	e.kind = KVMKIT_ERR_PARAM;
	strcpy(e.op, "kvmkit_vm_create");
	strcpy(e.name, "vcpus");
	strcpy(e.value, "0");
	strcpy(e.reason, "must be at least 1");
	kvmkit_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "kvmkit_vm_create: invalid vcpus '0': must be at least 1");

	memset(&e, 0, sizeof(e));
	e.kind = KVMKIT_ERR_UNSUPPORTED;
	e.err = ENOENT;
	strcpy(e.op, "open");
	strcpy(e.reason, "/dev/kvm: KVM is not available on this host");
	kvmkit_error_format(&e, buf, sizeof(buf));
	assert_string_equal(
		buf,
		"open: unsupported: /dev/kvm: KVM is not available on this host: No such file or directory (ENOENT)");

	/* Short buffers are truncated, never overrun. */
	assert_true(kvmkit_error_format(&e, buf, 8) > 8);
	assert_int_equal(strlen(buf), 7);

	kvmkit_error_clear();
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_NONE);
	assert_string_equal(kvmkit_strerror(), "no error");
	assert_string_equal(kvmkit_error_kind_name(KVMKIT_ERR_STATE), "invalid-state");
}

static void *other_thread(void *arg)
{
	/* A fresh thread starts with no error, and its failure stays its own. */
	int *ok = arg;

	*ok = kvmkit_last_error()->kind == KVMKIT_ERR_NONE;
	kvmkit_vm_check_transition(KVMKIT_VM_STOPPED, "start", NULL);
	*ok &= kvmkit_last_error()->kind == KVMKIT_ERR_STATE;
	return NULL;
}

static void test_error_thread_local(void **state)
{
	pthread_t t;
	int ok = 0;

	kvmkit_error_clear();
	kvmkit_vm_check_transition(KVMKIT_VM_RUNNING, "nope", NULL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	assert_int_equal(pthread_create(&t, NULL, other_thread, &ok), 0);
	pthread_join(t, NULL);
	assert_true(ok);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
}

static unsigned int sink_calls;
static char sink_last[128];

static void sink(enum kvmkit_log_level level, const char *module, const char *msg, void *opaque)
{
	sink_calls++;
	snprintf(sink_last, sizeof(sink_last), "%s:%s:%s", kvmkit_log_level_name(level), module,
		 msg);
}

static void test_logging(void **state)
{
	enum kvmkit_log_level l;

	assert_int_equal(kvmkit_log_parse_level("debug", &l), 0);
	assert_int_equal(l, KVMKIT_LOG_DEBUG);
	assert_int_equal(kvmkit_log_parse_level("TRACE", &l), 0);
	assert_int_equal(l, KVMKIT_LOG_TRACE);
	assert_int_equal(kvmkit_log_parse_level("2", &l), 0);
	assert_int_equal(l, KVMKIT_LOG_INFO);
	assert_int_equal(kvmkit_log_parse_level("loud", &l), -EINVAL);
	assert_int_equal(kvmkit_log_parse_level(NULL, &l), -EINVAL);

	kvmkit_log_set_sink(sink, NULL);
	kvmkit_log_set_level(KVMKIT_LOG_WARN);
	kvmkit_log(KVMKIT_LOG_INFO, "test", "hidden %d", 1);
	assert_int_equal(sink_calls, 0);
	kvmkit_log(KVMKIT_LOG_ERROR, "test", "shown %d", 2);
	assert_int_equal(sink_calls, 1);
	assert_string_equal(sink_last, "error:test:shown 2");
	kvmkit_log_set_level(KVMKIT_LOG_TRACE);
	kvmkit_log(KVMKIT_LOG_TRACE, "test", "now shown");
	assert_int_equal(sink_calls, 2);
	kvmkit_log_set_sink(NULL, NULL);
	kvmkit_log_set_level(KVMKIT_LOG_WARN);
}

/* A sink may log and may swap the sink: it runs under kvmkit's log lock,
 * which must not be taken again on the same thread. */
static unsigned int nested_calls;

static void nested_sink(enum kvmkit_log_level level, const char *module, const char *msg,
			void *opaque)
{
	nested_calls++;
	kvmkit_log(KVMKIT_LOG_ERROR, "test", "from inside the sink (goes to stderr)");
	if (nested_calls == 2)
		kvmkit_log_set_sink(NULL, NULL);
}

static void test_log_sink_reentry(void **state)
{
	kvmkit_log_set_sink(nested_sink, NULL);
	kvmkit_log(KVMKIT_LOG_ERROR, "test", "one");
	assert_int_equal(nested_calls, 1);
	kvmkit_log(KVMKIT_LOG_ERROR, "test", "two");
	assert_int_equal(nested_calls, 2);
	/* The sink removed itself: this goes to stderr. */
	kvmkit_log(KVMKIT_LOG_ERROR, "test", "three");
	assert_int_equal(nested_calls, 2);
}

/* A state error may carry another errno than EBUSY (EDEADLK: a call that
 * would wait for its own thread). */
static void test_state_error_code(void **state)
{
	assert_int_equal(kvmk_err_state_code(EDEADLK, "caller", "a vCPU thread of this VM",
					     "another thread", "stop"),
			 -EDEADLK);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_STATE);
	assert_int_equal(kvmkit_last_error()->err, EDEADLK);
	assert_string_equal(kvmkit_strerror(), "stop: invalid state: caller is a vCPU thread of "
					       "this VM, expected another thread");
	assert_int_equal(kvmk_err_state("vm", "created", "running", "pause"), -EBUSY);
	assert_int_equal(kvmkit_last_error()->err, EBUSY);
}

static void test_no_kvm_path(void **state)
{
	struct kvmkit_system *sys = NULL;

	/* A missing device is reported as unsupported, with the path. */
	assert_int_equal(kvmkit_system_open("/nonexistent/kvm", &sys), -ENOENT);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_UNSUPPORTED);
	assert_non_null(strstr(kvmkit_strerror(), "/nonexistent/kvm"));
	assert_null(sys);
	/* /dev/null is not KVM: the API version ioctl fails. */
	assert_true(kvmkit_system_open("/dev/null", &sys) < 0);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_IOCTL);
	assert_non_null(strstr(kvmkit_strerror(), "KVM_GET_API_VERSION"));
}

static void test_vm_config_errors(void **state)
{
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm = NULL;

	/* Checked before /dev/kvm is opened: valid everywhere. */
	kvmkit_vm_config_init(&cfg);
	cfg.vcpus = 0;
	assert_int_equal(kvmkit_vm_create(&cfg, &vm), -EINVAL);
	assert_string_equal(kvmkit_last_error()->name, "vcpus");
	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 0;
	assert_int_equal(kvmkit_vm_create(&cfg, &vm), -EINVAL);
	assert_string_equal(kvmkit_last_error()->name, "mem_size");
	cfg.mem_size = 4097;
	assert_int_equal(kvmkit_vm_create(&cfg, &vm), -EINVAL);
	cfg.mem_size = 1ull << 50; /* a petabyte */
	assert_int_equal(kvmkit_vm_create(&cfg, &vm), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "physical memory"));
	assert_null(vm);
}

/* kvmk_zalloc(): zeroed; a large table's pages are made as they are
 * written (outside ASan builds, which keep the heap); small ones too. */
static void test_zalloc(void **state)
{
	const size_t big = 256 * 1024, page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char vec[256 * 1024 / 4096];
	unsigned char *p = kvmk_zalloc(big), *small = kvmk_zalloc(100);
	unsigned int resident = 0;
	bool asan = false;

#if defined(__SANITIZE_ADDRESS__)
	asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	asan = true;
#endif
#endif
	assert_non_null(p);
	assert_non_null(small);
	p[big / 2] = 1;
	if (!asan && page == 4096) {
		assert_int_equal(mincore(p, big, vec), 0);
		for (size_t i = 0; i < sizeof(vec); i++)
			resident += vec[i] & 1;
		assert_int_equal(resident, 1);
	}
	for (size_t i = 0; i < big; i += 997)
		assert_int_equal(p[i], i == big / 2);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(small[i], 0);
	kvmk_zfree(p, big);
	kvmk_zfree(small, 100);
	kvmk_zfree(NULL, big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transitions),	 cmocka_unit_test(test_slots),
		cmocka_unit_test(test_error_lines),	 cmocka_unit_test(test_error_thread_local),
		cmocka_unit_test(test_logging),		 cmocka_unit_test(test_no_kvm_path),
		cmocka_unit_test(test_vm_config_errors), cmocka_unit_test(test_log_sink_reentry),
		cmocka_unit_test(test_state_error_code), cmocka_unit_test(test_zalloc),
	};

	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
