// SPDX-License-Identifier: MIT
/*
 * Dirty-log harvest throughput: how fast kvmkit_dirty_harvest() goes
 * through a guest's memory, in GiB of guest RAM per second, per mode
 * (bitmap with manual protect, plain bitmap, dirty ring) and dirty set.
 *
 * The guest is dirty_lab.elf (tests/guest/progs/dirty_lab.c) on one vCPU:
 * on command it stores one 64-bit word into each page the host names. Per
 * mode, a machine with MEM_MIB of RAM logs every page; then for each set
 *
 *   clean   nothing written (the harvest finds only the guest's mailbox
 *           page): the cost of scanning alone
 *   sparse  one page in every 2 MiB from 8 MiB to the end of RAM
 *   dense   every page from 8 MiB to the end of RAM
 *
 * a harvest takes what the previous set left, then REPS times: the guest
 * writes the set (timed: write_ms, mostly write-protection faults; the
 * first time also the first touch of each page), and one harvest is timed
 * around kvmkit_dirty_harvest() with a callback that only counts. (No
 * warm-up pass: on KVM-PVM a write-protection fault costs about 100-150
 * us, so one pass over a dense 1 GiB takes some 40 s; the harvest itself
 * does not depend on it.) The pages reported include the guest's mailbox
 * page and, the first time, the page-table pages whose flags it sets.
 *
 * In ring mode (65536 entries, the most KVM allows per vCPU: 1 MiB) a
 * dense set overflows the ring while the guest writes: the vCPU empties it
 * itself at each KVM_EXIT_DIRTY_RING_FULL, so part of the work is done
 * before the timed harvest. ring_full_us is that part (kvmkit's
 * ring_full_ns statistic) and total_us = harvest + ring_full: compare
 * total_us across modes.
 *
 * usage: bench-dirty-harvest GUEST_ELF MEM_MIB REPS [MODE...]
 *   MODE: bitmap-manual, bitmap, ring (default: all three)
 * prints per mode and set:
 *   RESULT dirty <mode> mem_mib=.. set=.. pages=.. reps=.. harvest_us=..
 *          harvest_min_us=.. harvest_max_us=.. gib_s=.. mpages_s=..
 *          ring_full_exits=.. ring_full_us=.. total_us=.. total_gib_s=..
 *          write_ms=..
 * (medians over the reps; gib_s = MEM_MIB / 1024 / harvest seconds;
 * mpages_s = dirty pages reported per microsecond).
 */
#include <kvmkit/kvmkit.h>

#include "bench_util.h"
#include "dirty_abi.h"

#define PAGE 4096ull
#define MIB (1ull << 20)
#define MAX_REPS 101

static struct kvmkit_vm *vm;

static volatile uint32_t *mb32(unsigned int off)
{
	volatile uint32_t *p = kvmkit_vm_gpa_to_hva(vm, DIRTY_LAB_MAILBOX(0) + off, 4);

	if (!p) {
		fprintf(stderr, "bench: no mailbox: %s\n", kvmkit_strerror());
		exit(1);
	}
	return p;
}

/* Runs one command on vCPU 0 and waits for its ack (bounded). */
static void command(uint32_t cmd, uint64_t a0, uint64_t a1, uint64_t a2, bool wait)
{
	uint64_t *args = kvmkit_vm_gpa_to_hva(vm, DIRTY_LAB_MAILBOX(0) + DIRTY_LAB_MB_ARG(0), 32);
	uint32_t seq;

	args[0] = a0;
	args[1] = a1;
	args[2] = a2;
	args[3] = 0;
	*mb32(DIRTY_LAB_MB_CMD) = cmd;
	seq = __atomic_add_fetch(mb32(DIRTY_LAB_MB_SEQ), 1, __ATOMIC_RELEASE);
	for (uint64_t t0 = bench_now_ns();
	     wait && __atomic_load_n(mb32(DIRTY_LAB_MB_ACK), __ATOMIC_ACQUIRE) != seq;) {
		if (bench_now_ns() - t0 > 300ull * 1000000000ull) {
			fprintf(stderr, "bench: the guest did not acknowledge in 300 s\n");
			exit(1);
		}
		usleep(50);
	}
}

static int count_pages(uint64_t gpa, uint64_t npages, void *opaque)
{
	(void)gpa;
	*(uint64_t *)opaque += npages;
	return 0;
}

static uint64_t harvest(uint64_t *pages)
{
	uint64_t t0, t1;

	*pages = 0;
	t0 = bench_now_ns();
	if (kvmkit_dirty_harvest(vm, count_pages, pages, NULL)) {
		fprintf(stderr, "bench: harvest: %s\n", kvmkit_strerror());
		exit(1);
	}
	t1 = bench_now_ns();
	return t1 - t0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static void one_set(const char *mode, uint64_t mem, const char *set, uint64_t count,
		    uint64_t stride, unsigned int reps)
{
	uint64_t hv[MAX_REPS], tv[MAX_REPS], rv[MAX_REPS], wv[MAX_REPS], pages = 0, exits = 0;
	struct kvmkit_dirty_stats a, b;
	double secs, tsecs;

	harvest(&pages); /* whatever the previous set left */
	for (unsigned int i = 0; i < reps; i++) {
		uint64_t t0 = bench_now_ns();

		kvmkit_dirty_get_stats(vm, &a);
		command(DIRTY_LAB_WRITE, DIRTY_LAB_AREA, count, stride, true);
		wv[i] = bench_now_ns() - t0;
		hv[i] = harvest(&pages);
		kvmkit_dirty_get_stats(vm, &b);
		rv[i] = b.ring_full_ns - a.ring_full_ns;
		tv[i] = hv[i] + rv[i];
		exits += b.ring_full_exits - a.ring_full_exits;
	}
	printf("RESULT dirty %s mem_mib=%llu set=%s pages=%llu reps=%u", mode,
	       (unsigned long long)(mem / MIB), set, (unsigned long long)pages, reps);
	{
		uint64_t hmin = hv[0], hmax = hv[0];

		for (unsigned int i = 1; i < reps; i++) {
			hmin = hv[i] < hmin ? hv[i] : hmin;
			hmax = hv[i] > hmax ? hv[i] : hmax;
		}
		secs = (double)median(hv, reps) / 1e9;
		tsecs = (double)median(tv, reps) / 1e9;
		printf(" harvest_us=%.1f harvest_min_us=%.1f harvest_max_us=%.1f", secs * 1e6,
		       (double)hmin / 1e3, (double)hmax / 1e3);
	}
	printf(" gib_s=%.1f mpages_s=%.2f ring_full_exits=%.1f ring_full_us=%.1f total_us=%.1f"
	       " total_gib_s=%.1f write_ms=%.1f\n",
	       (double)mem / (1ull << 30) / secs, (double)pages / secs / 1e6, (double)exits / reps,
	       (double)median(rv, reps) / 1e3, tsecs * 1e6, (double)mem / (1ull << 30) / tsecs,
	       (double)median(wv, reps) / 1e6);
	fflush(stdout);
}

static void one_mode(const void *image, size_t len, const char *mode, uint64_t mem,
		     unsigned int reps)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;
	uint64_t span = mem - DIRTY_LAB_AREA;

	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = 1;
	cfg.vm.mem_size = mem;
	cfg.vm.dirty_ring_entries = !strcmp(mode, "ring") ? 65536 : 0;
	cfg.vm.dirty_no_manual_protect = !strcmp(mode, "bitmap");
	cfg.kernel = image;
	cfg.kernel_len = len;
	if (kvmkit_machine_create(&cfg, &m)) {
		fprintf(stderr, "bench: machine: %s\n", kvmkit_strerror());
		exit(1);
	}
	vm = kvmkit_machine_vm(m);
	if (strcmp(kvmkit_dirty_mode_name(kvmkit_dirty_mode(vm)), mode)) {
		printf("INFO dirty %s: not on this host (%s instead), skipped\n", mode,
		       kvmkit_dirty_mode_name(kvmkit_dirty_mode(vm)));
		kvmkit_machine_destroy(m);
		return;
	}
	if (kvmkit_vm_start(vm) || kvmkit_dirty_enable(vm)) {
		fprintf(stderr, "bench: start: %s\n", kvmkit_strerror());
		exit(1);
	}
	for (uint64_t t0 = bench_now_ns(); !*mb32(DIRTY_LAB_MB_READY); usleep(100))
		if (bench_now_ns() - t0 > 60ull * 1000000000ull) {
			fprintf(stderr, "bench: the guest never became ready\n");
			exit(1);
		}
	one_set(mode, mem, "clean", 0, PAGE, reps);
	one_set(mode, mem, "sparse", span / (2 * MIB), 2 * MIB, reps);
	one_set(mode, mem, "dense", span / PAGE, PAGE, reps);
	command(DIRTY_LAB_EXIT, 0, 0, 0, false);
	kvmkit_vm_wait(vm, 60000, &info);
	kvmkit_machine_destroy(m);
}

int main(int argc, char **argv)
{
	static const char *const all[] = { "bitmap-manual", "bitmap", "ring" };
	uint64_t mem;
	unsigned int reps;
	size_t len;
	void *image;

	if (argc < 4) {
		fprintf(stderr, "usage: %s GUEST_ELF MEM_MIB REPS [MODE...]\n", argv[0]);
		return 2;
	}
	mem = bench_parse_u64("MEM_MIB", argv[2]) * MIB;
	reps = (unsigned int)bench_parse_u64("REPS", argv[3]);
	if (mem < 16 * MIB || mem > (3ull << 30) || reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "bench: MEM_MIB 16..3072, REPS 1..%d\n", MAX_REPS);
		return 2;
	}
	image = bench_read_file(argv[1], &len);
	if (argc == 4) {
		for (unsigned int i = 0; i < 3; i++)
			one_mode(image, len, all[i], mem, reps);
	} else {
		for (int i = 4; i < argc; i++)
			one_mode(image, len, argv[i], mem, reps);
	}
	free(image);
	return 0;
}
