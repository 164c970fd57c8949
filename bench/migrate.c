// SPDX-License-Identifier: MIT
/*
 * Live migration downtime and total time (kvmkit_machine_migrate and
 * kvmkit_machine_incoming, include/kvmkit/migrate.h) for a guest that
 * dirties memory at a chosen rate.
 *
 * The guest is mig_loop.elf (tests/guest/progs/mig_loop.c, mig_abi.h) on
 * one vCPU, kernel irqchip, MEM_MIB of RAM. Before the start the host
 * fills the pattern area (from 16 MiB to 16 MiB below the end of RAM: all
 * but 32 MiB of the guest holds data) with the pattern's first pass, so
 * the guest begins at pass 2, rewriting one page after the other, paced by
 * its 200 Hz timer to RATE_MIBS MiB/s (0: it writes nothing more; the
 * rewrite checks and counts the previous pattern, so a page the migration
 * got wrong shows as an error).
 *
 * Per repetition a target process is started (fork + exec of this
 * program with --target) listening on a unix socket under /tmp; the
 * source guest runs 500 ms (rate_before: what it wrote then, without
 * dirty logging), then kvmkit_machine_migrate() moves it, with its
 * defaults (at most 30 passes, stop at 256 pages). The target checks that
 * the guest runs there (three more ticks), that no page was found wrong,
 * and exits. Reported, medians over the reps:
 *   downtime_us      the target's measure: the source's "paused" record
 *                    arriving to the VM running there
 *   src_downtime_us  the source's: its pause to the target's confirmation
 *   total_ms         the whole kvmkit_machine_migrate() call
 *   sent_mib, passes, and the pages of the first three passes of the
 *   median run; rate_during: MiB/s the guest wrote while it was migrated
 *   (with dirty logging on: each first write to a page after a harvest
 *   faults into KVM).
 *
 * usage: bench-migrate GUEST_ELF MEM_MIB RATE_MIBS REPS
 * prints: RESULT migrate r<RATE> mem_mib=.. rate_mibs=.. rate_before=..
 *         rate_during=.. downtime_us=.. src_downtime_us=.. total_ms=..
 *         sent_mib=.. passes=.. p1=.. p2=.. p3=..
 */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <kvmkit/kvmkit.h>

#include "bench_util.h"
#include "mig_abi.h"

#define MIB (1ull << 20)
#define MAX_REPS 31
#define WAIT_MS 30000
#define TICK_HZ 200

static void die(const char *what)
{
	fprintf(stderr, "bench-migrate: %s: %s\n", what, kvmkit_strerror());
	exit(1);
}

static uint64_t ld(struct kvmkit_vm *vm, uint64_t gpa)
{
	volatile uint64_t *p = kvmkit_vm_gpa_to_hva(vm, gpa, 8);

	if (!p)
		die("guest memory");
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void reach(struct kvmkit_vm *vm, uint64_t gpa, uint64_t want, const char *what)
{
	uint64_t end = bench_now_ns() + WAIT_MS * 1000000ull;

	while (ld(vm, gpa) < want) {
		if (bench_now_ns() > end) {
			fprintf(stderr, "bench-migrate: %s: stayed below %llu\n", what,
				(unsigned long long)want);
			exit(1);
		}
		usleep(200);
	}
}

static void config(struct kvmkit_machine_config *cfg, uint64_t mem_mib)
{
	kvmkit_machine_config_init(cfg);
	cfg->vm.vcpus = 1;
	cfg->vm.mem_size = mem_mib * MIB;
	cfg->irqchip = true;
	cfg->irqchip_mode = KVMKIT_IRQCHIP_KERNEL;
}

/* The target: receive, see the guest run, check it found no page wrong. */
static int target(const char *from, uint64_t mem_mib)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_vm *vm;
	uint64_t ticks;

	config(&cfg, mem_mib);
	if (kvmkit_machine_incoming(&cfg, from, NULL, NULL, &m))
		die("incoming");
	vm = kvmkit_machine_vm(m);
	ticks = ld(vm, MIG_CPU(0) + MIG_TICKS);
	reach(vm, MIG_CPU(0) + MIG_TICKS, ticks + 3, "ticks on the target");
	if ((uint32_t)ld(vm, MIG_CPU(0) + MIG_ERRORS)) {
		fprintf(stderr, "bench-migrate: the guest found %u pages wrong\n",
			(uint32_t)ld(vm, MIG_CPU(0) + MIG_ERRORS));
		return 1;
	}
	kvmkit_machine_destroy(m);
	return 0;
}

struct run {
	double rate_before, rate_during;
	uint64_t downtime_us, src_downtime_us, total_us, bytes, passes, p[3];
};

static struct kvmkit_machine *source(const void *image, size_t len, uint64_t mem_mib,
				     uint64_t area_pages, uint64_t rate)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_vm *vm;
	uint64_t *area, pass = 2;

	config(&cfg, mem_mib);
	cfg.kernel = image;
	cfg.kernel_len = len;
	if (kvmkit_machine_create(&cfg, &m))
		die("machine");
	vm = kvmkit_machine_vm(m);
	area = kvmkit_vm_gpa_to_hva(vm, MIG_AREA, area_pages * 4096);
	if (!area)
		die("area");
	for (uint64_t p = 0; p < area_pages; p++)
		for (uint64_t w = 0; w < 512; w++)
			area[p * 512 + w] = MIG_WORD(GUEST_U64(1), p, w);
	if (kvmkit_vm_write(vm, MIG_PAGES, &area_pages, 8) ||
	    kvmkit_vm_write(vm, MIG_RATE, &rate, 8) ||
	    kvmkit_vm_write(vm, MIG_CPU(0) + MIG_PASS, &pass, 8) || kvmkit_vm_start(vm))
		die("start");
	reach(vm, MIG_CPU(0) + MIG_READY, 1, "ready");
	reach(vm, MIG_CPU(0) + MIG_TICKS, 3, "ticks");
	return m;
}

static void one(const char *self, const void *image, size_t len, uint64_t mem_mib,
		uint64_t rate_mibs, unsigned int rep, struct run *out)
{
	uint64_t area_pages = (mem_mib - 32) * MIB / 4096;
	uint64_t rate = rate_mibs * 256 / TICK_HZ; /* pages per tick */
	struct kvmkit_migrate_stats st;
	struct kvmkit_machine *m;
	struct kvmkit_vm *vm;
	char path[108], to[120], mem[24];
	uint64_t w0, w1, t0, t1;
	int status;
	pid_t pid;

	snprintf(path, sizeof(path), "/tmp/kvmkit-bench-mig-%d-%u.sock", (int)getpid(), rep);
	snprintf(to, sizeof(to), "unix:%s", path);
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)mem_mib);
	unlink(path);
	/* The target first: a fork copies no guest RAM then. */
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		execl(self, self, "--target", to, mem, (char *)NULL);
		_exit(127);
	}
	m = source(image, len, mem_mib, area_pages, rate);
	vm = kvmkit_machine_vm(m);
	/* The guest's own rate, before any logging. */
	w0 = ld(vm, MIG_CPU(0) + MIG_PACE_PAGES);
	t0 = bench_now_ns();
	usleep(500000);
	w1 = ld(vm, MIG_CPU(0) + MIG_PACE_PAGES);
	t1 = bench_now_ns();
	out->rate_before = (double)(w1 - w0) * 4096 / MIB / ((double)(t1 - t0) / 1e9);
	for (int i = 0; access(path, F_OK) && i < WAIT_MS; i++)
		usleep(1000);
	w0 = ld(vm, MIG_CPU(0) + MIG_PACE_PAGES);
	if (kvmkit_machine_migrate(m, to, NULL, &st))
		die("migrate");
	w1 = ld(vm, MIG_CPU(0) + MIG_PACE_PAGES);
	out->rate_during = (double)(w1 - w0) * 4096 / MIB / ((double)st.total_us / 1e6);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "bench-migrate: the target failed (status 0x%x)\n", status);
		exit(1);
	}
	out->downtime_us = st.downtime_us;
	out->src_downtime_us = st.source_downtime_us;
	out->total_us = st.total_us;
	out->bytes = st.bytes;
	out->passes = st.passes;
	for (int i = 0; i < 3; i++)
		out->p[i] = st.pass_pages[i];
	kvmkit_machine_destroy(m);
}

static int by_downtime(const void *a, const void *b)
{
	const struct run *x = a, *y = b;

	return x->downtime_us < y->downtime_us ? -1 : x->downtime_us > y->downtime_us;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct run runs[MAX_REPS], *med;
	uint64_t mem_mib, rate_mibs, reps, tot[MAX_REPS], src[MAX_REPS];
	double before[MAX_REPS], during[MAX_REPS];
	void *image;
	size_t len;

	signal(SIGPIPE, SIG_IGN);
	if (argc == 4 && !strcmp(argv[1], "--target"))
		return target(argv[2], strtoull(argv[3], NULL, 10));
	if (argc != 5) {
		fprintf(stderr, "usage: bench-migrate GUEST_ELF MEM_MIB RATE_MIBS REPS\n");
		return 2;
	}
	mem_mib = strtoull(argv[2], NULL, 10);
	rate_mibs = strtoull(argv[3], NULL, 10);
	reps = strtoull(argv[4], NULL, 10);
	if (mem_mib < 64 || reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "bench-migrate: MEM_MIB >= 64, REPS 1..%d\n", MAX_REPS);
		return 2;
	}
	image = bench_read_file(argv[1], &len);
	for (unsigned int i = 0; i < reps; i++) {
		one(argv[0], image, len, mem_mib, rate_mibs, i, &runs[i]);
		fprintf(stderr,
			"# rep %u: downtime %llu us (source %llu), %llu ms, %llu MiB, %llu passes, "
			"rate %.1f / %.1f MiB/s\n",
			i, (unsigned long long)runs[i].downtime_us,
			(unsigned long long)runs[i].src_downtime_us,
			(unsigned long long)(runs[i].total_us / 1000),
			(unsigned long long)(runs[i].bytes / MIB),
			(unsigned long long)runs[i].passes, runs[i].rate_before,
			runs[i].rate_during);
		tot[i] = runs[i].total_us;
		src[i] = runs[i].src_downtime_us;
		before[i] = runs[i].rate_before;
		during[i] = runs[i].rate_during;
	}
	free(image);
	qsort(runs, reps, sizeof(runs[0]), by_downtime);
	qsort(tot, reps, sizeof(tot[0]), cmp_u64);
	qsort(src, reps, sizeof(src[0]), cmp_u64);
	qsort(before, reps, sizeof(before[0]), cmp_double);
	qsort(during, reps, sizeof(during[0]), cmp_double);
	med = &runs[reps / 2];
	printf("RESULT migrate r%llu mem_mib=%llu rate_mibs=%llu rate_before=%.1f rate_during=%.1f "
	       "downtime_us=%llu src_downtime_us=%llu total_ms=%.1f sent_mib=%.1f passes=%llu "
	       "p1=%llu p2=%llu p3=%llu\n",
	       (unsigned long long)rate_mibs, (unsigned long long)mem_mib,
	       (unsigned long long)rate_mibs, before[reps / 2], during[reps / 2],
	       (unsigned long long)med->downtime_us, (unsigned long long)src[reps / 2],
	       (double)tot[reps / 2] / 1000, (double)med->bytes / MIB,
	       (unsigned long long)med->passes, (unsigned long long)med->p[0],
	       (unsigned long long)med->p[1], (unsigned long long)med->p[2]);
	return 0;
}
