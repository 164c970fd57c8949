// SPDX-License-Identifier: MIT
/*
 * kvmkit_machine_snapshot/restore on /dev/kvm with the snap_loop guest
 * (tests/guest/progs/snap_loop.c), in both irqchip modes:
 *  - continuation: a running two-vCPU guest paused, snapshotted into a
 *    directory, destroyed, and restored from the directory into a new
 *    machine goes on: never booted again, its counters and timer ticks
 *    going on from where they were, RAM identical (CRC-32 of all of it),
 *    the guest's own verdict OK;
 *  - hostile snapshots: truncated state or memory files, flipped bytes,
 *    another format version, a configuration that differs (vCPU count,
 *    irqchip mode, memory size) are refused with one clear error, and
 *    nothing (fd, thread, machine) is left behind.
 * Every wait is bounded (WAIT_MS) and passes in milliseconds when kvmkit is
 * right.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#include <kvmkit/snapshot.h>

#include "kvm_test.h"

#define MEM (64ull << 20)
#define WAIT_MS 20000

static volatile void *snap_field(struct kvmkit_vm *vm, unsigned int cpu, unsigned int off,
				 unsigned int len)
{
	volatile void *p = kvmkit_vm_gpa_to_hva(vm, GUEST_SNAP_CPU(cpu) + off, len);

	assert_non_null(p);
	return p;
}

static uint64_t ld64(struct kvmkit_vm *vm, unsigned int cpu, unsigned int off)
{
	return __atomic_load_n((volatile uint64_t *)snap_field(vm, cpu, off, 8), __ATOMIC_ACQUIRE);
}

static uint32_t ld32(struct kvmkit_vm *vm, unsigned int cpu, unsigned int off)
{
	return __atomic_load_n((volatile uint32_t *)snap_field(vm, cpu, off, 4), __ATOMIC_ACQUIRE);
}

static void wait_for(struct kvmkit_vm *vm, unsigned int cpu, unsigned int off, bool wide,
		     uint64_t want, const char *what)
{
	uint64_t end = now_ms() + WAIT_MS;

	while ((wide ? ld64(vm, cpu, off) : ld32(vm, cpu, off)) < want)
		if (now_ms() > end)
			fail_msg("vCPU %u: %s stayed below %llu", cpu, what,
				 (unsigned long long)want);
		else
			usleep(200);
}

static void config(struct kvmkit_machine_config *cfg, unsigned int vcpus, void *image, size_t len)
{
	kvmkit_machine_config_init(cfg);
	cfg->vm.vcpus = vcpus;
	cfg->vm.mem_size = MEM;
	cfg->kernel = image;
	cfg->kernel_len = len;
	cfg->irqchip = true;
	cfg->irqchip_mode = chip_mode;
}

/* snap_loop in TIMERS mode on @vcpus vCPUs, started, every vCPU ticking. */
static struct kvmkit_machine *running_guest(unsigned int vcpus)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_vm *vm;
	uint32_t mode = GUEST_SNAP_MODE_TIMERS;
	void *image;
	size_t len;

	if (kvmkit_read_file(guest_path("snap_loop"), &image, &len))
		fail_msg("%s", kvmkit_strerror());
	config(&cfg, vcpus, image, len);
	if (kvmkit_machine_create(&cfg, &m))
		fail_msg("machine: %s", kvmkit_strerror());
	free(image);
	vm = kvmkit_machine_vm(m);
	assert_int_equal(kvmkit_vm_write(vm, GUEST_SNAP_MODE, &mode, 4), 0);
	assert_int_equal(kvmkit_vm_start(vm), 0);
	for (unsigned int c = 0; c < vcpus; c++) {
		wait_for(vm, c, GUEST_SNAP_READY, false, 1, "READY");
		wait_for(vm, c, GUEST_SNAP_TICKS, true, 3, "ticks");
	}
	return m;
}

static uint32_t ram_crc(struct kvmkit_vm *vm)
{
	const uint8_t *p = kvmkit_vm_gpa_to_hva(vm, 0, MEM);

	assert_non_null(p);
	return (uint32_t)crc32(0, p, (uInt)MEM);
}

/* A fresh, empty directory (malloc'ed path). */
static char *temp_dir(void)
{
	char *d = strdup("/tmp/kvmkit-snap-XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

/* ---- continuation ---------------------------------------------------------- */

static void test_continue(void **state)
{
	enum { n = 2 };
	struct kvmkit_machine *a = running_guest(n), *b = (struct kvmkit_machine *)1;
	struct kvmkit_vm *va = kvmkit_machine_vm(a), *vb;
	struct kvmkit_machine_config cfg;
	struct kvmkit_stop_info info;
	uint64_t count0[n], ticks0[n], rep[n * GUEST_SNAP_REPORTS_PER_CPU];
	char *dir = temp_dir();
	uint32_t crc_a, fin = GUEST_SNAP_FINISH;

	/* Running: refused, and nothing written. */
	assert_int_equal(kvmkit_machine_snapshot(a, dir), -EBUSY);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_STATE);
	assert_int_equal(kvmkit_vm_pause(va), 0);
	for (unsigned int c = 0; c < n; c++) {
		count0[c] = ld64(va, c, GUEST_SNAP_COUNTER);
		ticks0[c] = ld64(va, c, GUEST_SNAP_TICKS);
		assert_true(count0[c] > 0);
	}
	crc_a = ram_crc(va);
	if (kvmkit_machine_snapshot(a, dir))
		fail_msg("snapshot: %s", kvmkit_strerror());
	/* The snapshot leaves the machine as it was: it resumes. */
	assert_int_equal(kvmkit_vm_state(va), KVMKIT_VM_PAUSED);
	assert_int_equal(ram_crc(va), crc_a);
	kvmkit_machine_destroy(a);

	config(&cfg, n, NULL, 0);
	if (kvmkit_machine_restore(&cfg, dir, &b))
		fail_msg("restore: %s", kvmkit_strerror());
	vb = kvmkit_machine_vm(b);
	assert_int_equal(kvmkit_vm_state(vb), KVMKIT_VM_CREATED);
	assert_int_equal(ram_crc(vb), crc_a);
	for (unsigned int c = 0; c < n; c++) {
		assert_int_equal(ld64(vb, c, GUEST_SNAP_COUNTER), count0[c]);
		assert_int_equal(ld64(vb, c, GUEST_SNAP_TICKS), ticks0[c]);
	}
	assert_int_equal(kvmkit_vm_start(vb), 0);
	for (unsigned int c = 0; c < n; c++) {
		wait_for(vb, c, GUEST_SNAP_COUNTER, true, count0[c] + 1000000, "counter");
		wait_for(vb, c, GUEST_SNAP_TICKS, true, ticks0[c] + 3, "ticks after restore");
	}
	assert_int_equal(kvmkit_vm_write(vb, GUEST_SNAP_CMD, &fin, 4), 0);
	assert_int_equal(kvmkit_vm_wait(vb, GUEST_WATCHDOG_MS, &info), 0);
	if (info.reason != KVMKIT_STOP_GUEST_EXIT)
		fail_msg("guest stopped: %s: %s", kvmkit_stop_reason_name(info.reason),
			 info.detail);
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(b), rep, n * 5), n * 5);
	assert_int_equal(info.status, GUEST_STATUS_OK);
	for (unsigned int c = 0; c < n; c++) {
		const uint64_t *r = rep + c * GUEST_SNAP_REPORTS_PER_CPU;

		assert_int_equal(ld32(vb, c, GUEST_SNAP_BOOTS), 1);
		assert_true((r[0] | r[1] << 32) > count0[c] + 1000000);
		assert_true((r[2] | r[3] << 32) >= ticks0[c] + 3);
		assert_int_equal(r[4], 0);
	}
	kvmkit_machine_destroy(b);
	/* The guest's writes went to the private mapping, not the file. */
	config(&cfg, n, NULL, 0);
	assert_int_equal(kvmkit_machine_restore(&cfg, dir, &b), 0);
	assert_int_equal(ram_crc(kvmkit_machine_vm(b)), crc_a);
	kvmkit_machine_destroy(b);
	rm_dir(dir);
	free(dir);
}

/* ---- hostile snapshots ------------------------------------------------------ */

/* A state file's CRC-32 trailer made right again after an edit (zlib's
 * crc32(), the format's definition, not kvmkit's own code). */
static void fix_crc(uint8_t *state, size_t len)
{
	uint32_t c = (uint32_t)crc32(0, state, (uInt)(len - 4));

	memcpy(state + len - 4, &c, 4);
}

static void read_all(const char *path, uint8_t **buf, size_t *len)
{
	assert_int_equal(kvmkit_read_file(path, (void **)buf, len), 0);
}

static void write_all(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

/* A restore of @dir with @vcpus and @chip must fail with @kind and a
 * message holding @needle, leave *out alone and leak nothing. */
static void refused(const char *dir, unsigned int vcpus, int chip, uint64_t mem,
		    enum kvmkit_error_kind kind, const char *needle)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	unsigned int fds = count_entries("/proc/self/fd"), tasks = count_entries("/proc/self/task");
	const char *msg;

	config(&cfg, vcpus, NULL, 0);
	cfg.irqchip = chip >= 0;
	cfg.irqchip_mode = chip >= 0 ? (enum kvmkit_irqchip_mode)chip : KVMKIT_IRQCHIP_KERNEL;
	cfg.vm.mem_size = mem;
	if (!kvmkit_machine_restore(&cfg, dir, &m))
		fail_msg("restore accepted a snapshot it should refuse (%s)", needle);
	assert_null(m);
	msg = kvmkit_strerror();
	if (kvmkit_last_error()->kind != kind || !strstr(msg, needle))
		fail_msg("wanted kind %d with '%s', got kind %d: %s", kind, needle,
			 kvmkit_last_error()->kind, msg);
	if (strchr(msg, '\n'))
		fail_msg("not one line: %s", msg);
	assert_int_equal(count_entries("/proc/self/fd"), fds);
	assert_int_equal(count_entries("/proc/self/task"), tasks);
}

static void test_hostile(void **state)
{
	struct kvmkit_machine *a = running_guest(1), *b = NULL;
	char *dir = temp_dir(), *bad = temp_dir(), *fresh;
	char st[600], mem[600], bst[600], bmem[600];
	uint8_t *sbuf, *mbuf, *copy;
	size_t slen, mlen;
	struct stat sb;

	assert_int_equal(kvmkit_vm_pause(kvmkit_machine_vm(a)), 0);
	/* A directory that does not exist yet is created. */
	assert_true(asprintf(&fresh, "%s/new", dir) > 0);
	assert_int_equal(kvmkit_machine_snapshot(a, fresh), 0);
	/* A non-empty one is refused, and its files are left alone. */
	assert_int_equal(kvmkit_machine_snapshot(a, fresh), -ENOTEMPTY);
	assert_int_equal(count_entries(fresh), 4);
	kvmkit_machine_destroy(a);
	snprintf(st, sizeof(st), "%s/state", fresh);
	snprintf(mem, sizeof(mem), "%s/memory", fresh);
	snprintf(bst, sizeof(bst), "%s/state", bad);
	snprintf(bmem, sizeof(bmem), "%s/memory", bad);
	read_all(st, &sbuf, &slen);
	assert_int_equal(stat(mem, &sb), 0);
	mlen = (size_t)sb.st_size;
	assert_int_equal(mlen, MEM);
	read_all(mem, &mbuf, &mlen);
	write_all(bmem, mbuf, mlen);
	copy = malloc(slen);
	assert_non_null(copy);

	/* Configurations that differ from the snapshot's. */
	refused(fresh, 2, chip_mode, MEM, KVMKIT_ERR_PARAM, "2 here, 1 in the snapshot");
	refused(fresh, 1, !chip_mode, MEM, KVMKIT_ERR_PARAM, "in the snapshot");
	refused(fresh, 1, -1, MEM, KVMKIT_ERR_PARAM, "none here");
	refused(fresh, 1, chip_mode, MEM * 2, KVMKIT_ERR_PARAM, "mem_size");

	/* Truncated state files: at the end, in the middle, nearly empty. */
	const size_t cuts[] = { slen - 1, slen - 4, slen / 2, 20, 8, 0 };

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		write_all(bst, sbuf, cuts[i]);
		refused(bad, 1, chip_mode, MEM, KVMKIT_ERR_FORMAT,
			cuts[i] < 16 ? "bad magic" : "CRC-32");
	}
	/* A flipped byte anywhere in the state file: the magic, the version
	 * or the CRC catches it. */
	for (size_t i = 0; i < slen; i += (i < 64 ? 1 : 61)) {
		memcpy(copy, sbuf, slen);
		copy[i] ^= 0x20;
		write_all(bst, copy, slen);
		refused(bad, 1, chip_mode, MEM, KVMKIT_ERR_FORMAT,
			i < 8  ? "bad magic" :
			i < 12 ? "version" :
				 "CRC-32");
	}
	for (size_t i = slen - 4; i < slen; i++) { /* the CRC itself */
		memcpy(copy, sbuf, slen);
		copy[i] ^= 0x01;
		write_all(bst, copy, slen);
		refused(bad, 1, chip_mode, MEM, KVMKIT_ERR_FORMAT, "CRC-32");
	}
	/* Another format version, CRC right. */
	memcpy(copy, sbuf, slen);
	copy[8] = 2;
	fix_crc(copy, slen);
	write_all(bst, copy, slen);
	refused(bad, 1, chip_mode, MEM, KVMKIT_ERR_FORMAT, "format version 2, this kvmkit reads 1");
	/* A header claiming two vCPUs with a right CRC: the second's state is
	 * missing. */
	memcpy(copy, sbuf, slen);
	copy[20] = 2;
	fix_crc(copy, slen);
	write_all(bst, copy, slen);
	refused(bad, 2, chip_mode, MEM, KVMKIT_ERR_FORMAT, "no section for vCPU 1");

	/* A memory file truncated or grown. */
	write_all(bst, sbuf, slen);
	write_all(bmem, mbuf, mlen - 4096);
	refused(bad, 1, chip_mode, MEM, KVMKIT_ERR_FORMAT, "the state file says 67108864");
	unlink(bmem);
	refused(bad, 1, chip_mode, MEM, KVMKIT_ERR_SYSCALL, "memory");
	write_all(bmem, mbuf, mlen);
	/* The intact copy restores. */
	{
		struct kvmkit_machine_config cfg;

		config(&cfg, 1, NULL, 0);
		assert_int_equal(kvmkit_machine_restore(&cfg, bad, &b), 0);
		kvmkit_machine_destroy(b);
	}
	rm_dir(bad);
	rm_dir(fresh);
	rm_dir(dir);
	free(copy);
	free(sbuf);
	free(mbuf);
	free(fresh);
	free(bad);
	free(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest both[] = {
		cmocka_unit_test(test_continue),
		cmocka_unit_test(test_hostile),
	};
	int fails = 0;

	test_args(argc, argv);
	require_kvm();
	fails += run_chip_groups("snapshot", both);
	return fails ? 1 : 0;
}
