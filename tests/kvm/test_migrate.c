// SPDX-License-Identifier: MIT
/*
 * Live migration on /dev/kvm with the mig_loop guest
 * (tests/guest/progs/mig_loop.c, mig_abi.h), in both irqchip modes:
 *  - a two-vCPU guest rewriting an 8 MiB pattern (paced by its LAPIC timer)
 *    migrates to a target in another process over a unix socket and over
 *    tcp loopback; the target checks the guest there: its ticks go on, and
 *    once told to finish it reports no page without its expected pattern,
 *    a checksum of the area equal to the host's over the target's RAM and
 *    to the pattern its pass and index describe, and powers off OK; the
 *    source VM ends with reason MIGRATED; once more with the source's
 *    pages harvested from small dirty rings that fill while it runs;
 *  - a target killed mid-stream, and one that takes the whole stream and
 *    closes without its confirmation (the source is paused then): the
 *    source's migration fails with one error, its VM runs on, and its guest
 *    finishes with the same checks;
 *  - refusals: a target of another configuration (the source reports the
 *    target's reason), a stream of another version, garbage, a corrupted
 *    record and a truncated stream are refused with the right error, and
 *    the target leaves no fd, thread or machine behind.
 * Every wait is bounded; nothing asserts on timing.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <kvmkit/migrate.h>

#include "kvm_test.h"
#include "mig_abi.h"
#include "migration/mig_wire.h"

#define MEM (32ull << 20)
#define AREA_PAGES 2048ull /* 8 MiB */
/* Live passes at most: the emulated x86 host copies a few MiB a second,
 * slower than the guest dirties its area, and would go to the default 30. */
#define MAX_PASSES 4
#define RATE 64 /* pages per tick per vCPU: about 50 MiB/s each */
#define NCPU 2
#define WAIT_MS 30000

static uint64_t ld(struct kvmkit_vm *vm, uint64_t gpa)
{
	volatile uint64_t *p = kvmkit_vm_gpa_to_hva(vm, gpa, 8);

	return p ? __atomic_load_n(p, __ATOMIC_ACQUIRE) : 0;
}

/* Waits until the u64 (or u32) at @gpa reaches @want; false on time out. */
static bool reach(struct kvmkit_vm *vm, uint64_t gpa, bool wide, uint64_t want)
{
	uint64_t end = now_ms() + WAIT_MS;

	while ((wide ? ld(vm, gpa) : (uint32_t)ld(vm, gpa)) < want)
		if (now_ms() > end)
			return false;
		else
			usleep(500);
	return true;
}

static void config(struct kvmkit_machine_config *cfg, unsigned int vcpus)
{
	kvmkit_machine_config_init(cfg);
	cfg->vm.vcpus = vcpus;
	cfg->vm.mem_size = MEM;
	cfg->irqchip = true;
	cfg->irqchip_mode = chip_mode;
}

/* FNV-1a over the area's words, as the guest computes it. */
static uint64_t fnv(const uint64_t *w, uint64_t words)
{
	uint64_t h = MIG_FNV_OFFSET;

	for (uint64_t i = 0; i < words; i++)
		h = (h ^ w[i]) * MIG_FNV_PRIME;
	return h;
}

/* The area as mig_loop's reports (pass and index per vCPU) say it is. */
static uint64_t expected_sum(const uint64_t *rep, unsigned int n)
{
	uint64_t per = AREA_PAGES / n, h = MIG_FNV_OFFSET;

	for (unsigned int c = 0; c < n; c++) {
		uint64_t pass = rep[c * 8] | rep[c * 8 + 1] << 32;
		uint64_t index = rep[c * 8 + 2] | rep[c * 8 + 3] << 32;

		for (uint64_t i = 0; i < per; i++) {
			uint64_t p = c * per + i, k = i < index ? pass : pass - 1;

			for (uint64_t w = 0; w < 512; w++)
				h = (h ^ (k ? MIG_WORD(k, p, w) : 0)) * MIG_FNV_PRIME;
		}
	}
	return h;
}

/* Tells a running mig_loop to finish and checks its verdict: 0, or a
 * message (static) saying what was wrong. */
static const char *finish_and_check(struct kvmkit_machine *m, unsigned int n)
{
	static char why[640];
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	uint64_t rep[NCPU * 8 + 2], ticks0[NCPU], sum;
	struct kvmkit_stop_info info;
	uint32_t fin = MIG_CMD_FINISH;
	const uint64_t *area;

	/* The timer goes on where the guest now runs. */
	for (unsigned int c = 0; c < n; c++) {
		ticks0[c] = ld(vm, MIG_CPU(c) + MIG_TICKS);
		if (!reach(vm, MIG_CPU(c) + MIG_TICKS, true, ticks0[c] + 3))
			return "the tick counter stopped";
	}
	if (kvmkit_vm_write(vm, MIG_CMD, &fin, 4) ||
	    kvmkit_machine_run(m, GUEST_WATCHDOG_MS, &info))
		return kvmkit_strerror();
	if (info.reason != KVMKIT_STOP_GUEST_EXIT || info.status != GUEST_STATUS_OK) {
		snprintf(why, sizeof(why), "guest stopped: %s, status %d: %s",
			 kvmkit_stop_reason_name(info.reason), info.status, info.detail);
		return why;
	}
	if (kvmkit_report_values(kvmkit_machine_report(m), rep, n * 8 + 2) != n * 8 + 2)
		return "the guest reported too little";
	for (unsigned int c = 0; c < n; c++)
		if (rep[c * 8 + 6] || (rep[c * 8 + 4] | rep[c * 8 + 5] << 32) < ticks0[c] + 3)
			return "a vCPU counted pattern errors or too few ticks";
	area = kvmkit_vm_gpa_to_hva(vm, MIG_AREA, AREA_PAGES * 4096);
	sum = rep[n * 8] | rep[n * 8 + 1] << 32;
	if (!area || fnv(area, AREA_PAGES * 512) != sum)
		return "the guest's checksum differs from the host's over the RAM";
	if (expected_sum(rep, n) != sum)
		return "the area does not hold the pattern the guest's pass and index describe";
	return NULL;
}

/* mig_loop on NCPU vCPUs, started, the area filled once (pass 2 begun on
 * every vCPU) and the timer ticking. */
static struct kvmkit_machine *source_guest_ring(uint64_t rate, uint32_t ring)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	uint64_t pages = AREA_PAGES;
	struct kvmkit_vm *vm;
	void *image;
	size_t len;

	if (kvmkit_read_file(guest_path("mig_loop"), &image, &len))
		fail_msg("%s", kvmkit_strerror());
	config(&cfg, NCPU);
	cfg.kernel = image;
	cfg.kernel_len = len;
	cfg.vm.dirty_ring_entries = ring;
	if (kvmkit_machine_create(&cfg, &m))
		fail_msg("machine: %s", kvmkit_strerror());
	free(image);
	vm = kvmkit_machine_vm(m);
	assert_int_equal(kvmkit_vm_write(vm, MIG_PAGES, &pages, 8), 0);
	assert_int_equal(kvmkit_vm_write(vm, MIG_RATE, &rate, 8), 0);
	assert_int_equal(kvmkit_vm_start(vm), 0);
	for (unsigned int c = 0; c < NCPU; c++) {
		assert_true(reach(vm, MIG_CPU(c) + MIG_READY, false, 1));
		assert_true(reach(vm, MIG_CPU(c) + MIG_PASS, true, 2));
		assert_true(reach(vm, MIG_CPU(c) + MIG_TICKS, true, 3));
	}
	return m;
}

/* The same with dirty logging through the bitmap. */
static struct kvmkit_machine *source_guest(uint64_t rate)
{
	return source_guest_ring(rate, 0);
}

/* ---- a target in another process ----------------------------------------- */

static void tell_addr(const char *addr, void *opaque)
{
	int fd = *(int *)opaque;
	ssize_t w = write(fd, addr, strlen(addr) + 1);

	(void)w;
}

/* The child: receives the machine, checks the guest, exits 0 when right. */
static __attribute__((noreturn)) void target_main(const char *from, int fd)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_incoming_params p;
	struct kvmkit_incoming_stats st;
	struct kvmkit_machine *m = NULL;
	const char *why;

	alarm(60);
	config(&cfg, NCPU);
	kvmkit_incoming_params_init(&p);
	p.accept_timeout_ms = WAIT_MS;
	p.listening = tell_addr;
	p.opaque = &fd;
	if (kvmkit_machine_incoming(&cfg, from, &p, &st, &m)) {
		fprintf(stderr, "target: %s\n", kvmkit_strerror());
		_exit(10);
	}
	close(fd);
	why = finish_and_check(m, NCPU);
	if (why) {
		fprintf(stderr, "target: %s\n", why);
		_exit(11);
	}
	printf("target: downtime %llu us, %llu pages + %llu zero, %u passes, %llu bytes\n",
	       (unsigned long long)st.downtime_us, (unsigned long long)st.pages,
	       (unsigned long long)st.zero_pages, st.passes, (unsigned long long)st.bytes);
	fflush(stdout);
	kvmkit_machine_destroy(m);
	_exit(0);
}

/* Forks a target listening at @from; *@to gets the address it bound. */
static pid_t spawn_target(const char *from, char *to, size_t len)
{
	struct pollfd pfd;
	int fds[2];
	ssize_t n = 0;
	pid_t pid;

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		close(fds[0]);
		target_main(from, fds[1]);
	}
	close(fds[1]);
	pfd = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	if (poll(&pfd, 1, WAIT_MS) == 1)
		n = read(fds[0], to, len - 1);
	close(fds[0]);
	if (n <= 0)
		fail_msg("the target did not listen on %s", from);
	to[n] = '\0';
	return pid;
}

static int reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *sock_path(const char *tag)
{
	static char buf[108];

	snprintf(buf, sizeof(buf), "/tmp/kvmkit-mig-%d-%s.sock", (int)getpid(), tag);
	unlink(buf);
	return buf;
}

struct wait_pages {
	struct kvmkit_vm *vm;
	uint64_t pages;
};

/* After pass 1: waits (bounded) until vCPU 0 has written @pages more
 * pages, so that pass 2 has pages to send (and, with a ring, that its ring
 * filled) whatever the timing. */
static void let_guest_write(const struct kvmkit_migrate_progress *p, void *opaque)
{
	struct wait_pages *w = opaque;
	uint64_t n = ld(w->vm, MIG_CPU(0) + MIG_PACE_PAGES);

	if (p->pass == 1)
		reach(w->vm, MIG_CPU(0) + MIG_PACE_PAGES, true, n + w->pages);
}

/* Migrates a running mig_loop to a target in a new process listening at
 * @from; the source harvests its dirty ring (@ring entries per vCPU) or,
 * with 0, its bitmap. */
static void migrate_to_process(const char *from, uint32_t ring)
{
	char to[KVMK_MIG_MAX_MSG], listen[128];
	struct kvmkit_migrate_params p;
	struct kvmkit_migrate_stats st;
	struct kvmkit_stop_info info;
	struct kvmkit_machine *m;
	struct wait_pages w;
	pid_t pid;

	snprintf(listen, sizeof(listen), "%s", from);
	pid = spawn_target(listen, to, sizeof(to));
	m = source_guest_ring(RATE, ring);
	/* A ring takes at most @ring distinct pages before its vCPU exits. */
	w = (struct wait_pages){ kvmkit_machine_vm(m), ring ? 2 * ring : RATE };
	kvmkit_migrate_params_init(&p);
	p.max_passes = MAX_PASSES;
	p.progress = let_guest_write;
	p.opaque = &w;
	if (kvmkit_machine_migrate(m, to, &p, &st)) {
		/* The emulated hosts bring no network interface up, not even lo. */
		if (kvmkit_last_error()->err == ENETUNREACH) {
			kill(pid, SIGKILL);
			reap(pid);
			kvmkit_machine_destroy(m);
			printf("skipped: %s: %s\n", to, kvmkit_strerror());
			skip();
		}
		fail_msg("migrate to %s: %s", to, kvmkit_strerror());
	}
	/* The source is done, with the reason. */
	assert_int_equal(kvmkit_vm_wait(kvmkit_machine_vm(m), WAIT_MS, &info), 0);
	assert_int_equal(info.reason, KVMKIT_STOP_MIGRATED);
	assert_non_null(strstr(info.detail, to));
	assert_false(kvmkit_dirty_enabled(kvmkit_machine_vm(m)));
	printf("source: %s: downtime %llu us (target) %llu us (source), %u passes, "
	       "pages per pass %llu %llu %llu..., %llu bytes (state %llu), %llu ms\n",
	       to, (unsigned long long)st.downtime_us, (unsigned long long)st.source_downtime_us,
	       st.passes, (unsigned long long)st.pass_pages[0],
	       (unsigned long long)st.pass_pages[1], (unsigned long long)st.pass_pages[2],
	       (unsigned long long)st.bytes, (unsigned long long)st.state_bytes,
	       (unsigned long long)(st.total_us / 1000));
	/* The full pass sent the whole area; the guest dirtied more meanwhile,
	 * which pass 2 sent. */
	assert_true(st.passes >= 3 && st.passes <= MAX_PASSES + 1);
	assert_true(st.pass_pages[0] >= AREA_PAGES);
	assert_true(st.pass_pages[1] > 0);
	assert_true(st.downtime_us > 0 && st.source_downtime_us >= st.downtime_us);
	if (ring) {
		struct kvmkit_dirty_stats ds;

		kvmkit_dirty_get_stats(kvmkit_machine_vm(m), &ds);
		printf("source: dirty mode %s, %llu ring-full exits\n",
		       kvmkit_dirty_mode_name(kvmkit_dirty_mode(kvmkit_machine_vm(m))),
		       (unsigned long long)ds.ring_full_exits);
		if (kvmkit_dirty_mode(kvmkit_machine_vm(m)) == KVMKIT_DIRTY_RING)
			assert_true(ds.ring_full_exits > 0);
	}
	kvmkit_machine_destroy(m);
	assert_int_equal(reap(pid), 0);
}

static void test_unix(void **state)
{
	char from[128];

	snprintf(from, sizeof(from), "unix:%s", sock_path("u"));
	migrate_to_process(from, 0);
}

static void test_tcp(void **state)
{
	migrate_to_process("tcp:127.0.0.1:0", 0);
}

/* The same with the source's pages harvested from per-vCPU dirty rings,
 * of the smallest size KVM takes (256 entries, one page), which the guest
 * fills while it runs: the vCPUs empty them at their ring-full exits. */
static void test_unix_ring(void **state)
{
	char from[128];

	snprintf(from, sizeof(from), "unix:%s", sock_path("g"));
	migrate_to_process(from, 256);
}

/* ---- the source survives ----------------------------------------------------- */

static pid_t victim;

static void kill_after_pass1(const struct kvmkit_migrate_progress *p, void *opaque)
{
	if (p->pass == 1 && victim > 0) {
		kill(victim, SIGKILL);
		*(int *)opaque = reap(victim);
		victim = 0;
	}
}

/* After a failed migration: the VM runs as before, logging is off, and the
 * guest finishes with every check passing. */
static void source_intact(struct kvmkit_machine *m)
{
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	const char *why;
	uint64_t pass0 = ld(vm, MIG_CPU(0) + MIG_PASS);

	assert_int_equal(kvmkit_vm_state(vm), KVMKIT_VM_RUNNING);
	assert_false(kvmkit_dirty_enabled(vm));
	/* Still rewriting its pattern. */
	assert_true(reach(vm, MIG_CPU(0) + MIG_PASS, true, pass0 + 1));
	why = finish_and_check(m, NCPU);
	if (why)
		fail_msg("source after the failed migration: %s", why);
	kvmkit_machine_destroy(m);
}

static void test_target_killed(void **state)
{
	struct kvmkit_migrate_params p;
	struct kvmkit_machine *m;
	char from[128], to[200];
	int status = -1;

	snprintf(from, sizeof(from), "unix:%s", sock_path("k"));
	victim = spawn_target(from, to, sizeof(to));
	m = source_guest(RATE);
	kvmkit_migrate_params_init(&p);
	p.max_passes = MAX_PASSES;
	p.progress = kill_after_pass1;
	p.opaque = &status;
	p.stop_pages = 1; /* keep going after pass 1 */
	assert_true(kvmkit_machine_migrate(m, to, &p, NULL) < 0);
	printf("source: %s\n", kvmkit_strerror());
	assert_int_equal(status, 128 + SIGKILL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_SYSCALL);
	assert_true(kvmkit_last_error()->err == EPIPE || kvmkit_last_error()->err == ECONNRESET);
	source_intact(m);
}

/* A fake target: takes the whole stream, parsed, into a buffer, then
 * closes without confirming (the source has paused its VM by then). */
struct fake {
	int lfd;
	int mode; /* 0: read all then close; 1: refuse with a raw reply */
	uint8_t *ram;
	bool got_end;
};

static void *fake_pages(void *ctx, uint64_t gpa, uint32_t n)
{
	return ((struct fake *)ctx)->ram + gpa;
}

static int fake_zero(void *ctx, uint64_t gpa, uint64_t n)
{
	memset(((struct fake *)ctx)->ram + gpa, 0, n * 4096);
	return 0;
}

static int fake_nop(void *ctx)
{
	return 0;
}

static int fake_state(void *ctx, const uint8_t *b, size_t len)
{
	return 0;
}

static int fd_read(void *ctx, void *buf, size_t len)
{
	int fd = *(int *)ctx;
	uint8_t *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n <= 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void send_record(int fd, uint32_t type, const void *p, uint32_t len)
{
	uint8_t h[8], t[4];

	kvmk_mig_put32(h, type);
	kvmk_mig_put32(h + 4, len);
	kvmk_mig_put32(t, kvmk_mig_crc(kvmk_mig_crc(0, h, 8), p, len));
	assert_int_equal(write(fd, h, 8), 8);
	if (len)
		assert_int_equal(write(fd, p, len), (ssize_t)len);
	assert_int_equal(write(fd, t, 4), 4);
}

static void *fake_target(void *arg)
{
	struct fake *f = arg;
	struct kvmk_mig_sink sink = { fake_pages, fake_zero, fake_nop, fake_state, f };
	struct kvmk_mig_hello h;
	struct kvmk_mig_rx rx = { 0 };
	int fd = accept(f->lfd, NULL, NULL);
	struct kvmk_mig_in in = { fd_read, &fd, 0 };

	if (fd >= 0 && !kvmk_mig_hello_read(&in, &h)) {
		send_record(fd, KVMK_MIG_ACCEPT, NULL, 0);
		f->got_end = !kvmk_mig_recv(&in, &sink, MEM, &rx);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int unix_listen(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	return fd;
}

static void test_no_confirmation(void **state)
{
	struct fake f = { 0 };
	struct kvmkit_migrate_params p;
	struct kvmkit_machine *m;
	struct kvmkit_migrate_stats st;
	char *path = sock_path("n"), to[140];
	pthread_t t;

	f.ram = calloc(1, MEM);
	assert_non_null(f.ram);
	f.lfd = unix_listen(path);
	snprintf(to, sizeof(to), "unix:%s", path);
	assert_int_equal(pthread_create(&t, NULL, fake_target, &f), 0);
	m = source_guest(RATE);
	kvmkit_migrate_params_init(&p);
	p.max_passes = MAX_PASSES;
	assert_true(kvmkit_machine_migrate(m, to, &p, &st) < 0);
	printf("source: %s\n", kvmkit_strerror());
	pthread_join(t, NULL);
	/* The whole stream went out, the VM paused for its end, and then
	 * resumed because no confirmation came. */
	assert_true(f.got_end);
	assert_true(st.passes >= 2 && st.state_bytes > 0);
	assert_int_equal(kvmkit_last_error()->err, EPIPE);
	source_intact(m);
	close(f.lfd);
	unlink(path);
	free(f.ram);
}

/* ---- refusals ------------------------------------------------------------------ */

/* The threads of this process once the joined ones are gone: a thread
 * pthread_join() returned for may stay listed for a moment while the
 * kernel finishes its exit (seen in the slow emulated host). Bounded. */
static unsigned int tasks_settle(unsigned int want)
{
	unsigned int n = count_entries("/proc/self/task");

	for (int i = 0; n > want && i < 2000; i++) {
		usleep(1000);
		n = count_entries("/proc/self/task");
	}
	return n;
}

struct tgt {
	char from[140];
	unsigned int vcpus;
	int r;
	struct kvmkit_error err;
	struct kvmkit_machine *m;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool listening;
};

static void tgt_listening(const char *addr, void *opaque)
{
	struct tgt *t = opaque;

	pthread_mutex_lock(&t->lock);
	t->listening = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void *tgt_thread(void *arg)
{
	struct tgt *t = arg;
	struct kvmkit_machine_config cfg;
	struct kvmkit_incoming_params p;

	config(&cfg, t->vcpus);
	kvmkit_incoming_params_init(&p);
	p.accept_timeout_ms = WAIT_MS;
	p.timeout_ms = 5000;
	p.listening = tgt_listening;
	p.opaque = t;
	t->r = kvmkit_machine_incoming(&cfg, t->from, &p, NULL, &t->m);
	t->err = *kvmkit_last_error();
	return NULL;
}

/* A target thread at a fresh unix socket, listening when this returns. */
static pthread_t tgt_start(struct tgt *t, unsigned int vcpus)
{
	pthread_t th;

	memset(t, 0, sizeof(*t));
	snprintf(t->from, sizeof(t->from), "unix:%s", sock_path("r"));
	t->vcpus = vcpus;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	assert_int_equal(pthread_create(&th, NULL, tgt_thread, t), 0);
	pthread_mutex_lock(&t->lock);
	while (!t->listening)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	return th;
}

/* Joins the target; it must have failed with @kind and @needle. */
static void tgt_refused(struct tgt *t, pthread_t th, enum kvmkit_error_kind kind,
			const char *needle)
{
	char line[512];

	pthread_join(th, NULL);
	kvmkit_error_format(&t->err, line, sizeof(line));
	printf("target: %s\n", line);
	assert_true(t->r < 0);
	assert_null(t->m);
	if (t->err.kind != kind || !strstr(line, needle))
		fail_msg("wanted kind %d with '%s', got kind %d: %s", kind, needle, t->err.kind,
			 line);
	assert_null(strchr(line, '\n'));
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
}

static void test_config_refused(void **state)
{
	unsigned int fds = count_entries("/proc/self/fd");
	struct kvmkit_machine *m = source_guest(RATE);
	struct tgt t;
	pthread_t th = tgt_start(&t, 1);

	assert_true(kvmkit_machine_migrate(m, t.from, NULL, NULL) < 0);
	printf("source: %s\n", kvmkit_strerror());
	assert_int_equal(kvmkit_last_error()->err, ECONNREFUSED);
	assert_non_null(strstr(kvmkit_strerror(), "vcpus"));
	assert_non_null(strstr(kvmkit_strerror(), "1 here, 2 from the source"));
	tgt_refused(&t, th, KVMKIT_ERR_PARAM, "1 here, 2 from the source");
	source_intact(m);
	assert_int_equal(count_entries("/proc/self/fd"), fds);
}

/* Connects to @t and sends @len bytes of @p, then reads the target's
 * reply (a refusal, when the target got that far) into @rep. */
static int raw_send(struct tgt *t, const void *p, size_t len, bool close_early,
		    struct kvmk_mig_reply *rep)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r = -1;
	struct kvmk_mig_in in = { fd_read, &fd, 0 };

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->from + 5);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	if (close_early)
		shutdown(fd, SHUT_WR);
	/* An ACCEPT may come first (after a good hello). */
	while (!kvmk_mig_reply_read(&in, rep)) {
		r = 0;
		if (rep->type != KVMK_MIG_ACCEPT)
			break;
	}
	close(fd);
	return r;
}

/* A valid hello of the source's machine (2 vCPUs, MEM, this irqchip). */
static size_t good_hello(uint8_t *b, uint32_t version)
{
	struct kvmk_mig_hello h = { .version = version,
				    .arch = KVMKIT_ARCH_X86_64,
				    .vcpus = NCPU,
				    .irqchip = 1 + (uint32_t)chip_mode,
				    .mem_size = MEM,
				    .page_size = 4096,
				    .nr_regions = 1,
				    .regions = { { 0, MEM } } };

	return kvmk_mig_hello_build(&h, b);
}

static void hostile(const uint8_t *p, size_t len, bool close_early, enum kvmkit_error_kind kind,
		    const char *needle)
{
	unsigned int fds = count_entries("/proc/self/fd");
	unsigned int tasks = count_entries("/proc/self/task");
	struct kvmk_mig_reply rep;
	struct tgt t;
	pthread_t th = tgt_start(&t, NCPU);
	int r = raw_send(&t, p, len, close_early, &rep);

	tgt_refused(&t, th, kind, needle);
	/* The source is told why, unless it is the one that went away. */
	if (!close_early) {
		assert_int_equal(r, 0);
		assert_int_equal(rep.type, KVMK_MIG_REFUSE);
		assert_non_null(strstr(rep.msg, needle));
	}
	assert_int_equal(count_entries("/proc/self/fd"), fds);
	assert_int_equal(tasks_settle(tasks), tasks);
}

static void test_streams_refused(void **state)
{
	uint8_t b[KVMK_MIG_HELLO_MAX + 64], junk[64];
	size_t n;

	/* Another version (a right CRC): named as such, before any field. */
	n = good_hello(b, 2);
	hostile(b, n, false, KVMKIT_ERR_FORMAT, "migration stream version 2, this kvmkit reads 1");
	/* Garbage. */
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	hostile(junk, sizeof(junk), false, KVMKIT_ERR_FORMAT, "bad magic");
	/* A flipped bit in the hello. */
	n = good_hello(b, 1);
	b[22] ^= 1;
	hostile(b, n, false, KVMKIT_ERR_FORMAT, "CRC-32C");
	/* A good hello, then a record whose CRC is wrong. */
	n = good_hello(b, 1);
	kvmk_mig_put32(b + n, KVMK_MIG_PASS_END);
	kvmk_mig_put32(b + n + 4, 16);
	memset(b + n + 8, 0, 20);
	hostile(b, n + 28, false, KVMKIT_ERR_FORMAT, "CRC-32C mismatch");
	/* A good hello, then the state before the pause. */
	kvmk_mig_put32(b + n, KVMK_MIG_STATE);
	kvmk_mig_put32(b + n + 4, 4);
	hostile(b, n + 8, false, KVMKIT_ERR_FORMAT, "out of order");
	/* A page record outside RAM. */
	kvmk_mig_put32(b + n, KVMK_MIG_PAGES);
	kvmk_mig_put32(b + n + 4, 16 + 4096);
	kvmk_mig_put64(b + n + 8, MEM);
	kvmk_mig_put32(b + n + 16, 1);
	hostile(b, n + 24, false, KVMKIT_ERR_FORMAT, "outside RAM");
	/* Truncated: the source stops sending in the middle. */
	hostile(b, n + 20, true, KVMKIT_ERR_SYSCALL, "closed the connection");
	/* A hello of another machine. */
	n = good_hello(b, 1);
	b[20] = 3;
	kvmk_mig_put32(b + n - 4, kvmk_mig_crc(0, b, n - 4));
	hostile(b, n, false, KVMKIT_ERR_PARAM, "2 here, 3 from the source");
}

static void test_bad_address(void **state)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	const char *bad[] = { "",	    "unix:",	   "tcp:",	     "tcp:1.2.3.4",
			      "tcp::80",    "tcp:host:0",  "tcp:host:65536", "tcp:host:8o",
			      "tcp:a:b:1",  "tcp:[::1]80", "udp:host:1",     "/tmp/sock",
			      "tcp:ho st:1" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(kvmkit_migrate_check_address(bad[i], false), -EINVAL);
		assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	}
	assert_int_equal(kvmkit_migrate_check_address("tcp:127.0.0.1:0", true), 0);
	assert_int_equal(kvmkit_migrate_check_address("tcp:[::1]:4444", false), 0);
	assert_int_equal(kvmkit_migrate_check_address("unix:/tmp/x", false), 0);
	config(&cfg, 1);
	assert_int_equal(kvmkit_machine_incoming(&cfg, "tcp:x", NULL, NULL, &m), -EINVAL);
	assert_null(m);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest both[] = {
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_unix_ring),
		cmocka_unit_test(test_target_killed),
		cmocka_unit_test(test_no_confirmation),
		cmocka_unit_test(test_config_refused),
		cmocka_unit_test(test_streams_refused),
	};
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_bad_address),
	};
	int fails = 0;

	test_args(argc, argv);
	require_kvm();
	signal(SIGPIPE, SIG_IGN);
	fails += cmocka_run_group_tests_name("migrate", once, NULL, NULL);
	fails += run_chip_groups("migrate", both);
	return fails ? 1 : 0;
}
