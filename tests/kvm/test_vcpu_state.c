// SPDX-License-Identifier: MIT
/*
 * kvmkit_vcpu_save/restore on /dev/kvm, with the snap_loop guest
 * (tests/guest/progs/snap_loop.c):
 *  - continuation: a running guest saved (vCPUs and irqchip) and restored
 *    into a second VM goes on where it was, timers ticking, in both irqchip
 *    modes with two vCPUs;
 *  - an I/O or MMIO read in flight at a pause or stop is completed exactly
 *    once across save and restore (src/kvm/vcpu.c), and after
 *    kvmkit_vcpu_run_once() too;
 *  - a register-level round trip: save, restore into a fresh vCPU, save
 *    again: equal but for what KVM moves by itself;
 *  - hostile blobs are refused and leave the vCPU as it was.
 * Every wait is bounded (WAIT_MS) and passes in milliseconds when kvmkit is
 * right; only test_tsc_deadline_order's depends on a length: a tick due
 * ONESHOT_MS after the save, which a wrong restore order would put many
 * minutes away.
 */
#include <pthread.h>
#include <semaphore.h>
#include <sys/ioctl.h>
#include <time.h>

#include "kvm_test.h"

#define MEM (64ull << 20)
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define WAIT_MS 20000 /* for events that normally take milliseconds */
#define BIG_TSC (1ull << 40)
/* How far ahead test_tsc_deadline_order arms its one-shot deadline: far
 * beyond a stall of the test between the guest arming it and the pause
 * (2 s was not, on a loaded one-CPU emulated host: the deadline fired
 * before the save), far short of the BIG_TSC cycles a wrong order adds. */
#define ONESHOT_MS 30000

/* The blob's layout (src/arch/x86/vcpu_state.h). */
#define HDR_LEN 20
#define SEC_MSRS 9
#define SEC_LAPIC 8
#define SEC_XSAVE 5
#define SEC_TSC_KHZ 12
#define LAPIC_TMCCT 0x390
#define MSR_TSC 0x10
#define MSR_TSC_DEADLINE 0x6e0

#define PVM_NO_TSC_WRITE                                                             \
	"KVM-PVM keeps the guest TSC at the host's and ignores KVM_SET_MSRS of the " \
	"TSC, so a restore's TSC and TSC-deadline order cannot show there"

/* ---- helpers ------------------------------------------------------------ */

static volatile uint64_t *snap64(struct kvmkit_vm *vm, unsigned int cpu, unsigned int off)
{
	volatile uint64_t *p = kvmkit_vm_gpa_to_hva(vm, GUEST_SNAP_CPU(cpu) + off, 8);

	assert_non_null(p);
	return p;
}

static volatile uint32_t *snap32(struct kvmkit_vm *vm, unsigned int cpu, unsigned int off)
{
	volatile uint32_t *p = kvmkit_vm_gpa_to_hva(vm, GUEST_SNAP_CPU(cpu) + off, 4);

	assert_non_null(p);
	return p;
}

static uint64_t ld64(volatile uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static uint32_t ld32(volatile uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void set_cmd(struct kvmkit_vm *vm, uint32_t cmd)
{
	volatile uint32_t *p = kvmkit_vm_gpa_to_hva(vm, GUEST_SNAP_CMD, 4);

	assert_non_null(p);
	__atomic_store_n(p, cmd, __ATOMIC_RELEASE);
}

/* Waits until *p >= want; fails with @what after @ms. */
static void wait64_ms(volatile uint64_t *p, uint64_t want, const char *what, unsigned int cpu,
		      uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (ld64(p) < want)
		if (now_ms() > end)
			fail_msg("vCPU %u: %s stayed at %llu, waited %llu ms for %llu", cpu, what,
				 (unsigned long long)ld64(p), (unsigned long long)ms,
				 (unsigned long long)want);
		else
			usleep(200);
}

static void wait64(volatile uint64_t *p, uint64_t want, const char *what, unsigned int cpu)
{
	wait64_ms(p, want, what, cpu, WAIT_MS);
}

static void wait32(volatile uint32_t *p, uint32_t want, const char *what, unsigned int cpu)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (ld32(p) < want)
		if (now_ms() > end)
			fail_msg("vCPU %u: %s stayed at %u, waited for %u", cpu, what, ld32(p),
				 want);
		else
			usleep(200);
}

/* The device of IO mode: reads return 0, 1, 2, ... at the test port and
 * the test MMIO address alike, across every VM of a test. When armed, the
 * read that returns `hold` waits (on the vCPU thread, in the exit handler)
 * until a pause or stop has kicked its vCPU, so that the vCPU parks or
 * stops with that read still to be completed by KVM. */
struct seqdev {
	pthread_mutex_t lock;
	uint32_t next;
	bool armed;
	uint32_t hold;
	struct kvm_run *run; /* vCPU 0's, of the VM that runs */
	sem_t held;
};

static void seq_read(void *o, uint64_t off, void *data, unsigned int size)
{
	struct seqdev *d = o;
	uint32_t v;
	bool hold;

	pthread_mutex_lock(&d->lock);
	v = d->next++;
	hold = d->armed && v == d->hold;
	if (hold)
		d->armed = false;
	pthread_mutex_unlock(&d->lock);
	memset(data, 0, size);
	memcpy(data, &v, size < 4 ? size : 4);
	if (!hold)
		return;
	sem_post(&d->held);
	/* The pause or stop sets immediate_exit after its request flag. */
	for (uint64_t end = now_ms() + WAIT_MS;
	     !__atomic_load_n(&d->run->immediate_exit, __ATOMIC_SEQ_CST) && now_ms() < end;)
		usleep(100);
}

static void seq_write(void *o, uint64_t off, const void *data, unsigned int size)
{
}

static const struct kvmkit_io_ops seq_ops = { seq_read, seq_write };

/* A machine running snap_loop in @mode on @vcpus vCPUs; @irqchip false:
 * none. Not started. */
static struct kvmkit_machine *snap_machine(uint32_t mode, unsigned int vcpus, bool irqchip,
					   struct seqdev *dev)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_vm *vm;

	guest_config(&cfg, "snap_loop", vcpus, MEM);
	cfg.irqchip = irqchip;
	cfg.irqchip_mode = chip_mode;
	m = machine_from(&cfg);
	vm = kvmkit_machine_vm(m);
	assert_int_equal(kvmkit_vm_write(vm, GUEST_SNAP_MODE, &mode, 4), 0);
	if (dev) {
		assert_int_equal(kvmkit_bus_register(kvmkit_vm_pio_bus(vm), GUEST_TEST_PORT, 4,
						     "seq-pio", &seq_ops, dev),
				 0);
		assert_int_equal(kvmkit_bus_register(kvmkit_vm_mmio_bus(vm), GUEST_TEST_MMIO, 4,
						     "seq-mmio", &seq_ops, dev),
				 0);
	}
	return m;
}

struct snapshot {
	unsigned int vcpus;
	void *vcpu[4];
	size_t vcpu_len[4];
	void *chip;
	size_t chip_len;
};

static void snapshot_free(struct snapshot *s)
{
	for (unsigned int i = 0; i < s->vcpus; i++)
		free(s->vcpu[i]);
	free(s->chip);
	memset(s, 0, sizeof(*s));
}

/* Saves the irqchip and every vCPU of a paused or stopped @vm. */
static void take_snapshot(struct kvmkit_vm *vm, struct snapshot *s)
{
	struct kvmkit_irqchip *chip = kvmkit_vm_irqchip(vm);

	memset(s, 0, sizeof(*s));
	s->vcpus = kvmkit_vm_vcpu_count(vm);
	if (chip && kvmkit_irqchip_save(chip, &s->chip, &s->chip_len))
		fail_msg("irqchip save: %s", kvmkit_strerror());
	for (unsigned int i = 0; i < s->vcpus; i++)
		if (kvmkit_vcpu_save(kvmkit_vm_vcpu(vm, i), &s->vcpu[i], &s->vcpu_len[i]))
			fail_msg("vCPU %u save: %s", i, kvmkit_strerror());
}

/* Copies @from's RAM into @to, then restores the irqchip, then the vCPUs. */
static void restore_snapshot(struct kvmkit_vm *from, struct kvmkit_vm *to, const struct snapshot *s)
{
	void *src = kvmkit_vm_gpa_to_hva(from, 0, MEM), *dst = kvmkit_vm_gpa_to_hva(to, 0, MEM);

	assert_non_null(src);
	assert_non_null(dst);
	memcpy(dst, src, MEM);
	if (s->chip && kvmkit_irqchip_restore(kvmkit_vm_irqchip(to), s->chip, s->chip_len))
		fail_msg("irqchip restore: %s", kvmkit_strerror());
	for (unsigned int i = 0; i < s->vcpus; i++)
		if (kvmkit_vcpu_restore(kvmkit_vm_vcpu(to, i), s->vcpu[i], s->vcpu_len[i]))
			fail_msg("vCPU %u restore: %s", i, kvmkit_strerror());
}

static bool tsc_deadline_host(void)
{
	struct kvmkit_system *sys;
	bool has;

	assert_int_equal(kvmkit_system_open(NULL, &sys), 0);
	has = kvmkit_system_check_cap(sys, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	kvmkit_system_close(sys);
	return has;
}

static void set_tsc(struct kvmkit_vcpu *v, uint64_t tsc)
{
	struct kvm_msrs *m = calloc(1, sizeof(*m) + sizeof(m->entries[0]));

	assert_non_null(m);
	m->nmsrs = 1;
	m->entries[0] = (struct kvm_msr_entry){ .index = MSR_TSC, .data = tsc };
	assert_int_equal(ioctl(kvmkit_vcpu_fd(v), KVM_SET_MSRS, m), 1);
	free(m);
}

/* Powers snap_loop off with FINISH; returns its reports (@n of them). */
static void finish(struct kvmkit_machine *m, uint64_t *rep, size_t n)
{
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct kvmkit_stop_info info;

	set_cmd(vm, GUEST_SNAP_FINISH);
	assert_int_equal(kvmkit_vm_wait(vm, GUEST_WATCHDOG_MS, &info), 0);
	if (info.reason != KVMKIT_STOP_GUEST_EXIT)
		fail_msg("guest stopped: %s: %s", kvmkit_stop_reason_name(info.reason),
			 info.detail);
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(m), rep, n), n);
	if (info.status != GUEST_STATUS_OK)
		fail_msg("guest status %d (disagreements seen); its last report: %llu", info.status,
			 (unsigned long long)rep[n - 1]);
}

/* ---- the blob, as documented -------------------------------------------- */

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The offset of section @tag's contents (its length in *len), or 0. */
static size_t find_section(const uint8_t *b, size_t blen, uint32_t tag, uint32_t *len)
{
	size_t off = HDR_LEN;

	for (uint32_t i = 0; i < rd32(b + 16) && off + 8 <= blen; i++) {
		uint32_t t = rd32(b + off), l = rd32(b + off + 4);

		if (t == tag) {
			*len = l;
			return off + 8;
		}
		off += 8 + l;
	}
	return 0;
}

/* MSR entries sit in a blob at whatever offset its sections put them: an
 * entry type without alignment (a typedef may lower it) keeps the accesses
 * defined. */
typedef struct kvm_msr_entry msr_entry_u __attribute__((aligned(1)));

/* The MSR entry for @index in a blob, or NULL. */
static msr_entry_u *find_msr(uint8_t *b, size_t blen, uint32_t index)
{
	uint32_t len;
	size_t off = find_section(b, blen, SEC_MSRS, &len);
	msr_entry_u *e = (msr_entry_u *)(b + off + 4);

	assert_true(off > 0);
	for (uint32_t i = 0; i < rd32(b + off); i++)
		if (e[i].index == index)
			return &e[i];
	return NULL;
}

/* Fails at the first byte where two blobs of one layout differ, naming the
 * section (and the MSR) it lies in. */
static void blob_diff(const uint8_t *s1, const uint8_t *s2, size_t len, const char *what)
{
	size_t i = 0, off = HDR_LEN;

	while (i < len && s1[i] == s2[i])
		i++;
	if (i == len)
		return;
	for (uint32_t n = 0; n < rd32(s1 + 16) && i >= off + 8 + rd32(s1 + off + 4); n++)
		off += 8 + rd32(s1 + off + 4);
	if (i >= HDR_LEN && rd32(s1 + off) == SEC_MSRS && i >= off + 12) {
		size_t e = (i - off - 12) / 16;

		fail_msg("%s: MSR 0x%x differs: 0x%llx, then 0x%llx", what,
			 rd32(s1 + off + 12 + e * 16),
			 (unsigned long long)((const msr_entry_u *)(s1 + off + 12))[e].data,
			 (unsigned long long)((const msr_entry_u *)(s2 + off + 12))[e].data);
	}
	fail_msg("%s: byte %zu (section %u, offset %zu) differs: 0x%02x, then 0x%02x", what, i,
		 i >= HDR_LEN ? rd32(s1 + off) : 0, i >= HDR_LEN ? i - off - 8 : i, s1[i], s2[i]);
}

/* MSRs that count time by themselves, where KVM lists them (the emulated
 * x86 host does; KVM-PVM does not): Hyper-V's VP runtime (100 ns units of
 * the vCPU thread's run time) and its partition reference counter (the VM
 * clock's, which KVM_SET_CLOCK restores with the machine; KVM ignores host
 * writes to it). */
static const uint32_t moving_msrs[] = { 0x40000010, 0x40000020 };

/* What a vCPU that does not run still moves, zeroed: the TSC, the MSRs
 * above and the LAPIC timer's current count. */
static void normalize(uint8_t *b, size_t len)
{
	msr_entry_u *t = find_msr(b, len, MSR_TSC);
	uint32_t l;
	size_t a = find_section(b, len, SEC_LAPIC, &l);

	if (t)
		t->data = 0;
	for (size_t i = 0; i < ARRAY_LEN(moving_msrs); i++)
		if ((t = find_msr(b, len, moving_msrs[i])))
			t->data = 0;
	if (a)
		memset(b + a + LAPIC_TMCCT, 0, 4);
}

/* ---- continuation -------------------------------------------------------- */

/*
 * Runs A (two vCPUs) until every vCPU ticks, saves it, restores it into B
 * and checks that B goes on: never booted again, counts and ticks going on
 * from where they were, no disagreement seen by the guest.
 */
static void test_continue(void **state)
{
	enum { n = 2 };
	struct kvmkit_machine *a = snap_machine(GUEST_SNAP_MODE_TIMERS, n, true, NULL), *b;
	struct kvmkit_vm *va = kvmkit_machine_vm(a), *vb;
	uint64_t count0[2], ticks0[2], rep[2 * GUEST_SNAP_REPORTS_PER_CPU];
	struct snapshot snap;
	void *buf = NULL;
	size_t len;

	assert_int_equal(kvmkit_vm_start(va), 0);
	for (unsigned int c = 0; c < n; c++) {
		wait32(snap32(va, c, GUEST_SNAP_READY), 1, "READY", c);
		wait64(snap64(va, c, GUEST_SNAP_TICKS), 3, "ticks", c);
	}
	assert_int_equal(kvmkit_vcpu_save(kvmkit_vm_vcpu(va, 0), &buf, &len), -EBUSY); /* runs */
	assert_null(buf);
	assert_int_equal(kvmkit_vm_pause(va), 0);
	for (unsigned int c = 0; c < n; c++) {
		count0[c] = ld64(snap64(va, c, GUEST_SNAP_COUNTER));
		ticks0[c] = ld64(snap64(va, c, GUEST_SNAP_TICKS));
		assert_true(count0[c] > 0);
	}
	/* vCPU 0 runs its timer in TSC-deadline mode where the host has it,
	 * vCPU 1 in periodic mode. */
	assert_int_equal(ld32(snap32(va, 0, GUEST_SNAP_DEADLINE)),
			 kvmkit_vm_check_cap(va, KVM_CAP_TSC_DEADLINE_TIMER) > 0);
	assert_int_equal(ld32(snap32(va, 1, GUEST_SNAP_DEADLINE)), 0);
	take_snapshot(va, &snap);

	b = snap_machine(GUEST_SNAP_MODE_TIMERS, n, true, NULL);
	vb = kvmkit_machine_vm(b);
	restore_snapshot(va, vb, &snap);
	kvmkit_machine_destroy(a); /* B owes A nothing */
	assert_int_equal(kvmkit_vm_start(vb), 0);
	for (unsigned int c = 0; c < n; c++) {
		wait64(snap64(vb, c, GUEST_SNAP_COUNTER), count0[c] + 1000000, "counter", c);
		wait64(snap64(vb, c, GUEST_SNAP_TICKS), ticks0[c] + 3, "ticks after restore", c);
	}
	finish(b, rep, n * GUEST_SNAP_REPORTS_PER_CPU);
	for (unsigned int c = 0; c < n; c++) {
		const uint64_t *r = rep + c * GUEST_SNAP_REPORTS_PER_CPU;

		assert_int_equal(ld32(snap32(vb, c, GUEST_SNAP_BOOTS)), 1);
		assert_true((r[0] | r[1] << 32) > count0[c] + 1000000);
		assert_true((r[2] | r[3] << 32) >= ticks0[c] + 3);
		assert_int_equal(r[4], 0); /* errors */
	}
	kvmkit_machine_destroy(b);
	snapshot_free(&snap);
}

/*
 * The TSC deadline is restored after the TSC. A (one vCPU, in TSC-deadline
 * mode) runs with its TSC from 2^40, B's starts near 0. A's last deadline
 * is armed ONESHOT_MS of TSC ahead and no tick re-arms it. Restored in the
 * right order it fires about ONESHOT_MS after the save; written before the
 * TSC, KVM would arm it against B's TSC, 2^40 cycles ahead: the test waits
 * ONESHOT_MS + WAIT_MS for the tick, and checks that 2^40 cycles are at
 * least twice that at this TSC rate, so that a wrong order fails.
 */
static void test_tsc_deadline_order(void **state)
{
	struct kvmkit_machine *a, *b;
	struct kvmkit_vm *va, *vb;
	msr_entry_u *tsc, *dl;
	struct snapshot snap;
	uint64_t ticks0, delay, wrong_ms, rep[GUEST_SNAP_REPORTS_PER_CPU];
	int khz;

	host_quirk(host_is_kvm_pvm(), PVM_NO_TSC_WRITE);
	if (!tsc_deadline_host()) {
		printf("skipped: the host has no TSC-deadline timer\n");
		skip();
	}
	a = snap_machine(GUEST_SNAP_MODE_TIMERS, 1, true, NULL);
	va = kvmkit_machine_vm(a);
	set_tsc(kvmkit_vm_vcpu(va, 0), BIG_TSC);
	khz = ioctl(kvmkit_vcpu_fd(kvmkit_vm_vcpu(va, 0)), KVM_GET_TSC_KHZ, 0);
	assert_true(khz > 0);
	delay = ONESHOT_MS * (uint64_t)khz;
	wrong_ms = BIG_TSC / (uint64_t)khz;
	/* The binary's watchdog (kvm_test.h) gets the time this wait adds. */
	alarm(alarm(0) + ONESHOT_MS / 1000);
	if (wrong_ms < 2 * (ONESHOT_MS + WAIT_MS))
		fail_msg("FAIL: at %d kHz a wrong restore order puts the deadline only %llu ms "
			 "away: too close to the %u ms the test waits to tell it apart",
			 khz, (unsigned long long)wrong_ms, ONESHOT_MS + WAIT_MS);
	assert_int_equal(kvmkit_vm_write(va, GUEST_SNAP_ARG, &delay, 8), 0);
	assert_int_equal(kvmkit_vm_start(va), 0);
	wait32(snap32(va, 0, GUEST_SNAP_READY), 1, "READY", 0);
	wait64(snap64(va, 0, GUEST_SNAP_TICKS), 2, "ticks", 0);
	assert_int_equal(ld32(snap32(va, 0, GUEST_SNAP_DEADLINE)), 1);
	set_cmd(va, GUEST_SNAP_CMD_ONESHOT);
	wait32(snap32(va, 0, GUEST_SNAP_QUIET_ACK), 1, "ONESHOT", 0);
	assert_int_equal(kvmkit_vm_pause(va), 0);
	ticks0 = ld64(snap64(va, 0, GUEST_SNAP_TICKS));
	take_snapshot(va, &snap);
	tsc = find_msr(snap.vcpu[0], snap.vcpu_len[0], MSR_TSC);
	dl = find_msr(snap.vcpu[0], snap.vcpu_len[0], MSR_TSC_DEADLINE);
	assert_non_null(dl);
	if (tsc->data < BIG_TSC || tsc->data > 2 * BIG_TSC)
		fail_msg("the TSC set to 2^40 reads 0x%llx", (unsigned long long)tsc->data);
	if (dl->data <= tsc->data)
		fail_msg("the deadline 0x%llx is not ahead of the TSC 0x%llx: it fired before the "
			 "save, %u ms after it was armed?",
			 (unsigned long long)dl->data, (unsigned long long)tsc->data, ONESHOT_MS);

	b = snap_machine(GUEST_SNAP_MODE_TIMERS, 1, true, NULL);
	vb = kvmkit_machine_vm(b);
	restore_snapshot(va, vb, &snap);
	kvmkit_machine_destroy(a);
	assert_int_equal(kvmkit_vm_start(vb), 0);
	/* Due ONESHOT_MS after the save (less the time A ran after arming). */
	wait64_ms(
		snap64(vb, 0, GUEST_SNAP_TICKS), ticks0 + 1,
		"ticks after restore (the one-shot deadline: restored before the TSC, it is minutes away)",
		0, ONESHOT_MS + WAIT_MS);
	finish(b, rep, GUEST_SNAP_REPORTS_PER_CPU);
	assert_int_equal(rep[4], 0);
	assert_int_equal(ld32(snap32(vb, 0, GUEST_SNAP_BOOTS)), 1);
	kvmkit_machine_destroy(b);
	snapshot_free(&snap);
}

/* ---- an I/O or MMIO read in flight -------------------------------------- */

/* Pauses (or stops) @cur while its vCPU 0 is inside the exit of the MMIO
 * (or port) read that returns a value a few reads ahead, saves it, restores
 * it into a new machine and starts that. */
static struct kvmkit_machine *hop(struct kvmkit_machine *cur, struct seqdev *d, unsigned int vcpus,
				  bool irqchip, bool mmio, bool stop)
{
	struct kvmkit_vm *vm = kvmkit_machine_vm(cur), *nvm;
	struct kvmkit_machine *next;
	struct snapshot snap;
	struct timespec ts;

	pthread_mutex_lock(&d->lock);
	d->hold = d->next + 20;
	if ((d->hold % 2 == 0) != mmio) /* MMIO reads get the even values */
		d->hold++;
	d->armed = true;
	pthread_mutex_unlock(&d->lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	if (sem_timedwait(&d->held, &ts))
		fail_msg("the guest never read value %u", d->hold);
	assert_int_equal(stop ? kvmkit_vm_stop(vm) : kvmkit_vm_pause(vm), 0);
	take_snapshot(vm, &snap);
	next = snap_machine(GUEST_SNAP_MODE_IO, vcpus, irqchip, d);
	nvm = kvmkit_machine_vm(next);
	restore_snapshot(vm, nvm, &snap);
	snapshot_free(&snap);
	kvmkit_machine_destroy(cur);
	d->run = kvmkit_vcpu_run_area(kvmkit_vm_vcpu(nvm, 0));
	assert_int_equal(kvmkit_vm_start(nvm), 0);
	return next;
}

/* Every read the device answered reached the guest exactly once. */
static void io_finish(struct kvmkit_machine *m, struct seqdev *d)
{
	uint64_t rep[3];

	finish(m, rep, 3);
	assert_int_equal(rep[2], 0);
	assert_int_equal(rep[0] | rep[1] << 32, d->next);
	kvmkit_machine_destroy(m);
	sem_destroy(&d->held);
}

static void seqdev_init(struct seqdev *d)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->lock, NULL);
	sem_init(&d->held, 0, 0);
}

/* Four hops: MMIO and port reads in flight, at a pause and at a stop; two
 * vCPUs (vCPU 1 halted, so its MP state travels too), or one without an
 * irqchip (no LAPIC in the state). */
static void io_hops(unsigned int vcpus, bool irqchip)
{
	struct seqdev d;
	struct kvmkit_machine *m;

	seqdev_init(&d);
	m = snap_machine(GUEST_SNAP_MODE_IO, vcpus, irqchip, &d);
	d.run = kvmkit_vcpu_run_area(kvmkit_vm_vcpu(kvmkit_machine_vm(m), 0));
	assert_int_equal(kvmkit_vm_start(kvmkit_machine_vm(m)), 0);
	m = hop(m, &d, vcpus, irqchip, true, false);
	m = hop(m, &d, vcpus, irqchip, false, false);
	m = hop(m, &d, vcpus, irqchip, true, true);
	m = hop(m, &d, vcpus, irqchip, false, true);
	wait64(snap64(kvmkit_machine_vm(m), 0, GUEST_SNAP_COUNTER), d.hold + 20, "reads", 0);
	io_finish(m, &d);
}

static void test_io_in_flight(void **state)
{
	io_hops(2, true);
}

static void test_io_in_flight_no_irqchip(void **state)
{
	io_hops(1, false);
}

/* kvmkit_vcpu_run_once() leaves its last exit to the next KVM_RUN: the
 * save finishes it. */
static void test_run_once_then_save(void **state)
{
	struct seqdev d;
	struct kvmkit_machine *a, *b;
	struct kvmkit_vcpu *v;
	struct snapshot snap;
	int r = 0;

	seqdev_init(&d);
	a = snap_machine(GUEST_SNAP_MODE_IO, 1, false, &d);
	v = kvmkit_vm_vcpu(kvmkit_machine_vm(a), 0);
	for (int i = 0; i < 100000 && r != KVM_EXIT_MMIO; i++) {
		r = kvmkit_vcpu_run_once(v);
		if (r < 0)
			fail_msg("run_once: %s", kvmkit_strerror());
	}
	assert_int_equal(r, KVM_EXIT_MMIO);
	assert_int_equal(d.next, 1); /* the first read is in flight */
	take_snapshot(kvmkit_machine_vm(a), &snap);
	b = snap_machine(GUEST_SNAP_MODE_IO, 1, false, &d);
	restore_snapshot(kvmkit_machine_vm(a), kvmkit_machine_vm(b), &snap);
	snapshot_free(&snap);
	kvmkit_machine_destroy(a);
	d.run = kvmkit_vcpu_run_area(kvmkit_vm_vcpu(kvmkit_machine_vm(b), 0));
	assert_int_equal(kvmkit_vm_start(kvmkit_machine_vm(b)), 0);
	wait64(snap64(kvmkit_machine_vm(b), 0, GUEST_SNAP_COUNTER), 100, "reads", 0);
	io_finish(b, &d);
}

/* ---- register-level round trip ------------------------------------------ */

/*
 * s1 saved from a stopped vCPU, restored into a fresh one, saved again as
 * s2: equal byte for byte but for what KVM moves by itself while the state
 * sits in a vCPU: the TSC (counts on from the value restored: s2 >= s1) and
 * the LAPIC timer's current count (counts down from the value restored:
 * s2 <= s1). The guest first made its timers quiet (no tick for minutes),
 * so no interrupt changes the LAPIC meanwhile.
 */
static void compare_round_trip(struct kvmkit_vcpu *v, uint8_t *s1, size_t l1, uint8_t *s2,
			       size_t l2, bool deadline)
{
	msr_entry_u *t1 = find_msr(s1, l1, MSR_TSC), *t2 = find_msr(s2, l2, MSR_TSC);
	msr_entry_u *d1 = find_msr(s1, l1, MSR_TSC_DEADLINE);
	msr_entry_u *d2 = find_msr(s2, l2, MSR_TSC_DEADLINE);
	int khz = ioctl(kvmkit_vcpu_fd(v), KVM_GET_TSC_KHZ, 0);
	uint32_t len1, len2;
	size_t a1 = find_section(s1, l1, SEC_LAPIC, &len1),
	       a2 = find_section(s2, l2, SEC_LAPIC, &len2);
	uint32_t c1, c2;
	char who[64];

	snprintf(who, sizeof(who), "vCPU %u after a round trip", kvmkit_vcpu_id(v));
	assert_int_equal(l1, l2);
	assert_non_null(t1);
	assert_non_null(t2);
	assert_true(khz > 0);
	/* KVM takes a TSC within a second of the VM's own for a
	 * synchronization and keeps its own (kvm_synchronize_tsc): both VMs
	 * here are younger than that. */
	if (t2->data > t1->data + 2000ull * (uint64_t)khz ||
	    t1->data > t2->data + 2000ull * (uint64_t)khz)
		fail_msg("%s: TSC 0x%llx, then 0x%llx", who, (unsigned long long)t1->data,
			 (unsigned long long)t2->data);
	/* The deadline survives (LAPIC before MSRS): armed, far ahead. */
	assert_non_null(d1);
	assert_non_null(d2);
	if (deadline)
		assert_true(d1->data > t1->data + (1ull << 49));
	assert_true(a1 > 0 && a2 > 0);
	memcpy(&c1, s1 + a1 + LAPIC_TMCCT, 4);
	memcpy(&c2, s2 + a2 + LAPIC_TMCCT, 4);
	assert_true(c2 <= c1);
	if (!deadline)
		assert_true(c1 > 0); /* the quiet periodic timer runs */
	normalize(s1, l1);
	normalize(s2, l2);
	blob_diff(s1, s2, l1, who);
}

/* MSRs saved on any host (vcpu.h). */
static const uint32_t must_msrs[] = { 0x10,	  0x174,      0x175,	  0x176,
				      0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084,
				      0xc0000102, 0x277,      0x1a0 };

static void test_round_trip(void **state)
{
	enum { N = 2 };
	struct kvmkit_machine *a = snap_machine(GUEST_SNAP_MODE_TIMERS, N, true, NULL), *b;
	struct kvmkit_vm *va = kvmkit_machine_vm(a), *vb;
	bool deadline[N];

	assert_int_equal(kvmkit_vm_start(va), 0);
	for (unsigned int c = 0; c < N; c++) {
		wait32(snap32(va, c, GUEST_SNAP_READY), 1, "READY", c);
		wait64(snap64(va, c, GUEST_SNAP_TICKS), 2, "ticks", c);
	}
	set_cmd(va, GUEST_SNAP_CMD_QUIET);
	for (unsigned int c = 0; c < N; c++) {
		wait32(snap32(va, c, GUEST_SNAP_QUIET_ACK), 1, "QUIET", c);
		deadline[c] = ld32(snap32(va, c, GUEST_SNAP_DEADLINE));
	}
	assert_int_equal(kvmkit_vm_stop(va), 0);
	b = snap_machine(GUEST_SNAP_MODE_TIMERS, N, true, NULL);
	vb = kvmkit_machine_vm(b);
	for (unsigned int c = 0; c < N; c++) {
		void *s1, *s2;
		size_t l1, l2;

		assert_int_equal(kvmkit_vcpu_save(kvmkit_vm_vcpu(va, c), &s1, &l1), 0);
		/* A stopped VM's vCPUs are saved, not restored. */
		assert_int_equal(kvmkit_vcpu_restore(kvmkit_vm_vcpu(va, c), s1, l1), -EBUSY);
		for (size_t i = 0; i < ARRAY_LEN(must_msrs); i++)
			if (!find_msr(s1, l1, must_msrs[i]))
				fail_msg("vCPU %u: MSR 0x%x not saved", c, must_msrs[i]);
		if (kvmkit_vm_check_cap(va, KVM_CAP_TSC_DEADLINE_TIMER) > 0 &&
		    !find_msr(s1, l1, MSR_TSC_DEADLINE))
			fail_msg("vCPU %u: the TSC deadline not saved", c);
		if (kvmkit_vcpu_restore(kvmkit_vm_vcpu(vb, c), s1, l1))
			fail_msg("vCPU %u restore: %s", c, kvmkit_strerror());
		assert_int_equal(kvmkit_vcpu_save(kvmkit_vm_vcpu(vb, c), &s2, &l2), 0);
		compare_round_trip(kvmkit_vm_vcpu(vb, c), s1, l1, s2, l2, deadline[c]);
		free(s1);
		free(s2);
	}
	kvmkit_machine_destroy(a);
	kvmkit_machine_destroy(b);
}

/* ---- hostile blobs ------------------------------------------------------- */

static void expect_refused(struct kvmkit_vcpu *v, const void *buf, size_t len, const char *what)
{
	int r = kvmkit_vcpu_restore(v, buf, len);

	if (r != -ENOEXEC)
		fail_msg("%s: restore returned %d (%s), not -ENOEXEC", what, r, kvmkit_strerror());
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_FORMAT);
	assert_null(strchr(kvmkit_strerror(), '\n'));
}

/* @b with section @tag grown by @delta bytes (zeros), lengths fixed up. */
static uint8_t *grow_section(const uint8_t *b, size_t len, uint32_t tag, uint32_t delta,
			     size_t *out_len)
{
	uint32_t slen;
	size_t off = find_section(b, len, tag, &slen);
	uint8_t *n = calloc(1, len + delta);

	assert_true(off > 0);
	assert_non_null(n);
	memcpy(n, b, off + slen);
	memcpy(n + off + slen + delta, b + off + slen, len - off - slen);
	slen += delta;
	memcpy(n + off - 4, &slen, 4);
	*out_len = len + delta;
	return n;
}

static void test_hostile_blobs(void **state)
{
	struct kvmkit_machine *a = snap_machine(GUEST_SNAP_MODE_TIMERS, 2, true, NULL), *b;
	struct kvmkit_vm *va = kvmkit_machine_vm(a);
	struct kvmkit_vcpu *v0, *v1;
	uint8_t *s0, *s1, *before, *after, *t;
	size_t l0, l1, lb, la, lt;
	struct kvm_regs r0, r1;
	uint32_t slen;
	size_t off;

	assert_int_equal(kvmkit_vm_start(va), 0);
	for (unsigned int c = 0; c < 2; c++)
		wait32(snap32(va, c, GUEST_SNAP_READY), 1, "READY", c);
	assert_int_equal(kvmkit_vm_pause(va), 0);
	assert_int_equal(kvmkit_vcpu_save(kvmkit_vm_vcpu(va, 0), (void **)&s0, &l0), 0);
	assert_int_equal(kvmkit_vcpu_save(kvmkit_vm_vcpu(va, 1), (void **)&s1, &l1), 0);
	/* Restoring into the paused VM it came from is allowed. */
	assert_int_equal(kvmkit_vcpu_restore(kvmkit_vm_vcpu(va, 1), s1, l1), 0);
	kvmkit_machine_destroy(a);

	b = snap_machine(GUEST_SNAP_MODE_TIMERS, 2, true, NULL);
	v0 = kvmkit_vm_vcpu(kvmkit_machine_vm(b), 0);
	v1 = kvmkit_vm_vcpu(kvmkit_machine_vm(b), 1);
	assert_int_equal(kvmkit_vcpu_get_regs(v0, &r0), 0);
	assert_int_equal(kvmkit_vcpu_save(v0, (void **)&before, &lb), 0);

	for (size_t len = 0; len < l0; len++)
		expect_refused(v0, s0, len, "a truncated blob");
	t = calloc(1, l0 + 1);
	assert_non_null(t);
	memcpy(t, s0, l0);
	expect_refused(v0, t, l0 + 1, "a byte past the end");
	/* A flipped byte in every header field: the blob's and each section's. */
	for (off = 0; off < l0;) {
		size_t end = off == 0 ? HDR_LEN : off + 8;

		for (size_t i = off; i < end; i++) {
			memcpy(t, s0, l0);
			t[i] ^= 0xff;
			expect_refused(v0, t, l0, "a flipped header byte");
		}
		off = off == 0 ? HDR_LEN : off + 8 + rd32(s0 + off + 4);
	}
	assert_int_equal(off, l0);
	memcpy(t, s0, l0);
	t[4] = 2; /* version */
	expect_refused(v0, t, l0, "version 2");
	assert_non_null(strstr(kvmkit_strerror(), "version 2"));
	expect_refused(v1, s0, l0, "vCPU 0's state on vCPU 1");
	expect_refused(v0, s1, l1, "vCPU 1's state on vCPU 0");
	/* Contents a host would refuse: an MSR KVM does not list, fields KVM
	 * checks. */
	memcpy(t, s0, l0);
	find_msr(t, l0, MSR_TSC)->index = 0xdeadbeef;
	expect_refused(v0, t, l0, "an MSR KVM does not list");
	memcpy(t, s0, l0);
	find_msr(t, l0, MSR_TSC)->reserved = 1;
	expect_refused(v0, t, l0, "an MSR entry's reserved bits");
	memcpy(t, s0, l0);
	off = find_section(t, l0, 10 /* debugregs */, &slen);
	t[off + offsetof(struct kvm_debugregs, flags)] = 1;
	expect_refused(v0, t, l0, "debugregs flags");
	memcpy(t, s0, l0);
	off = find_section(t, l0, 11 /* events */, &slen);
	t[off + offsetof(struct kvm_vcpu_events, flags) + 3] = 0x80;
	expect_refused(v0, t, l0, "an unknown event flag");
	memcpy(t, s0, l0);
	off = find_section(t, l0, 1 /* mp_state */, &slen);
	t[off] = 9;
	expect_refused(v0, t, l0, "MP state 9");
	free(t);
	t = grow_section(s0, l0, SEC_XSAVE, 64, &lt);
	expect_refused(v0, t, lt, "an XSAVE area 64 bytes larger");
	free(t);

	/* A value only KVM judges: a reserved CR4 bit. KVM refuses it after
	 * the registers went in; they are put back. */
	t = malloc(l0);
	assert_non_null(t);
	memcpy(t, s0, l0);
	off = find_section(t, l0, 4 /* sregs2 */, &slen);
	if (!off)
		off = find_section(t, l0, 3 /* sregs */, &slen);
	assert_true(off > 0);
	t[off + offsetof(struct kvm_sregs, cr4) + 7] |= 0x80;
	assert_int_equal(kvmkit_vcpu_restore(v0, t, l0), -EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_IOCTL);
	free(t);

	/* Nothing changed. */
	assert_int_equal(kvmkit_vcpu_get_regs(v0, &r1), 0);
	assert_memory_equal(&r0, &r1, sizeof(r0));
	assert_int_equal(kvmkit_vcpu_save(v0, (void **)&after, &la), 0);
	assert_int_equal(la, lb);
	normalize(before, lb);
	normalize(after, la);
	blob_diff(before, after, lb, "vCPU 0 after the refused restores");
	/* And the blob itself is taken. */
	assert_int_equal(kvmkit_vcpu_restore(v0, s0, l0), 0);
	assert_int_equal(kvmkit_vcpu_get_regs(v0, &r1), 0);
	assert_memory_not_equal(&r0, &r1, sizeof(r0));
	kvmkit_machine_destroy(b);
	free(s0);
	free(s1);
	free(before);
	free(after);
}

/*
 * The TSC's rate travels in the blob (TSC_KHZ, where KVM reports it) and
 * a restore sets it when the vCPU's differs: a rate 100 ppm off (the same
 * CPU calibrated on another boot) is taken everywhere; a blob saying 3/4 of
 * this host's rate either comes back at that rate (the CPU scales TSCs) or
 * is refused whole with one line, the vCPU's rate left alone. A blob
 * without the section (an older kvmkit) runs at the host's.
 */
static void test_tsc_khz(void **state)
{
	struct kvmkit_machine *a = snap_machine(GUEST_SNAP_MODE_TIMERS, 1, true, NULL), *b;
	struct kvmkit_vcpu *vb;
	struct snapshot snap;
	uint8_t *blob;
	size_t len, off;
	uint32_t l, other;
	int khz, r;

	khz = ioctl(kvmkit_vcpu_fd(kvmkit_vm_vcpu(kvmkit_machine_vm(a), 0)), KVM_GET_TSC_KHZ, 0);
	if (khz <= 0) {
		printf("skipped: KVM does not report the TSC rate here\n");
		kvmkit_machine_destroy(a);
		skip();
	}
	take_snapshot(kvmkit_machine_vm(a), &snap);
	kvmkit_machine_destroy(a);
	blob = snap.vcpu[0];
	len = snap.vcpu_len[0];
	off = find_section(blob, len, SEC_TSC_KHZ, &l);
	assert_true(off > 0);
	assert_int_equal(l, 8);
	assert_int_equal(rd32(blob + off), (uint32_t)khz);
	assert_int_equal(rd32(blob + off + 4), 0);
	assert_int_equal(off + 8, len); /* the last section */

	other = (uint32_t)khz + (uint32_t)khz / 10000;
	memcpy(blob + off, &other, 4);
	b = snap_machine(GUEST_SNAP_MODE_TIMERS, 1, true, NULL);
	vb = kvmkit_vm_vcpu(kvmkit_machine_vm(b), 0);
	if (kvmkit_vcpu_restore(vb, blob, len))
		fail_msg("a rate 100 ppm off: %s", kvmkit_strerror());
	assert_int_equal(ioctl(kvmkit_vcpu_fd(vb), KVM_GET_TSC_KHZ, 0), (int)other);
	kvmkit_machine_destroy(b);

	other = (uint32_t)khz / 4 * 3;
	memcpy(blob + off, &other, 4);
	b = snap_machine(GUEST_SNAP_MODE_TIMERS, 1, true, NULL);
	vb = kvmkit_vm_vcpu(kvmkit_machine_vm(b), 0);
	r = kvmkit_vcpu_restore(vb, blob, len);
	if (!r) {
		assert_int_equal(ioctl(kvmkit_vcpu_fd(vb), KVM_GET_TSC_KHZ, 0), (int)other);
		printf("restored at %u kHz (this host: %d kHz)\n", other, khz);
	} else {
		const char *msg = kvmkit_strerror();

		if (!strstr(msg, "KVM_SET_TSC_KHZ") || strchr(msg, '\n'))
			fail_msg("refused with an unclear error: %s", msg);
		assert_int_equal(ioctl(kvmkit_vcpu_fd(vb), KVM_GET_TSC_KHZ, 0), khz);
		printf("refused: %s\n", msg);
	}
	kvmkit_machine_destroy(b);

	/* Without the section (the count at offset 16 one less). */
	memcpy(blob + off, &khz, 4);
	len -= 16;
	l = rd32(blob + 16) - 1;
	memcpy(blob + 16, &l, 4);
	b = snap_machine(GUEST_SNAP_MODE_TIMERS, 1, true, NULL);
	vb = kvmkit_vm_vcpu(kvmkit_machine_vm(b), 0);
	if (kvmkit_vcpu_restore(vb, blob, len))
		fail_msg("a blob without TSC_KHZ: %s", kvmkit_strerror());
	assert_int_equal(ioctl(kvmkit_vcpu_fd(vb), KVM_GET_TSC_KHZ, 0), khz);
	kvmkit_machine_destroy(b);
	snapshot_free(&snap);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest both[] = {
		cmocka_unit_test(test_continue),
		cmocka_unit_test(test_io_in_flight),
		cmocka_unit_test(test_round_trip),
	};
	const struct CMUnitTest once[] = {
		cmocka_unit_test(test_io_in_flight_no_irqchip),
		cmocka_unit_test(test_run_once_then_save),
		cmocka_unit_test(test_hostile_blobs),
		cmocka_unit_test(test_tsc_khz),
		cmocka_unit_test(test_tsc_deadline_order),
	};
	int fails = 0;

	test_args(argc, argv);
	require_kvm();
	fails += run_chip_groups("vcpu-state", both);
	fails += cmocka_run_group_tests_name("vcpu-state", once, use_kernel, NULL);
	return fails ? 1 : 0;
}
