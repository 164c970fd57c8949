// SPDX-License-Identifier: MIT
/*
 * Snapshot and restore times of a machine (kvmkit_machine_snapshot and
 * kvmkit_machine_restore, include/kvmkit/snapshot.h).
 *
 * The guest is snap_loop.elf (tests/guest/progs/snap_loop.c, TIMERS mode)
 * on one vCPU, kernel irqchip, MEM_MIB of RAM, in two variants:
 *   fresh   as booted: a few MiB of RAM used, the rest never written
 *           (the memory file is mostly holes)
 *   filled  every page from 16 MiB to the end written by the host first
 *           (non-zero bytes), so the memory file holds all of it (above
 *           3 GiB RAM lies from 4 GiB on: each region is filled)
 * Per variant the guest runs until it ticks, is paused and snapshotted
 * into a new directory under TMPDIR (default /var/tmp): snap_ms is the
 * kvmkit_machine_snapshot() call, file_mib what the memory file occupies
 * on disk. Then REPS times a new process is started (fork + exec of this
 * program) that restores the machine and starts it, and watches the
 * guest's loop counter in RAM: first_ms is from just before the exec to
 * the first change of the counter (the guest running after the restore),
 * restore_ms the kvmkit_machine_restore() call alone in the new process.
 * The files are in the page cache (just written): a cold-cache restore
 * faults pages in from disk on the guest's first touch of each.
 *
 * usage: bench-snapshot GUEST_ELF MEM_MIB REPS
 * prints per variant:
 *   RESULT snapshot <variant> mem_mib=.. snap_ms=.. file_mib=..
 *          first_ms=.. first_min_ms=.. first_max_ms=.. restore_ms=..
 * (medians over the reps)
 */
#include <signal.h>
#include <sys/wait.h>

#include <kvmkit/kvmkit.h>

#include "bench_util.h"
#include "guest_abi.h"

#define MIB (1ull << 20)
#define MAX_REPS 51
#define WAIT_NS (20ull * 1000000000ull)

static void die(const char *what)
{
	fprintf(stderr, "bench-snapshot: %s: %s\n", what, kvmkit_strerror());
	exit(1);
}

static volatile uint64_t *counter(struct kvmkit_machine *m)
{
	volatile uint64_t *p = kvmkit_vm_gpa_to_hva(kvmkit_machine_vm(m),
						    GUEST_SNAP_CPU(0) + GUEST_SNAP_COUNTER, 8);

	if (!p)
		die("counter");
	return p;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The new process: restores DIR, starts it, reports when the guest moved. */
static int child(const char *dir)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_snapshot_info info;
	struct kvmkit_machine *m;
	uint64_t t0, t1, saved, end;

	kvmkit_machine_config_init(&cfg);
	t0 = bench_now_ns();
	if (kvmkit_snapshot_info(dir, &info))
		die("snapshot info");
	cfg.vm.vcpus = info.vcpus;
	cfg.vm.mem_size = info.mem_size;
	cfg.irqchip = info.irqchip;
	cfg.irqchip_mode = info.irqchip_mode;
	if (kvmkit_machine_restore(&cfg, dir, &m))
		die("restore");
	t1 = bench_now_ns();
	saved = *counter(m);
	if (kvmkit_vm_start(kvmkit_machine_vm(m)))
		die("start");
	end = bench_now_ns() + WAIT_NS;
	while (*counter(m) == saved)
		if (bench_now_ns() > end) {
			fprintf(stderr, "bench-snapshot: the restored guest does not run\n");
			return 1;
		}
	printf("%llu %llu\n", (unsigned long long)bench_now_ns(), (unsigned long long)(t1 - t0));
	fflush(stdout);
	kvmkit_machine_destroy(m);
	return 0;
}

static void snapshot_once(const char *elf, uint64_t mem, bool fill, const char *dir,
			  uint64_t *snap_ns)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m;
	uint32_t mode = GUEST_SNAP_MODE_TIMERS;
	uint64_t t, end;
	size_t len;
	void *image = bench_read_file(elf, &len);

	kvmkit_machine_config_init(&cfg);
	cfg.vm.mem_size = mem;
	cfg.kernel = image;
	cfg.kernel_len = len;
	if (kvmkit_machine_create(&cfg, &m))
		die("machine");
	free(image);
	if (kvmkit_vm_write(kvmkit_machine_vm(m), GUEST_SNAP_MODE, &mode, 4))
		die("mode");
	if (fill) {
		/* Region by region: above 3 GiB RAM continues at 4 GiB. */
		struct kvmkit_mem_region r[8];
		unsigned int n = kvmkit_vm_memory_regions(kvmkit_machine_vm(m), r, 8);

		for (unsigned int i = 0; i < n && i < 8; i++) {
			uint64_t from = r[i].gpa < 16 * MIB ? 16 * MIB : r[i].gpa;
			uint8_t *p;

			if (from >= r[i].gpa + r[i].size)
				continue;
			p = kvmkit_vm_gpa_to_hva(kvmkit_machine_vm(m), from,
						 r[i].gpa + r[i].size - from);
			if (!p)
				die("fill");
			memset(p, 0xa5, r[i].gpa + r[i].size - from);
		}
	}
	if (kvmkit_vm_start(kvmkit_machine_vm(m)))
		die("start");
	end = bench_now_ns() + WAIT_NS;
	while (*counter(m) == 0 && bench_now_ns() < end)
		usleep(1000);
	if (kvmkit_vm_pause(kvmkit_machine_vm(m)))
		die("pause");
	t = bench_now_ns();
	if (kvmkit_machine_snapshot(m, dir))
		die("snapshot");
	*snap_ns = bench_now_ns() - t;
	kvmkit_machine_destroy(m);
}

static void rm_snapshot(const char *dir)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/state", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/memory", dir);
	unlink(p);
	rmdir(dir);
}

static void variant(const char *self, const char *elf, uint64_t mem, unsigned int reps, bool fill)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp";
	uint64_t first[MAX_REPS], call[MAX_REPS], snap_ns;
	char dir[256], mpath[300];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/kvmkit-bench-snap-%d", tmp, (int)getpid());
	snapshot_once(elf, mem, fill, dir, &snap_ns);
	snprintf(mpath, sizeof(mpath), "%s/memory", dir);
	if (stat(mpath, &st))
		die("stat");
	for (unsigned int i = 0; i < reps; i++) {
		int fds[2];
		char line[128];
		unsigned long long when, ns;
		ssize_t n;
		uint64_t t0;
		pid_t pid;
		int status;

		if (pipe(fds))
			die("pipe");
		t0 = bench_now_ns();
		pid = fork();
		if (pid == 0) {
			dup2(fds[1], STDOUT_FILENO);
			execl(self, self, "--child", dir, (char *)NULL);
			_exit(127);
		}
		close(fds[1]);
		n = read(fds[0], line, sizeof(line) - 1);
		close(fds[0]);
		waitpid(pid, &status, 0);
		if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "bench-snapshot: the restoring process failed\n");
			exit(1);
		}
		line[n] = 0;
		if (sscanf(line, "%llu %llu", &when, &ns) != 2)
			exit(1);
		first[i] = when - t0;
		call[i] = ns;
	}
	rm_snapshot(dir);
	qsort(first, reps, sizeof(first[0]), cmp_u64);
	qsort(call, reps, sizeof(call[0]), cmp_u64);
	printf("RESULT snapshot %s mem_mib=%llu snap_ms=%.2f file_mib=%.1f first_ms=%.2f "
	       "first_min_ms=%.2f first_max_ms=%.2f restore_ms=%.2f\n",
	       fill ? "filled" : "fresh", (unsigned long long)(mem / MIB), snap_ns / 1e6,
	       (double)st.st_blocks * 512 / MIB, first[reps / 2] / 1e6, first[0] / 1e6,
	       first[reps - 1] / 1e6, call[reps / 2] / 1e6);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	unsigned long long mib;
	unsigned int reps;

	if (argc == 3 && !strcmp(argv[1], "--child"))
		return child(argv[2]);
	if (argc != 4 || sscanf(argv[2], "%llu", &mib) != 1 || mib < 32 ||
	    sscanf(argv[3], "%u", &reps) != 1 || !reps || reps > MAX_REPS) {
		fprintf(stderr, "usage: bench-snapshot GUEST_ELF MEM_MIB(>=32) REPS(1..%d)\n",
			MAX_REPS);
		return 2;
	}
	variant("/proc/self/exe", argv[1], mib * MIB, reps, false);
	variant("/proc/self/exe", argv[1], mib * MIB, reps, true);
	return 0;
}
