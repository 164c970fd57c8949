/* SPDX-License-Identifier: MIT */
/* Shared helpers for integration tests that need /dev/kvm. */
#ifndef KVMKIT_TESTS_KVM_TEST_H
#define KVMKIT_TESTS_KVM_TEST_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
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
#define TEST_BINARY_WATCHDOG_S 80 /* below run-in-host.sh's 300 s per program */

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

/*
 * Hosts with known KVM bugs or limits, for tests that cannot pass there
 * through no fault of kvmkit. Such a test calls host_quirk() first; it runs
 * in its own meson entry (`--only NAME`), so on an affected host the entry
 * reports "skipped: <reason>" instead of hiding among passes. Where a test
 * binary runs whole (by hand, or inside the emulated x86 host, which has
 * no such quirk) the case is a cmocka skip.
 *
 * KVM-PVM: the nested hypervisor behind /dev/kvm on kvmkit's CI machines.
 * It runs guest CPL3 in hardware ring 3 and emulates CPL0 in software.
 */
static bool test_only_mode;

static inline bool host_is_kvm_pvm(void)
{
	return access("/sys/module/kvm_pvm", F_OK) == 0;
}

#define host_quirk(affected, reason)                                                     \
	do {                                                                             \
		if (affected) {                                                          \
			printf("skipped: %s (a host KVM limit, not kvmkit's; the emulated " \
			       "x86 host runs this test)\n",                             \
			       reason);                                                  \
			if (test_only_mode)                                              \
				exit(TEST_SKIP);                                         \
			skip();                                                          \
		}                                                                        \
	} while (0)

/* Test binaries take `--only NAME` or `--skip NAME` (cmocka name filters). */
static inline void test_args(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--only")) {
			cmocka_set_test_filter(argv[i + 1]);
			test_only_mode = true;
		} else if (!strcmp(argv[i], "--skip")) {
			cmocka_set_skip_filter(argv[i + 1]);
		} else {
			fprintf(stderr, "usage: %s [--only NAME | --skip NAME]\n", argv[0]);
			exit(2);
		}
	}
}

/* The KVM-PVM limits kvmkit's tests run into, each seen on its CI machine
 * and passing in the emulated x86 host (docs/ARCHITECTURE.md, "Where KVM
 * test results come from"). */
#define PVM_NO_TRIPLE_FAULT                                                         \
	"KVM-PVM's CPL0 emulator cannot deliver an exception through an empty IDT: " \
	"KVM_EXIT_INTERNAL_ERROR (emulation) instead of a shutdown"
#define PVM_NO_32BIT_IRET                                                          \
	"KVM-PVM's CPL0 emulator fails on the 32-bit protected-mode iret of the "  \
	"multiboot payload's interrupt handlers (KVM_EXIT_INTERNAL_ERROR, emulation)"
#define PVM_NO_LAPIC_ISR                                                          \
	"KVM-PVM does not keep a delivered vector in the LAPIC ISR until EOI (ISR " \
	"reads 0 in the handler), so a level interrupt with a deferred EOI is "     \
	"delivered over and over"

/*
 * The irqchip mode the running test asks for. A test that depends on it
 * runs in a group per mode (run_chip_groups()), whose setup sets it.
 */
static enum kvmkit_irqchip_mode chip_mode = KVMKIT_IRQCHIP_KERNEL;

static inline int use_kernel(void **state)
{
	(void)state;
	chip_mode = KVMKIT_IRQCHIP_KERNEL;
	return 0;
}

static inline int use_split(void **state)
{
	(void)state;
	chip_mode = KVMKIT_IRQCHIP_SPLIT;
	return 0;
}

/* Runs @tests as group NAME-kernel, then as NAME-split; the failures. */
#define run_chip_groups(name, tests)                                            \
	(cmocka_run_group_tests_name(name "-kernel", tests, use_kernel, NULL) + \
	 cmocka_run_group_tests_name(name "-split", tests, use_split, NULL))

static inline char *guest_path(const char *name)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/%s.elf", GUEST_ELF_DIR, name);
	return buf;
}

/* A default configuration running guest @name on @vcpus vCPUs with @mem
 * bytes of RAM. The image is read into a buffer machine_from() frees. */
static inline void guest_config(struct kvmkit_machine_config *cfg, const char *name,
				unsigned int vcpus, uint64_t mem)
{
	void *image;
	size_t len;

	if (kvmkit_read_file(guest_path(name), &image, &len))
		fail_msg("reading %s: %s", guest_path(name), kvmkit_strerror());
	kvmkit_machine_config_init(cfg);
	cfg->vm.vcpus = vcpus;
	cfg->vm.mem_size = mem;
	cfg->kernel = image;
	cfg->kernel_len = len;
}

/* Creates the machine @cfg (from guest_config()) describes and frees its
 * image (copied into guest memory); asserts success. */
static inline struct kvmkit_machine *machine_from(struct kvmkit_machine_config *cfg)
{
	struct kvmkit_machine *m = NULL;
	int r = kvmkit_machine_create(cfg, &m);

	free((void *)cfg->kernel);
	cfg->kernel = NULL;
	if (r)
		fail_msg("machine: %s", kvmkit_strerror());
	return m;
}

/* Creates a standard machine running guest @name; asserts success. */
static inline struct kvmkit_machine *machine_for(const char *name, unsigned int vcpus, uint64_t mem)
{
	struct kvmkit_machine_config cfg;

	guest_config(&cfg, name, vcpus, mem);
	return machine_from(&cfg);
}

static inline void run_to_stop(struct kvmkit_machine *m, struct kvmkit_stop_info *info)
{
	int r = kvmkit_machine_run(m, GUEST_WATCHDOG_MS, info);

	if (r)
		fail_msg("run: %s", kvmkit_strerror());
	if (info->reason == KVMKIT_STOP_TIMEOUT)
		fail_msg("guest did not stop within the %d ms watchdog", GUEST_WATCHDOG_MS);
}

/* Milliseconds of CLOCK_MONOTONIC, for deadlines and reported durations. */
static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

/* Entries of directory @path, "." and ".." included (the fds under
 * /proc/self/fd, the threads under /proc/self/task). */
static inline unsigned int count_entries(const char *path)
{
	unsigned int n = 0;
	DIR *d = opendir(path);

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Removes a flat directory a test made (snapshot directories). */
static inline void rm_dir(const char *dir)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

#endif
