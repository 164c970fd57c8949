/* SPDX-License-Identifier: MIT */
/*
 * A snapshot restored in a new process, for the irq_lab tests: this
 * process starts the guest (lab_start), runs a case's `before` step,
 * pauses and snapshots the machine and destroys it; then it runs its own
 * binary again (`--restored CASE MODE DIR ARG0 ARG1`), which restores the
 * snapshot into a new machine (lab_restore), starts it, runs the case's
 * `after` step and exits with its cmocka verdict, which this process
 * asserts. proc_args[0..2] carry three numbers from `before` to `after`;
 * a case with rest_ms has this process wait that long between the snapshot
 * and the restore, and proc_args[PROC_REST] says how long it waited (ns).
 * A case runs on `vcpus` vCPUs (0: one).
 *
 * A binary's main() is proc_test_main() with its cases and its tests.
 */
#ifndef KVMKIT_TESTS_RESTORE_PROC_H
#define KVMKIT_TESTS_RESTORE_PROC_H

#include <inttypes.h>
#include <sys/wait.h>
#include <time.h>

#include <kvmkit/snapshot.h>

#include "lab.h"

struct proc_case {
	const char *name;
	void (*before)(struct lab *l);
	void (*after)(struct lab *r);
	unsigned int rest_ms;
	unsigned int vcpus;
};

static const struct proc_case *proc_cases;
static size_t proc_ncases;
#define PROC_NARGS 4
#define PROC_REST 3
static uint64_t proc_args[PROC_NARGS];

static inline uint64_t proc_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline const char *proc_mode_name(enum kvmkit_irqchip_mode m)
{
	return m == KVMKIT_IRQCHIP_SPLIT ? "split" : "kernel";
}

/* lab_start's machine, from the snapshot in @dir: no image, not booted
 * again; started. */
static inline void lab_restore(struct lab *r, const char *dir, unsigned int vcpus)
{
	struct kvmkit_machine_config cfg;

	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = vcpus;
	cfg.vm.mem_size = 64 << 20;
	cfg.irqchip = true;
	cfg.irqchip_mode = chip_mode;
	cfg.testdev = KVMKIT_TESTDEV_ON;
	memset(r, 0, sizeof(*r));
	if (kvmkit_machine_restore(&cfg, dir, &r->m))
		fail_msg("restore: %s", kvmkit_strerror());
	r->vm = kvmkit_machine_vm(r->m);
	r->chip = kvmkit_machine_irqchip(r->m);
	r->vcpus = vcpus;
	assert_int_equal(kvmkit_irqchip_mode(r->chip), chip_mode);
	if (kvmkit_vm_start(r->vm))
		fail_msg("start: %s", kvmkit_strerror());
}

static const struct proc_case *proc_restored_case;
static const char *proc_restored_dir;

static void proc_test_restored(void **state)
{
	struct lab r;

	lab_restore(&r, proc_restored_dir,
		    proc_restored_case->vcpus ? proc_restored_case->vcpus : 1);
	proc_restored_case->after(&r);
	lab_finish(&r);
}

/* The restored process: argv = BIN --restored CASE MODE DIR ARG0..ARG3. */
static inline int proc_main(int argc, char **argv)
{
	const struct CMUnitTest t[] = { cmocka_unit_test(proc_test_restored) };

	if (argc != 5 + PROC_NARGS || strcmp(argv[1], "--restored"))
		return -1;
	for (size_t i = 0; i < proc_ncases; i++)
		if (!strcmp(proc_cases[i].name, argv[2]))
			proc_restored_case = &proc_cases[i];
	if (!proc_restored_case)
		return 2;
	chip_mode = !strcmp(argv[3], "split") ? KVMKIT_IRQCHIP_SPLIT : KVMKIT_IRQCHIP_KERNEL;
	proc_restored_dir = argv[4];
	for (int i = 0; i < PROC_NARGS; i++)
		proc_args[i] = strtoull(argv[5 + i], NULL, 0);
	require_kvm();
	printf("restored process: %s, %s irqchip\n", argv[2], argv[3]);
	return cmocka_run_group_tests_name("restored", t, NULL, NULL);
}

/* main() of a binary of such cases: the restored process's verdict when
 * this is one, else the failures of @tests run as group @name. */
#define proc_test_main(argc, argv, cases, name, tests)                             \
	({                                                                         \
		int r_;                                                            \
		proc_cases = (cases);                                              \
		proc_ncases = sizeof(cases) / sizeof((cases)[0]);                  \
		r_ = proc_main(argc, argv);                                        \
		if (r_ < 0) {                                                      \
			test_args(argc, argv);                                     \
			require_kvm();                                             \
			r_ = cmocka_run_group_tests_name(name, tests, NULL, NULL); \
		}                                                                  \
		r_;                                                                \
	})

/* Runs case @c in @mode: before, snapshot, then the restored process. */
static inline void proc_run_case(const struct proc_case *c, enum kvmkit_irqchip_mode mode)
{
	char dir[] = "/tmp/kvmkit-restored-XXXXXX", a[PROC_NARGS][24];
	char *argv[] = { "/proc/self/exe",
			 "--restored",
			 (char *)c->name,
			 (char *)proc_mode_name(mode),
			 dir,
			 a[0],
			 a[1],
			 a[2],
			 a[3],
			 NULL };
	struct lab l;
	pid_t pid;
	int status;

	chip_mode = mode;
	memset(proc_args, 0, sizeof(proc_args));
	lab_start(&l, c->vcpus ? c->vcpus : 1);
	c->before(&l);
	assert_non_null(mkdtemp(dir));
	if (kvmkit_vm_state(l.vm) != KVMKIT_VM_PAUSED) /* `before` may have paused it */
		assert_int_equal(kvmkit_vm_pause(l.vm), 0);
	if (kvmkit_machine_snapshot(l.m, dir))
		fail_msg("snapshot: %s", kvmkit_strerror());
	kvmkit_machine_destroy(l.m);
	if (c->rest_ms) {
		uint64_t t = proc_now_ns();

		usleep(c->rest_ms * 1000);
		proc_args[PROC_REST] = proc_now_ns() - t;
	}
	for (int i = 0; i < PROC_NARGS; i++)
		snprintf(a[i], sizeof(a[i]), "%" PRIu64, proc_args[i]);

	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	rm_dir(dir);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("%s (%s): the restored process failed (status 0x%x)", c->name,
			 proc_mode_name(mode), status);
}

#endif
