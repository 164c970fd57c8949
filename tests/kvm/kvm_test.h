/* SPDX-License-Identifier: MIT */
/* Shared helpers for integration tests that need /dev/kvm. */
#ifndef KVMKIT_TESTS_KVM_TEST_H
#define KVMKIT_TESTS_KVM_TEST_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <execinfo.h>
#include <signal.h>
#include <cmocka.h>

#include <kvmkit/kvmkit.h>
#include "guest_abi.h"

/* Exit code meson treats as "skipped". */
#define TEST_SKIP 77
/* Watchdog for a whole guest run: a hung guest fails the test instead of
 * hanging the suite. Not a timing assertion. */
#define GUEST_WATCHDOG_MS 120000

/* Whole-binary watchdog: a hang anywhere (kvmkit or the host kernel) ends
 * the test with a backtrace of where the process was stuck. */
#define TEST_BINARY_WATCHDOG_S 150 /* below the host runner's 180 s */

static void watchdog_fired(int sig)
{
	static const char msg[] = "\nFAILED: test binary watchdog fired; backtrace:\n";
	void *bt[32];
	int n = backtrace(bt, 32);
	ssize_t w = write(STDOUT_FILENO, msg, sizeof(msg) - 1);

	(void)w;
	backtrace_symbols_fd(bt, n, STDOUT_FILENO);
	_exit(1);
}

static inline void require_kvm(void)
{
	signal(SIGALRM, watchdog_fired);
	alarm(TEST_BINARY_WATCHDOG_S);
	if (!kvmkit_kvm_available()) {
		/* Inside an emulated host KVM must be there: fail, never skip. */
		if (getenv("KVMKIT_REQUIRE_KVM")) {
			printf("FAILED: no /dev/kvm but KVMKIT_REQUIRE_KVM is set\n");
			exit(1);
		}
		printf("skipped: no /dev/kvm\n");
		exit(TEST_SKIP);
	}
}

static inline char *guest_path(const char *name)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/%s.elf", GUEST_ELF_DIR, name);
	return buf;
}

/* Creates a standard machine running guest @name; asserts success. */
static inline struct kvmkit_machine *machine_for(const char *name, unsigned int vcpus,
						 uint64_t mem)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	void *image;
	size_t len;
	int r;

	r = kvmkit_read_file(guest_path(name), &image, &len);
	if (r)
		fail_msg("reading %s: %s", guest_path(name), kvmkit_strerror());
	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = vcpus;
	cfg.vm.mem_size = mem;
	cfg.kernel = image;
	cfg.kernel_len = len;
	r = kvmkit_machine_create(&cfg, &m);
	free(image); /* the image is copied into guest memory */
	if (r)
		fail_msg("machine for %s: %s", name, kvmkit_strerror());
	return m;
}

static inline void run_to_stop(struct kvmkit_machine *m, struct kvmkit_stop_info *info)
{
	int r = kvmkit_machine_run(m, GUEST_WATCHDOG_MS, info);

	if (r)
		fail_msg("run: %s", kvmkit_strerror());
	if (info->reason == KVMKIT_STOP_TIMEOUT)
		fail_msg("guest did not stop within the %d ms watchdog", GUEST_WATCHDOG_MS);
}

/* Polls guest memory until the 64-bit word at @gpa equals @want; bounded by
 * the watchdog. Returns 0 on success. */
static inline int wait_for_u64(struct kvmkit_vm *vm, uint64_t gpa, uint64_t want)
{
	volatile uint64_t *p = kvmkit_vm_gpa_to_hva(vm, gpa, 8);

	for (int i = 0; p && i < GUEST_WATCHDOG_MS; i++) {
		if (__atomic_load_n(p, __ATOMIC_ACQUIRE) == want)
			return 0;
		usleep(1000);
	}
	return -1;
}

#endif
