// SPDX-License-Identifier: MIT
/*
 * Dirty-page tracking on a real VM (include/kvmkit/dirty.h), in each mode
 * the host offers: bitmap with manual protect, plain bitmap, dirty ring.
 *
 * The dirty_lab guest writes exactly the pages the host names. What it
 * dirties by itself (a NOP's ACK in its mailbox page, and the page-table
 * pages its page walks write, which differ between a shadow MMU and nested
 * paging: see expect_write) is measured and modelled exactly, and every
 * harvest of a running guest follows a NOP on each vCPU so that it is the
 * same each time. A harvest must then report exactly the named pages plus
 * that footprint, nothing more and nothing less. Also: a harvest after no
 * writes reports nothing from the set, the VMM's own writes
 * (kvmkit_vm_write, kvmkit_vm_mark_dirty, the loaders) are reported, a slot
 * added while logging is on (259 pages: not a multiple of 64) is logged to
 * its last page, a full dirty ring is emptied by the vCPU and loses
 * nothing, and a harvest stopped by its callback loses nothing.
 */
#include <fcntl.h>
#include <sys/ioctl.h>

#include "kvm_test.h"
#include "dirty_abi.h"

#define MIB (1ull << 20)
#define PAGE 4096ull

/* ---- the mode each group runs in --------------------------------------- */

struct mode {
	const char *name;
	uint32_t ring_entries;
	bool no_manual;
	enum kvmkit_dirty_mode want; /* where the host has what it needs */
};

static const struct mode modes[] = {
	{ "bitmap-manual", 0, false, KVMKIT_DIRTY_BITMAP_MANUAL },
	{ "bitmap", 0, true, KVMKIT_DIRTY_BITMAP },
	{ "ring", 4096, false, KVMKIT_DIRTY_RING },
};
static const struct mode *cur;
/* A smaller ring than the group's, for one test (0: the group's). */
static uint32_t ring_override;

static int host_cap(long cap)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int r = fd < 0 ? 0 : ioctl(fd, KVM_CHECK_EXTENSION, cap);

	if (fd >= 0)
		close(fd);
	return r > 0 ? r : 0;
}

/* The mode a VM of the current group must report on this host. */
static enum kvmkit_dirty_mode expected_mode(void)
{
	if (cur->want == KVMKIT_DIRTY_RING &&
	    (host_cap(KVM_CAP_DIRTY_LOG_RING_ACQ_REL) || host_cap(KVM_CAP_DIRTY_LOG_RING)))
		return KVMKIT_DIRTY_RING;
	if (!cur->no_manual && host_cap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2))
		return KVMKIT_DIRTY_BITMAP_MANUAL;
	return KVMKIT_DIRTY_BITMAP;
}

/* A group whose mode this host lacks (no dirty ring) skips, saying so. */
static void require_mode(void)
{
	if (expected_mode() != cur->want) {
		printf("skipped: this host's KVM has no %s (KVM_CHECK_EXTENSION)\n", cur->name);
		skip();
	}
}

/* ---- page sets ---------------------------------------------------------- */

struct pages {
	uint64_t *pfn; /* sorted, unique once normalized */
	size_t n, cap;
	uint64_t runs;
};

static void pages_add(struct pages *s, uint64_t pfn)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->pfn = realloc(s->pfn, s->cap * sizeof(*s->pfn));
		assert_non_null(s->pfn);
	}
	s->pfn[s->n++] = pfn;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void pages_normalize(struct pages *s)
{
	size_t j = 0;

	qsort(s->pfn, s->n, sizeof(*s->pfn), cmp_u64);
	for (size_t i = 0; i < s->n; i++)
		if (!j || s->pfn[j - 1] != s->pfn[i])
			s->pfn[j++] = s->pfn[i];
	s->n = j;
}

static bool pages_has(const struct pages *s, uint64_t pfn)
{
	return bsearch(&pfn, s->pfn, s->n, sizeof(*s->pfn), cmp_u64) != NULL;
}

static void pages_add_all(struct pages *dst, const struct pages *src)
{
	for (size_t i = 0; i < src->n; i++)
		pages_add(dst, src->pfn[i]);
	pages_normalize(dst);
}

static void pages_free(struct pages *s)
{
	free(s->pfn);
	memset(s, 0, sizeof(*s));
}

/* Pages [gpa, gpa + count * stride) one per @stride bytes. */
static void pages_stride(struct pages *s, uint64_t gpa, uint64_t count, uint64_t stride)
{
	for (uint64_t i = 0; i < count; i++)
		pages_add(s, (gpa + i * stride) / PAGE);
	pages_normalize(s);
}

/* Fails listing up to 8 pages missing from and 8 extra in @got. */
static void assert_pages(const struct pages *got, const struct pages *want, const char *what)
{
	char msg[1024];
	size_t len = 0, missing = 0, extra = 0;

	for (size_t i = 0; i < want->n; i++)
		if (!pages_has(got, want->pfn[i]) && missing++ < 8)
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, " -0x%llx",
						(unsigned long long)want->pfn[i] * PAGE);
	for (size_t i = 0; i < got->n && len < sizeof(msg) - 40; i++)
		if (!pages_has(want, got->pfn[i]) && extra++ < 8)
			len += (size_t)snprintf(msg + len, sizeof(msg) - len, " +0x%llx",
						(unsigned long long)got->pfn[i] * PAGE);
	if (missing || extra)
		fail_msg("%s [%s]: %zu pages reported, %zu expected; %zu missing, %zu extra:%s",
			 what, cur->name, got->n, want->n, missing, extra, msg);
}

/* ---- the guest ---------------------------------------------------------- */

struct dl {
	struct kvmkit_machine *m;
	struct kvmkit_vm *vm;
	unsigned int vcpus;
	/* The host logs the guest's page-table pages on every page walk, not
	 * only when a walk sets a flag (see dl_enable). */
	bool walks_write;
	/* What the guest dirties between two harvests when it runs nothing
	 * but a NOP on every vCPU (dl_enable). */
	struct pages base;
};

static volatile uint32_t *mb_u32(struct dl *l, unsigned int cpu, unsigned int off)
{
	volatile uint32_t *p = kvmkit_vm_gpa_to_hva(l->vm, DIRTY_LAB_MAILBOX(cpu) + off, 4);

	assert_non_null(p);
	return p;
}

/* Posts a command. The host writes the mailbox through its own pointer,
 * not kvmkit_vm_write: those writes are not the VMM writes under test. */
static void dl_post(struct dl *l, unsigned int cpu, uint32_t cmd, uint64_t a0, uint64_t a1,
		    uint64_t a2, uint64_t a3)
{
	uint64_t *args =
		kvmkit_vm_gpa_to_hva(l->vm, DIRTY_LAB_MAILBOX(cpu) + DIRTY_LAB_MB_ARG(0), 32);

	assert_non_null(args);
	args[0] = a0;
	args[1] = a1;
	args[2] = a2;
	args[3] = a3;
	*mb_u32(l, cpu, DIRTY_LAB_MB_CMD) = cmd;
	__atomic_add_fetch(mb_u32(l, cpu, DIRTY_LAB_MB_SEQ), 1, __ATOMIC_RELEASE);
}

static void dl_wait(struct dl *l, unsigned int cpu)
{
	uint32_t seq = *mb_u32(l, cpu, DIRTY_LAB_MB_SEQ);

	for (int i = 0; __atomic_load_n(mb_u32(l, cpu, DIRTY_LAB_MB_ACK), __ATOMIC_ACQUIRE) != seq;
	     i++) {
		struct kvmkit_stop_info info;

		/* A VM that stopped (e.g. an exit nobody handled) fails now. */
		if (kvmkit_vm_wait(l->vm, 0, &info) == 0)
			fail_msg("dirty_lab: the VM stopped before vCPU %u acknowledged: %s (%s)",
				 cpu, kvmkit_stop_reason_name(info.reason), info.detail);
		if (i > GUEST_WATCHDOG_MS * 10)
			fail_msg("dirty_lab: vCPU %u did not acknowledge", cpu);
		usleep(100);
	}
}

static void dl_write(struct dl *l, unsigned int cpu, uint64_t base, uint64_t count, uint64_t stride)
{
	dl_post(l, cpu, DIRTY_LAB_WRITE, base, count, stride, 0x5157000000000000ull + base);
	dl_wait(l, cpu);
}

/* A NOP on every vCPU: each has run (and walked its page tables) since
 * the last harvest returned. */
static void dl_nop_all(struct dl *l)
{
	for (unsigned int c = 0; c < l->vcpus; c++)
		dl_post(l, c, DIRTY_LAB_NOP, 0, 0, 0, 0);
	for (unsigned int c = 0; c < l->vcpus; c++)
		dl_wait(l, c);
}

/*
 * The pages a write of @count pages from @base (one per @stride) dirties:
 * those pages and, where the guest's page walk writes, its page-table
 * pages. The kit runs on kvmkit's boot page tables (2 MiB pages over the
 * first 4 GiB, loader.h). Hosts differ in when a walk writes:
 *  - KVM-PVM (a shadow MMU) writes an entry only to set a flag: the
 *    accessed flag of each entry walked, the dirty flag of the 2 MiB leaf
 *    on the first write through it. The flags are read here, before the
 *    command is posted, while the guest only polls, so this is exact.
 *  - With nested paging (AMD NPT, and Intel EPT with its A/D flags) the
 *    CPU treats every access to a guest page-table entry as a write, so
 *    after each harvest (which write-protects and flushes the TLB) the
 *    next walk logs the PML4, PDPT and PD pages again (walks_write): the
 *    PD page of every GiB the command writes.
 */
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
static void expect_write(struct dl *l, struct pages *want, uint64_t base, uint64_t count,
			 uint64_t stride)
{
	volatile uint64_t *pml4 = kvmkit_vm_gpa_to_hva(l->vm, KVMKIT_X86_BOOT_PML4, PAGE);
	volatile uint64_t *pdpt = kvmkit_vm_gpa_to_hva(l->vm, KVMKIT_X86_BOOT_PDPT, PAGE);
	volatile uint64_t *pd = kvmkit_vm_gpa_to_hva(l->vm, KVMKIT_X86_BOOT_PD, 4 * PAGE);

	assert_true(pml4 && pdpt && pd);
	for (uint64_t i = 0; i < count; i++) {
		uint64_t a = base + i * stride;

		assert_true(a < (4ull << 30));
		pages_add(want, a / PAGE);
		if (!(pml4[0] & PTE_A) || l->walks_write)
			pages_add(want, KVMKIT_X86_BOOT_PML4 / PAGE);
		if (!(pdpt[a >> 30] & PTE_A) || l->walks_write)
			pages_add(want, KVMKIT_X86_BOOT_PDPT / PAGE);
		if ((pd[a >> 21] & (PTE_A | PTE_D)) != (PTE_A | PTE_D) || l->walks_write)
			pages_add(want, KVMKIT_X86_BOOT_PD / PAGE + (a >> 30));
	}
	pages_normalize(want);
}

/* Has vCPU @cpu write and adds what that dirties to @want. */
static void dl_write_expect(struct dl *l, unsigned int cpu, struct pages *want, uint64_t base,
			    uint64_t count, uint64_t stride)
{
	expect_write(l, want, base, count, stride);
	dl_write(l, cpu, base, count, stride);
}

/* The machine for the current mode, logging off, guest not started. */
static void dl_create(struct dl *l, unsigned int vcpus, uint64_t mem)
{
	struct kvmkit_machine_config cfg;
	void *image;
	size_t len;

	memset(l, 0, sizeof(*l));
	if (kvmkit_read_file(guest_path("dirty_lab"), &image, &len))
		fail_msg("%s", kvmkit_strerror());
	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = vcpus;
	cfg.vm.mem_size = mem;
	cfg.vm.dirty_ring_entries =
		cur->ring_entries && ring_override ? ring_override : cur->ring_entries;
	cfg.vm.dirty_no_manual_protect = cur->no_manual;
	cfg.kernel = image;
	cfg.kernel_len = len;
	if (kvmkit_machine_create(&cfg, &l->m))
		fail_msg("machine: %s", kvmkit_strerror());
	free(image);
	l->vm = kvmkit_machine_vm(l->m);
	l->vcpus = vcpus;
	assert_int_equal(kvmkit_dirty_mode(l->vm), expected_mode());
}

/* Starts the guest and waits until every vCPU polls its mailbox. */
static void dl_start(struct dl *l, unsigned int vcpus, uint64_t mem)
{
	dl_create(l, vcpus, mem);
	if (kvmkit_vm_start(l->vm))
		fail_msg("start: %s", kvmkit_strerror());
	for (unsigned int c = 0; c < vcpus; c++)
		for (int i = 0; !*mb_u32(l, c, DIRTY_LAB_MB_READY); i++)
			if (i > GUEST_WATCHDOG_MS * 10)
				fail_msg("dirty_lab: vCPU %u never became ready", c);
			else
				usleep(100);
}

static void dl_finish(struct dl *l)
{
	struct kvmkit_stop_info info;

	for (unsigned int c = 1; c < l->vcpus; c++) {
		dl_post(l, c, DIRTY_LAB_EXIT, 0, 0, 0, 0);
		dl_wait(l, c);
	}
	dl_post(l, 0, DIRTY_LAB_EXIT, 0, 0, 0, 0);
	assert_int_equal(kvmkit_vm_wait(l->vm, GUEST_WATCHDOG_MS, &info), 0);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, 0);
	pages_free(&l->base);
	kvmkit_machine_destroy(l->m);
}

/* ---- harvesting --------------------------------------------------------- */

static int collect(uint64_t gpa, uint64_t npages, void *opaque)
{
	struct pages *s = opaque;

	assert_int_equal(gpa % PAGE, 0);
	assert_true(npages > 0);
	/* Runs come in increasing order, never touching the previous one
	 * (unless a slot ends there). */
	if (s->n)
		assert_true(gpa / PAGE > s->pfn[s->n - 1]);
	for (uint64_t i = 0; i < npages; i++)
		pages_add(s, gpa / PAGE + i);
	s->runs++;
	return 0;
}

static void harvest(struct dl *l, struct pages *out)
{
	struct kvmkit_dirty_result res;

	memset(out, 0, sizeof(*out));
	if (kvmkit_dirty_harvest(l->vm, collect, out, &res))
		fail_msg("harvest: %s", kvmkit_strerror());
	assert_int_equal(res.pages_dirty, out->n);
	assert_int_equal(res.runs, out->runs);
}

/* A NOP on every vCPU, then a harvest: what the guest's loop and walks
 * dirty is then the same every time (l->base). */
static void sync_harvest(struct dl *l, struct pages *out)
{
	dl_nop_all(l);
	harvest(l, out);
}

/* Asserts a synchronised harvest reports exactly @extra plus the base. */
static void expect_harvest(struct dl *l, const struct pages *extra, const char *what)
{
	struct pages got = { 0 }, want = { 0 };

	if (extra)
		pages_add_all(&want, extra);
	pages_add_all(&want, &l->base);
	sync_harvest(l, &got);
	assert_pages(&got, &want, what);
	pages_free(&got);
	pages_free(&want);
}

static bool pages_equal(const struct pages *a, const struct pages *b)
{
	return a->n == b->n && (!a->n || !memcmp(a->pfn, b->pfn, a->n * sizeof(*a->pfn)));
}

/* Up to 8 pages of @s, for a message. */
static const char *pages_str(const struct pages *s, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->n && i < 8 && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, " 0x%llx",
					(unsigned long long)s->pfn[i] * PAGE);
	if (s->n > 8 && len < size)
		snprintf(buf + len, size - len, " ...");
	return buf;
}

/* Comparisons of two baselines in a row dl_enable() makes before it fails. */
#define BASELINE_TRIES 5

/*
 * Turns logging on and measures what the guest dirties by itself between
 * two synchronised harvests (the first takes whatever came before). It
 * must be each vCPU's mailbox page (its ACK) and nothing else, or, on a
 * host whose page walks write (see expect_write), exactly that plus the
 * PML4, PDPT and first PD page the kit's walks go through; anything else
 * fails. Which of the two the host does decides every later expectation,
 * so it is taken from two baselines in a row that agree (up to
 * BASELINE_TRIES), never from one. @first (may be NULL) gets the first
 * harvest.
 */
static void dl_enable(struct dl *l, struct pages *first)
{
	struct pages got = { 0 }, mb = { 0 }, walked = { 0 }, again = { 0 };
	char b1[160], b2[160];
	int tries = 1;

	assert_int_equal(kvmkit_dirty_enable(l->vm), 0);
	assert_true(kvmkit_dirty_enabled(l->vm));
	sync_harvest(l, &got);
	if (first)
		*first = got;
	else
		pages_free(&got);
	sync_harvest(l, &l->base);
	pages_normalize(&l->base);
	for (;;) {
		sync_harvest(l, &again);
		pages_normalize(&again);
		if (pages_equal(&l->base, &again))
			break;
		printf("%s: baselines %d and %d (of at most %d) differ: %zu pages [%s ], then "
		       "%zu [%s ]\n",
		       cur->name, tries, tries + 1, BASELINE_TRIES + 1, l->base.n,
		       pages_str(&l->base, b1, sizeof(b1)), again.n,
		       pages_str(&again, b2, sizeof(b2)));
		if (++tries > BASELINE_TRIES)
			fail_msg("FAIL: [%s] the guest's own footprint (a NOP per vCPU) never came "
				 "out the same twice in a row in %d baseline harvests; the last "
				 "two: %zu pages [%s ], %zu pages [%s ]",
				 cur->name, BASELINE_TRIES + 1, l->base.n,
				 pages_str(&l->base, b1, sizeof(b1)), again.n,
				 pages_str(&again, b2, sizeof(b2)));
		pages_free(&l->base);
		l->base = again;
		memset(&again, 0, sizeof(again));
	}
	pages_free(&again);
	for (unsigned int c = 0; c < l->vcpus; c++)
		pages_add(&mb, DIRTY_LAB_MAILBOX(c) / PAGE);
	pages_normalize(&mb);
	pages_add_all(&walked, &mb);
	pages_add(&walked, KVMKIT_X86_BOOT_PML4 / PAGE);
	pages_add(&walked, KVMKIT_X86_BOOT_PDPT / PAGE);
	pages_add(&walked, KVMKIT_X86_BOOT_PD / PAGE);
	pages_normalize(&walked);
	l->walks_write = l->base.n == walked.n;
	assert_pages(&l->base, l->walks_write ? &walked : &mb,
		     "the guest's own footprint (a NOP per vCPU)");
	pages_free(&mb);
	pages_free(&walked);
}

/* ---- tests -------------------------------------------------------------- */

static void test_mode(void **state)
{
	struct dl l;

	(void)state;
	dl_create(&l, 1, 16 * MIB);
	assert_string_equal(kvmkit_dirty_mode_name(kvmkit_dirty_mode(l.vm)),
			    modes[expected_mode() == KVMKIT_DIRTY_RING	 ? 2 :
				  expected_mode() == KVMKIT_DIRTY_BITMAP ? 1 :
									   0]
				    .name);
	assert_int_equal(kvmkit_dirty_page_size(l.vm), PAGE);
	assert_false(kvmkit_dirty_enabled(l.vm));
	printf("mode %s: %s\n", cur->name, kvmkit_dirty_mode_name(kvmkit_dirty_mode(l.vm)));
	kvmkit_machine_destroy(l.m);
}

/* The guest writes three sets of pages (a run across words, every third
 * page, the last page of RAM); the harvest reports exactly those plus the
 * guest's own footprint, and after no writes only the footprint. */
static void test_guest_writes(void **state)
{
	const uint64_t mem = 64 * MIB;
	struct pages w = { 0 }, got = { 0 };
	struct dl l;

	(void)state;
	require_mode();
	dl_start(&l, 1, mem);
	dl_enable(&l, NULL);
	printf("%s: the host's page walks %s the guest's page tables\n", cur->name,
	       l.walks_write ? "always write" : "write only flags into");

	dl_write_expect(&l, 0, &w, DIRTY_LAB_AREA + 60 * PAGE, 100, PAGE);
	dl_write_expect(&l, 0, &w, DIRTY_LAB_AREA + MIB + 8, 37, 3 * PAGE);
	dl_write_expect(&l, 0, &w, mem - 8, 1, PAGE);
	assert_false(pages_has(&w, DIRTY_LAB_MAILBOX(0) / PAGE));
	expect_harvest(&l, &w, "after the guest's writes");

	/* The same pages again: no page-table flag left to set. */
	pages_free(&w);
	dl_write_expect(&l, 0, &w, DIRTY_LAB_AREA + 60 * PAGE, 100, PAGE);
	assert_int_equal(w.n, l.walks_write ? 103 : 100);
	expect_harvest(&l, &w, "the same writes again");

	/* No writes: nothing from the set, only the footprint of a NOP. */
	expect_harvest(&l, NULL, "after a command that writes nothing");

	/* Paused, nothing runs: what the guest walked before the pause, then
	 * nothing at all. */
	assert_int_equal(kvmkit_vm_pause(l.vm), 0);
	harvest(&l, &got);
	for (size_t i = 0; i < got.n; i++)
		if (!l.walks_write || !pages_has(&l.base, got.pfn[i]) ||
		    got.pfn[i] == DIRTY_LAB_MAILBOX(0) / PAGE)
			fail_msg("page 0x%llx reported while paused",
				 (unsigned long long)got.pfn[i] * PAGE);
	pages_free(&got);
	harvest(&l, &got);
	assert_int_equal(got.n, 0);
	assert_int_equal(kvmkit_vm_resume(l.vm), 0);
	pages_free(&got);

	assert_int_equal(kvmkit_dirty_disable(l.vm), 0);
	assert_false(kvmkit_dirty_enabled(l.vm));
	pages_free(&w);
	dl_finish(&l);
}

/* Two vCPUs write disjoint sets at the same time (two rings in ring mode). */
static void test_two_vcpus(void **state)
{
	struct pages want = { 0 };
	struct dl l;

	(void)state;
	require_mode();
	dl_start(&l, 2, 64 * MIB);
	dl_enable(&l, NULL);
	expect_write(&l, &want, DIRTY_LAB_AREA, 500, PAGE);
	expect_write(&l, &want, DIRTY_LAB_AREA + 4 * MIB, 300, 2 * PAGE);
	dl_post(&l, 0, DIRTY_LAB_WRITE, DIRTY_LAB_AREA, 500, PAGE, 1);
	dl_post(&l, 1, DIRTY_LAB_WRITE, DIRTY_LAB_AREA + 4 * MIB, 300, 2 * PAGE, 2);
	dl_wait(&l, 0);
	dl_wait(&l, 1);
	expect_harvest(&l, &want, "two vCPUs' writes");
	pages_free(&want);
	dl_finish(&l);
}

/* Writes the VMM makes: kvmkit_vm_write (across a page boundary) and
 * kvmkit_vm_mark_dirty; nothing marked while logging was off. */
static void test_vmm_writes(void **state)
{
	const uint64_t p = DIRTY_LAB_AREA + 5 * MIB, q = DIRTY_LAB_AREA + 9 * MIB;
	uint8_t buf[16] = { 1, 2, 3 };
	struct pages want = { 0 }, first = { 0 };
	struct dl l;

	(void)state;
	require_mode();
	dl_start(&l, 1, 64 * MIB);
	/* Off: neither marks anything. */
	assert_int_equal(kvmkit_vm_write(l.vm, q, buf, sizeof(buf)), 0);
	assert_int_equal(kvmkit_vm_mark_dirty(l.vm, q, PAGE), 0);
	dl_enable(&l, &first);
	assert_false(pages_has(&first, q / PAGE));
	pages_free(&first);

	assert_int_equal(kvmkit_vm_write(l.vm, p + PAGE - 8, buf, sizeof(buf)), 0);
	assert_int_equal(kvmkit_vm_mark_dirty(l.vm, q + 100, 2 * PAGE), 0); /* 3 pages */
	assert_int_equal(kvmkit_vm_mark_dirty(l.vm, q + 10 * PAGE, 0), 0); /* none */
	assert_int_equal(kvmkit_vm_mark_dirty(l.vm, 64 * MIB - 8, 16), -EFAULT);
	assert_int_equal(kvmkit_vm_mark_dirty(l.vm, ~0ull - 8, 16), -EFAULT);
	pages_stride(&want, p, 2, PAGE);
	pages_stride(&want, q, 3, PAGE);
	expect_harvest(&l, &want, "kvmkit_vm_write and kvmkit_vm_mark_dirty");
	expect_harvest(&l, NULL, "a second harvest");

	/* Marked, then logging off and on again: forgotten. */
	assert_int_equal(kvmkit_vm_mark_dirty(l.vm, q, PAGE), 0);
	assert_int_equal(kvmkit_dirty_disable(l.vm), 0);
	pages_free(&l.base);
	dl_enable(&l, &first);
	assert_false(pages_has(&first, q / PAGE));
	pages_free(&first);
	pages_free(&want);
	dl_finish(&l);
}

/* The loaders' writes (segments, boot page tables and GDT) are reported:
 * a VM that never ran, so KVM logs nothing and every page is the VMM's. */
static void test_loader_writes(void **state)
{
	struct kvmkit_elf_image img;
	struct pages want = { 0 }, got = { 0 };
	struct dl l;
	void *image;
	size_t len;

	(void)state;
	require_mode();
	dl_create(&l, 1, 16 * MIB);
	assert_int_equal(kvmkit_read_file(guest_path("dirty_lab"), &image, &len), 0);
	assert_int_equal(kvmkit_elf_parse(image, len, &img), 0);
	assert_int_equal(kvmkit_dirty_enable(l.vm), 0);
	assert_int_equal(kvmkit_elf_load(l.vm, image, len, &img, 0, 0), 0);
	assert_int_equal(kvmkit_x86_write_boot_area(l.vm), 0);
	for (unsigned int i = 0; i < img.nsegs; i++)
		for (uint64_t a = img.segs[i].paddr & ~(PAGE - 1);
		     a < img.segs[i].paddr + img.segs[i].memsz; a += PAGE)
			pages_add(&want, a / PAGE);
	pages_add(&want, KVMKIT_X86_BOOT_PML4 / PAGE);
	pages_add(&want, KVMKIT_X86_BOOT_PDPT / PAGE);
	pages_stride(&want, KVMKIT_X86_BOOT_PD, 4, PAGE);
	pages_add(&want, KVMKIT_X86_BOOT_GDT / PAGE);
	pages_normalize(&want);
	harvest(&l, &got);
	assert_pages(&got, &want, "loader writes");
	free(image);
	pages_free(&want);
	pages_free(&got);
	kvmkit_machine_destroy(l.m);
}

/* A slot added while logging is on is logged from the start, to its last
 * page; its size (259 pages) is not a multiple of 64. */
static void test_slot_added(void **state)
{
	const uint64_t base = 1ull << 30, npages = 259;
	static const uint64_t pick[] = { 0, 63, 64, 130, 258 };
	struct pages want = { 0 };
	struct dl l;
	int slot;

	(void)state;
	require_mode();
	dl_start(&l, 1, 64 * MIB);
	dl_enable(&l, NULL);
	slot = kvmkit_vm_add_memory(l.vm, base, npages * PAGE, 0, NULL);
	assert_true(slot >= 0);
	for (unsigned int i = 0; i < sizeof(pick) / sizeof(pick[0]); i++)
		dl_write_expect(&l, 0, &want, base + pick[i] * PAGE + 16, 1, PAGE);
	/* 60..70: across a word */
	dl_write_expect(&l, 0, &want, base + 60 * PAGE, 11, PAGE);
	expect_harvest(&l, &want, "a slot added while logging");
	/* The guest really wrote there (not an MMIO exit). */
	assert_int_equal(*(uint64_t *)kvmkit_vm_gpa_to_hva(l.vm, base + 258 * PAGE + 16, 8),
			 0x5157000000000000ull + base + 258 * PAGE + 16);
	expect_harvest(&l, NULL, "a second harvest");
	assert_int_equal(kvmkit_vm_remove_memory(l.vm, slot), 0);
	pages_free(&want);
	dl_finish(&l);
}

/* 5000 pages in one command: in ring mode, with a ring of 1024 entries
 * (the smallest every x86 host takes: Intel's PML reserves 512 more than
 * the 64 KVM keeps), the vCPU's ring fills over and over and kvmkit's exit
 * handler empties it on the vCPU's thread; nothing may be lost in any
 * mode. */
static void test_many_pages(void **state)
{
	struct pages want = { 0 };
	struct kvmkit_dirty_stats st;
	struct dl l;

	(void)state;
	require_mode();
	ring_override = 1024;
	dl_start(&l, 1, 64 * MIB);
	ring_override = 0;
	dl_enable(&l, NULL);
	dl_write_expect(&l, 0, &want, DIRTY_LAB_AREA, 5000, PAGE);
	expect_harvest(&l, &want, "5000 pages");
	kvmkit_dirty_get_stats(l.vm, &st);
	printf("%s: %llu ring-full exits, %llu ring entries, %llu resets, %llu clears\n", cur->name,
	       (unsigned long long)st.ring_full_exits, (unsigned long long)st.ring_entries,
	       (unsigned long long)st.ring_resets, (unsigned long long)st.clear_calls);
	if (kvmkit_dirty_mode(l.vm) == KVMKIT_DIRTY_RING) {
		assert_true(st.ring_full_exits >= 5000 / 1024);
		assert_true(st.ring_entries >= 5000);
	} else {
		assert_int_equal(st.ring_full_exits, 0);
	}
	assert_int_equal(st.clear_calls > 0, kvmkit_dirty_mode(l.vm) == KVMKIT_DIRTY_BITMAP_MANUAL);
	pages_free(&want);
	dl_finish(&l);
}

/*
 * Harvests again and again while the guest writes 8000 pages (and, in
 * ring mode, while its ring of 1024 entries fills and its thread empties
 * it, about once between two harvests on KVM-PVM): together the
 * harvests report exactly the pages written, none missing and none extra.
 * A page may come twice: KVM logs a page when the write faults, before the
 * store retires, so a harvest that re-protects it in between makes the
 * store fault, and log it, again. That is KVM's contract ("may have been
 * written since"), and harmless to a copier: the page is copied twice.
 */
static void test_harvest_while_writing(void **state)
{
	const uint64_t n = 8000;
	struct pages want = { 0 }, got = { 0 }, all = { 0 };
	struct kvmkit_dirty_stats st;
	unsigned int harvests = 0;
	size_t reported;
	struct dl l;

	(void)state;
	require_mode();
	ring_override = 1024;
	dl_start(&l, 1, 64 * MIB);
	ring_override = 0;
	dl_enable(&l, NULL);
	expect_write(&l, &want, DIRTY_LAB_AREA, n, PAGE);
	pages_add_all(&want, &l.base);
	dl_post(&l, 0, DIRTY_LAB_WRITE, DIRTY_LAB_AREA, n, PAGE, 3);
	for (;;) {
		bool done = __atomic_load_n(mb_u32(&l, 0, DIRTY_LAB_MB_ACK), __ATOMIC_ACQUIRE) ==
			    *mb_u32(&l, 0, DIRTY_LAB_MB_SEQ);

		if (done)
			sync_harvest(&l, &got); /* the rest, as every test ends */
		else
			harvest(&l, &got);
		harvests++;
		for (size_t i = 0; i < got.n; i++)
			pages_add(&all, got.pfn[i]);
		pages_free(&got);
		if (done)
			break;
		usleep(50000); /* in ring mode, let the ring fill between */
	}
	reported = all.n;
	pages_normalize(&all);
	assert_pages(&all, &want, "harvests while the guest writes");
	kvmkit_dirty_get_stats(l.vm, &st);
	printf("%s: %u harvests while %llu pages were written: %zu reported, %zu distinct, "
	       "%llu ring-full exits\n",
	       cur->name, harvests, (unsigned long long)n, reported, all.n,
	       (unsigned long long)st.ring_full_exits);
	pages_free(&want);
	pages_free(&all);
	dl_finish(&l);
}

struct stopper {
	struct pages *s;
	unsigned int left;
};

static int stop_after(uint64_t gpa, uint64_t npages, void *opaque)
{
	struct stopper *st = opaque;

	if (!st->left)
		return 5;
	st->left--;
	return collect(gpa, npages, st->s);
}

/* A callback that stops the harvest: what it did not take comes with the
 * next harvest, nothing lost and nothing twice (the VM is paused for the
 * two harvests, so that the guest's walks add nothing between them). */
static void test_stop_midway(void **state)
{
	struct pages first = { 0 }, want = { 0 }, got = { 0 };
	struct stopper st = { &first, 1 };
	struct kvmkit_dirty_result res;
	struct dl l;

	(void)state;
	require_mode();
	dl_start(&l, 1, 64 * MIB);
	dl_enable(&l, NULL);
	dl_write_expect(&l, 0, &want, DIRTY_LAB_AREA, 3, 2 * PAGE); /* three runs of one page */
	dl_write_expect(&l, 0, &want, DIRTY_LAB_AREA + 2 * MIB, 70, PAGE);
	pages_add_all(&want, &l.base);
	dl_nop_all(&l);
	assert_int_equal(kvmkit_vm_pause(l.vm), 0);
	assert_int_equal(kvmkit_dirty_harvest(l.vm, stop_after, &st, &res), 5);
	assert_int_equal(res.runs, 1);
	assert_int_equal(res.pages_dirty, first.n);
	harvest(&l, &got);
	assert_int_equal(kvmkit_vm_resume(l.vm), 0);
	assert_int_equal(first.n + got.n, want.n); /* nothing twice */
	pages_add_all(&got, &first);
	assert_pages(&got, &want, "a harvest stopped after one run, then the rest");
	pages_free(&first);
	pages_free(&want);
	pages_free(&got);
	dl_finish(&l);
}

static void test_errors(void **state)
{
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm = NULL;
	struct dl l;

	(void)state;
	dl_create(&l, 1, 16 * MIB);
	assert_int_equal(kvmkit_dirty_harvest(l.vm, collect, NULL, NULL), -EBUSY);
	assert_int_equal(kvmkit_dirty_disable(l.vm), -EBUSY);
	assert_int_equal(kvmkit_dirty_enable(l.vm), 0);
	assert_int_equal(kvmkit_dirty_enable(l.vm), -EBUSY);
	assert_int_equal(kvmkit_dirty_harvest(l.vm, NULL, NULL, NULL), 0);
	assert_int_equal(kvmkit_dirty_disable(l.vm), 0);
	kvmkit_machine_destroy(l.m);

	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 16 * MIB;
	cfg.dirty_ring_entries = 1000;
	assert_int_equal(kvmkit_vm_create(&cfg, &vm), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "power of two"));
	if (expected_mode() == KVMKIT_DIRTY_RING) {
		cfg.dirty_ring_entries = 1u << 30;
		assert_int_equal(kvmkit_vm_create(&cfg, &vm), -EINVAL);
		assert_non_null(strstr(kvmkit_strerror(), "larger than"));
	}
}

static int use_bitmap_manual(void **state)
{
	(void)state;
	cur = &modes[0];
	return 0;
}

static int use_bitmap(void **state)
{
	(void)state;
	cur = &modes[1];
	return 0;
}

static int use_ring(void **state)
{
	(void)state;
	cur = &modes[2];
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode),	     cmocka_unit_test(test_errors),
		cmocka_unit_test(test_guest_writes), cmocka_unit_test(test_two_vcpus),
		cmocka_unit_test(test_vmm_writes),   cmocka_unit_test(test_loader_writes),
		cmocka_unit_test(test_slot_added),   cmocka_unit_test(test_many_pages),
		cmocka_unit_test(test_stop_midway),  cmocka_unit_test(test_harvest_while_writing),
	};
	int fails = 0;

	test_args(argc, argv);
	require_kvm();
	fails += cmocka_run_group_tests_name("dirty-bitmap-manual", tests, use_bitmap_manual, NULL);
	fails += cmocka_run_group_tests_name("dirty-bitmap", tests, use_bitmap, NULL);
	fails += cmocka_run_group_tests_name("dirty-ring", tests, use_ring, NULL);
	return fails;
}
