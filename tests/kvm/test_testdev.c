// SPDX-License-Identifier: MIT
/*
 * The test device on a real VM: a hostile guest's page flushes (port 0xe4)
 * must cost the process no lasting mapping, keep the pages' data and the
 * RAM's madvise flags, make KVM fault the page in again, and log failures
 * without flooding; guest RAM stays out of core dumps; and the machine has
 * the device only when configured (AUTO: Multiboot images).
 */
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>

#include "kvm_test.h"
#include "flush_abi.h"

#define MIB (1ull << 20)

/* ---- the process's mappings ------------------------------------------ */

static unsigned int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned int n = 0;
	int c;

	assert_non_null(f);
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

struct vma {
	uintptr_t start, end;
	char flags[512]; /* VmFlags of smaps */
};

/* The mapping holding @addr, from /proc/self/smaps. */
static void vma_of(const void *addr, struct vma *out)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	uintptr_t a = (uintptr_t)addr;
	bool in = false, found = false;
	char line[512];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;

		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = a >= s && a < e;
			if (in) {
				out->start = s;
				out->end = e;
			}
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out->flags, sizeof(out->flags), "%s", line + 8);
			found = true;
			break;
		}
	}
	fclose(f);
	if (!found)
		fail_msg("no mapping holds %p", addr);
}

/* Guest RAM [gpa, gpa + size) is one mapping, exactly, marked "dd"
 * (MADV_DONTDUMP). */
static void assert_ram_mapping(struct kvmkit_vm *vm, uint64_t gpa, uint64_t size)
{
	uint8_t *hva = kvmkit_vm_gpa_to_hva(vm, gpa, size);
	struct vma v;

	assert_non_null(hva);
	vma_of(hva, &v);
	if (v.start != (uintptr_t)hva || v.end != (uintptr_t)hva + size)
		fail_msg("RAM 0x%llx+0x%llx at %p is mapped as %lx-%lx", (unsigned long long)gpa,
			 (unsigned long long)size, (void *)hva, (unsigned long)v.start,
			 (unsigned long)v.end);
	if (!strstr(v.flags, " dd"))
		fail_msg("RAM 0x%llx+0x%llx lacks MADV_DONTDUMP: VmFlags:%s",
			 (unsigned long long)gpa, (unsigned long long)size, v.flags);
}

/* ---- warnings the test device logs --------------------------------------- */

static struct {
	unsigned int n;
	char first[256], last[256];
} warned;

static void count_warning(enum kvmkit_log_level level, const char *module, const char *msg,
			  void *opaque)
{
	/* Called with kvmkit's log lock held: one at a time. */
	if (level != KVMKIT_LOG_WARN || strcmp(module, "testdev"))
		return;
	if (!__atomic_fetch_add(&warned.n, 1, __ATOMIC_RELAXED))
		snprintf(warned.first, sizeof(warned.first), "%s", msg);
	snprintf(warned.last, sizeof(warned.last), "%s", msg);
}

static void watch_warnings(void)
{
	memset(&warned, 0, sizeof(warned));
	kvmkit_log_set_sink(count_warning, NULL);
}

static unsigned int warnings(void)
{
	return __atomic_load_n(&warned.n, __ATOMIC_RELAXED);
}

/* ---- the flush_storm guest ------------------------------------------------ */

static struct kvmkit_machine *flush_machine(uint64_t mem, enum kvmkit_testdev_mode testdev)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;

	guest_config(&cfg, "flush_storm", 1, mem);
	cfg.testdev = testdev;
	m = machine_from(&cfg);
	return m;
}

static void set_param(struct kvmkit_machine *m, uint64_t gpa, uint32_t v)
{
	assert_int_equal(kvmkit_vm_write(kvmkit_machine_vm(m), gpa, &v, 4), 0);
}

/* Waits for the guest to reach @phase (watchdog-bounded). */
static void wait_phase(struct kvmkit_machine *m, uint32_t phase)
{
	volatile uint32_t *p = kvmkit_vm_gpa_to_hva(kvmkit_machine_vm(m), FLUSH_PHASE, 4);

	for (int i = 0; i < GUEST_WATCHDOG_MS; i++) {
		if (__atomic_load_n(p, __ATOMIC_ACQUIRE) == phase)
			return;
		if (kvmkit_vm_state(kvmkit_machine_vm(m)) != KVMKIT_VM_RUNNING)
			break;
		usleep(1000);
	}
	fail_msg("the guest did not reach phase %u", phase);
}

static void ack_phase(struct kvmkit_machine *m, uint32_t phase)
{
	volatile uint32_t *p = kvmkit_vm_gpa_to_hva(kvmkit_machine_vm(m), FLUSH_ACK, 4);

	__atomic_store_n(p, phase, __ATOMIC_RELEASE);
}

static void wait_stop(struct kvmkit_machine *m, struct kvmkit_stop_info *info)
{
	if (kvmkit_vm_wait(kvmkit_machine_vm(m), GUEST_WATCHDOG_MS, info))
		fail_msg("the guest did not stop: %s", kvmkit_strerror());
}

/* The storm's verdict: every target kept its data. */
static void check_storm(struct kvmkit_machine *m, const struct kvmkit_stop_info *info,
			uint32_t targets)
{
	uint64_t vals[8];
	size_t n = kvmkit_report_values(kvmkit_machine_report(m), vals, 8);

	if (info->reason != KVMKIT_STOP_GUEST_EXIT || n != FLUSH_STORM_REPORTS)
		fail_msg("guest stopped: %s status %d (%s), %zu reports",
			 kvmkit_stop_reason_name(info->reason), info->status, info->detail, n);
	assert_int_equal(vals[0], targets);
	assert_int_equal(vals[1], targets / FLUSH_HOSTILE_EVERY);
	if (vals[2])
		fail_msg("%llu flushed pages lost their data, the first at 0x%llx",
			 (unsigned long long)vals[2], (unsigned long long)vals[3]);
	assert_int_equal(info->status, GUEST_STATUS_OK);
}

/*
 * Every other page of a 64 MiB guest (7,680 pages) plus 960 hostile values
 * (outside RAM, MMIO, unaligned, garbage, the guest's own code and list):
 * the mapping count does not grow with the flushes, the pages keep their
 * data, RAM stays one MADV_DONTDUMP mapping, and nothing failed.
 */
static void test_storm(void **state)
{
	const uint32_t targets = (64 * MIB - FLUSH_FIRST) / FLUSH_STRIDE;
	struct kvmkit_machine *m = flush_machine(64 * MIB, KVMKIT_TESTDEV_ON);
	struct kvmkit_stop_info info;
	unsigned int before, after;

	watch_warnings();
	before = count_maps();
	run_to_stop(m, &info);
	after = count_maps();
	print_message("mappings: %u before the run, %u after\n", before, after);
	kvmkit_log_set_sink(NULL, NULL);
	check_storm(m, &info, targets);
	/* The vCPU thread's stack and guard page, perhaps a malloc arena:
	 * a few mappings whatever the guest does. */
	if (after > before + 8)
		fail_msg("%u flushes left %u more mappings (%u -> %u)",
			 targets + targets / FLUSH_HOSTILE_EVERY, after - before, before, after);
	assert_ram_mapping(kvmkit_machine_vm(m), 0, 64 * MIB);
	assert_int_equal(warnings(), 0);
	kvmkit_machine_destroy(m);
}

/* Takes the process's mapping count to vm.max_map_count: one-page
 * mappings of alternating protection in one reservation, so that a single
 * munmap gives them all back. */
static void *fill_map_count(size_t *len)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned int max = 0, now = count_maps();
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	uint8_t *res;
	size_t i;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%u", &max), 1);
	fclose(f);
	assert_true(max > now);
	*len = (size_t)page * (2 * (size_t)(max - now) + 4);
	res = mmap(NULL, *len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(res != MAP_FAILED);
	/* Each read-only page in the middle adds two mappings; at the limit
	 * the split fails with ENOMEM. */
	for (i = 1; (i + 1) * (size_t)page < *len; i += 2)
		if (mprotect(res + i * (size_t)page, (size_t)page, PROT_READ))
			break;
	assert_int_equal(errno, ENOMEM);
	return res;
}

/*
 * The storm again, with the process at its mapping limit once the guest
 * has filled its pages: every flush fails (a flush must split the RAM
 * mapping for a moment), the data survives, and the warnings stay a few
 * lines however many flushes fail.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static void test_storm_at_map_limit(void **state)
{
	const uint32_t targets = 2048;
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;
	struct timespec t0, t1;
	unsigned int before, secs;
	void *filler;
	size_t len;

#if SANITIZED
	/* ASan's and TSan's allocators need new mappings all the time: at the
	 * process's map limit they fail before kvmkit does. */
	print_message("skipped: a sanitizer runtime cannot run at the map limit\n");
	skip();
#endif
	m = flush_machine(64 * MIB, KVMKIT_TESTDEV_ON);
	set_param(m, FLUSH_MAX_TARGETS, targets);
	set_param(m, FLUSH_WAIT, 1);
	watch_warnings();
	before = count_maps();
	assert_int_equal(kvmkit_vm_start(kvmkit_machine_vm(m)), 0);
	wait_phase(m, 1);
	filler = fill_map_count(&len);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ack_phase(m, 1);
	wait_stop(m, &info);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	munmap(filler, len);
	check_storm(m, &info, targets);
	secs = (unsigned int)(t1.tv_sec - t0.tv_sec) + 1;
	/* The flushes did fail, and were reported: the first at once, then
	 * at most one line a second. */
	if (warnings() < 1 || warnings() > 1 + secs)
		fail_msg("%u warnings in %u s for %u failed flushes; last: %s", warnings(), secs,
			 targets, warned.last);
	assert_non_null(strstr(warned.first, "failed: Cannot allocate memory"));
	assert_true(count_maps() <= before + 8);
	assert_ram_mapping(kvmkit_machine_vm(m), 0, 64 * MIB);
	kvmkit_machine_destroy(m);
	kvmkit_log_set_sink(NULL, NULL);
	/* The count not yet logged comes out when the device goes. */
	assert_non_null(strstr(warned.last, " in all"));
	assert_true(warnings() <= 2 + secs);
}

/* ---- does KVM fault a flushed page in again? ------------------------------ */

struct stats_fd {
	int fd;
	uint64_t off; /* of the counter in the data block */
};

/* KVM_GET_STATS_FD on the vCPU (api.rst 4.133): the offset of @name. */
static bool stats_open(int vcpu_fd, const char *name, struct stats_fd *s)
{
	struct kvm_stats_header h;
	size_t dsz;
	char *descs;
	bool found = false;

	s->fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (s->fd < 0)
		return false;
	assert_int_equal(pread(s->fd, &h, sizeof(h), 0), sizeof(h));
	dsz = sizeof(struct kvm_stats_desc) + h.name_size;
	descs = calloc(h.num_desc, dsz);
	assert_non_null(descs);
	assert_int_equal(pread(s->fd, descs, dsz * h.num_desc, h.desc_offset),
			 (ssize_t)(dsz * h.num_desc));
	for (uint32_t i = 0; i < h.num_desc && !found; i++) {
		const struct kvm_stats_desc *d = (const void *)(descs + i * dsz);

		if (!strncmp(d->name, name, h.name_size) && d->size == 1) {
			s->off = h.data_offset + d->offset;
			found = true;
		}
	}
	free(descs);
	if (!found)
		close(s->fd);
	return found;
}

static uint64_t stats_read(const struct stats_fd *s)
{
	uint64_t v = 0;

	assert_int_equal(pread(s->fd, &v, sizeof(v), (off_t)s->off), sizeof(v));
	return v;
}

/* Control/flush pairs a test may run before it fails (see below). */
#define REFAULT_PAIRS 3

/*
 * One run of the refault guest: it reads 16 pages (each in a 2 MiB frame
 * of its own), then reads them again after 16 scratch-port writes
 * (control), then after flushing each. Returns whether KVM's count of
 * fixed page faults for the vCPU rose in the flush step by at least one
 * per flushed page over what the control step cost. The guest's own
 * verdict (every page kept its data) is asserted each time.
 */
static bool refault_pair(unsigned int pair)
{
	struct kvmkit_machine *m = flush_machine(64 * MIB, KVMKIT_TESTDEV_ON);
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct kvmkit_stop_info info;
	struct stats_fd pf = { -1, 0 };
	uint64_t v[4], vals[4], control, flush;
	bool cleared;

	if (!stats_open(kvmkit_vcpu_fd(kvmkit_vm_vcpu(vm, 0)), "pf_fixed", &pf)) {
		kvmkit_machine_destroy(m);
		printf("skipped: KVM has no per-vCPU pf_fixed statistic here\n");
		skip();
	}
	set_param(m, FLUSH_MODE, FLUSH_MODE_REFAULT);
	assert_int_equal(kvmkit_vm_start(vm), 0);
	for (uint32_t phase = 1; phase <= 3; phase++) {
		wait_phase(m, phase);
		v[phase] = stats_read(&pf);
		ack_phase(m, phase);
	}
	wait_stop(m, &info);
	close(pf.fd);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(m), vals, 4),
			 FLUSH_REFAULT_REPORTS);
	assert_int_equal(vals[0], FLUSH_REFAULT_PAGES);
	assert_int_equal(vals[1], 0);
	assert_int_equal(info.status, GUEST_STATUS_OK);
	kvmkit_machine_destroy(m);
	control = v[2] - v[1];
	flush = v[3] - v[2];
	cleared = flush >= control + FLUSH_REFAULT_PAGES;
	print_message("pf_fixed, pair %u of at most %u: control step +%llu, flush step +%llu "
		      "(%u pages flushed; needs +%llu): %s\n",
		      pair, REFAULT_PAIRS, (unsigned long long)control, (unsigned long long)flush,
		      FLUSH_REFAULT_PAGES, (unsigned long long)(control + FLUSH_REFAULT_PAGES),
		      cleared ? "ok" : "short");
	return cleared;
}

/*
 * A flushed page is faulted in again: the flush step of a pair must cost
 * one fault per flushed page more than its control step. The margin has
 * no slack, and a fault of the host's own (khugepaged, compaction) in a
 * control step eats into it, so up to REFAULT_PAIRS pairs run, each in a
 * new machine, and one that clears it passes. A flush that does nothing
 * costs no fault at all, so every pair falls short by 16 and it fails.
 */
static void test_flush_refaults(void **state)
{
	for (unsigned int pair = 1; pair <= REFAULT_PAIRS; pair++)
		if (refault_pair(pair))
			return;
	fail_msg("FAIL: in none of %u control/flush pairs did the flush step cost %u faults more "
		 "than the control step: flushed pages were not faulted in again",
		 REFAULT_PAIRS, FLUSH_REFAULT_PAGES);
}

/* ---- guest RAM and core dumps ---------------------------------------------- */

/* RAM kvmkit allocates, large (huge-page aligned) or small, for the VM's
 * config or added later, is one mapping marked MADV_DONTDUMP. */
static void test_ram_not_dumped(void **state)
{
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm;

	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 64 * MIB;
	assert_int_equal(kvmkit_vm_create(&cfg, &vm), 0);
	assert_ram_mapping(vm, 0, 64 * MIB);
	assert_true(kvmkit_vm_add_memory(vm, 1ull << 32, 4 * MIB, 0, NULL) >= 0);
	assert_ram_mapping(vm, 1ull << 32, 4 * MIB);
	assert_true(kvmkit_vm_add_memory(vm, (1ull << 32) + 8 * MIB, 64 << 10, 0, NULL) >= 0);
	assert_ram_mapping(vm, (1ull << 32) + 8 * MIB, 64 << 10);
	/* Flushing keeps it so. */
	for (uint64_t gpa = 0; gpa < 64 * MIB; gpa += 3 << 12)
		assert_int_equal(kvmkit_vm_flush_page(vm, gpa), 0);
	assert_ram_mapping(vm, 0, 64 * MIB);
	kvmkit_vm_destroy(vm);
}

/* ---- kvmkit_vm_flush_page's answers ----------------------------------------- */

static void test_flush_page_api(void **state)
{
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm;
	uint8_t *hva, *own;
	unsigned int before;

	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 4 * MIB;
	assert_int_equal(kvmkit_vm_create(&cfg, &vm), 0);
	hva = kvmkit_vm_gpa_to_hva(vm, 0x3000, 8);
	assert_non_null(hva);
	memcpy(hva, "kvmkit!", 8);
	before = count_maps();
	assert_int_equal(kvmkit_vm_flush_page(vm, 0x3abc), 0);
	assert_int_equal(count_maps(), before);
	/* Same page, same host address, same data, still writable. */
	assert_ptr_equal(kvmkit_vm_gpa_to_hva(vm, 0x3000, 8), hva);
	assert_memory_equal(hva, "kvmkit!", 8);
	hva[0] = 'K';
	/* Outside RAM. */
	assert_int_equal(kvmkit_vm_flush_page(vm, 4 * MIB), -EFAULT);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	assert_int_equal(kvmkit_vm_flush_page(vm, ~0ull), -EFAULT);
	/* Memory the caller owns keeps its protection: refused. */
	own = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(own != MAP_FAILED);
	assert_true(kvmkit_vm_add_memory(vm, 1ull << 32, 1 << 16, 0, own) >= 0);
	assert_int_equal(kvmkit_vm_flush_page(vm, 1ull << 32), -EOPNOTSUPP);
	kvmkit_vm_destroy(vm);
	munmap(own, 1 << 16);
}

/* ---- the machine option ---------------------------------------------------- */

static bool has_testdev(const char *guest, enum kvmkit_testdev_mode mode)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_vm *vm;
	bool pio, mmio;

	guest_config(&cfg, guest, 1, 64 * MIB);
	cfg.testdev = mode;
	m = machine_from(&cfg);
	vm = kvmkit_machine_vm(m);
	pio = kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), KVMKIT_TESTDEV_FLUSH_PAGE) != NULL;
	mmio = kvmkit_bus_lookup(kvmkit_vm_mmio_bus(vm), KVMKIT_TESTDEV_MMIO) != NULL;
	assert_int_equal(pio, mmio);
	assert_int_equal(kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), KVMKIT_TESTDEV_IRQ_PORT) != NULL,
			 pio);
	kvmkit_machine_destroy(m);
	return pio;
}

static void test_testdev_option(void **state)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_stop_info info;

	assert_false(has_testdev("hello", KVMKIT_TESTDEV_AUTO));
	assert_true(has_testdev("hello", KVMKIT_TESTDEV_ON));
	assert_false(has_testdev("hello", KVMKIT_TESTDEV_OFF));
	assert_true(has_testdev("mb_probe", KVMKIT_TESTDEV_AUTO));
	assert_true(has_testdev("mb_probe", KVMKIT_TESTDEV_ON));
	assert_false(has_testdev("mb_probe", KVMKIT_TESTDEV_OFF));
	/* As the guest sees it: no scratch register to read back. */
	m = flush_machine(64 * MIB, KVMKIT_TESTDEV_AUTO);
	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, FLUSH_STATUS_NO_TESTDEV);
	kvmkit_machine_destroy(m);
	m = NULL;
	kvmkit_machine_config_init(&cfg);
	assert_int_equal(cfg.testdev, KVMKIT_TESTDEV_AUTO);
	cfg.kernel = kvmkit_demo_guest(&cfg.kernel_len);
	cfg.testdev = (enum kvmkit_testdev_mode)7;
	assert_int_equal(kvmkit_machine_create(&cfg, &m), -EINVAL);
	assert_null(m);
	assert_non_null(strstr(kvmkit_strerror(), "testdev"));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storm),	       cmocka_unit_test(test_storm_at_map_limit),
		cmocka_unit_test(test_flush_refaults), cmocka_unit_test(test_ram_not_dumped),
		cmocka_unit_test(test_flush_page_api), cmocka_unit_test(test_testdev_option),
	};

	test_args(argc, argv);
	require_kvm();
	return cmocka_run_group_tests_name("kvm-testdev", tests, NULL, NULL);
}
