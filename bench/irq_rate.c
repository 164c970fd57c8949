// SPDX-License-Identifier: MIT
/*
 * Interrupt injection rate and host-side cost per injection, per path, in
 * one run. The guest is irq_lab.elf (tests/guest/progs/irq_lab.c): at CPL3
 * it polls a mailbox, and its handler for every vector counts the interrupt
 * in guest memory and EOIs the local APIC at once (~25 instructions).
 *
 * Paths, each on its own vector (and GSI where there is one):
 *
 *   nop          baseline, no interrupt: the host bumps the mailbox's seq
 *                for a NOP command and spins until the guest acks it
 *   line         KVM_IRQ_LINE_STATUS: kvmkit_irq_pulse() (assert +
 *                de-assert, two ioctls) on IOAPIC pin 16, edge
 *   irqfd-edge   kvmkit_irqfd_signal() (one eventfd write) on an irqfd
 *                bound to IOAPIC pin 17, edge
 *   irqfd-level  the same on pin 18, level, with a resamplefd: the host
 *                signals, the guest takes the interrupt and EOIs, KVM
 *                de-asserts the line and signals the resamplefd, the host
 *                reads it (spinning on it) before the next signal
 *   signal-msi   KVM_SIGNAL_MSI: kvmkit_signal_msi() to APIC 0
 *   msi-irqfd    an MSI route (kvmkit_irq_route_msi + commit) on GSI 24 with
 *                an irqfd: kvmkit_irqfd_signal()
 *
 * Each injection is a closed loop: inject one interrupt, then spin on the
 * guest's counter for that vector until it has counted it (for irqfd-level
 * also wait for the resamplefd), then the next. A watchdog bounds every
 * wait. M injections per path are made in blocks of BLOCK, the paths
 * interleaved block by block in rotating order, so that drift over the run
 * hits every path alike.
 *
 * Per path:
 *   rt_ns        loop time per injection (inject + delivery + handler +
 *                the host noticing the count), i.e. 1e9 / rate_hz
 *   rate_hz      interrupts delivered per second, M / loop time
 *   call_ns      median time inside the injecting call alone (two
 *                CLOCK_MONOTONIC reads around it); for nop, around the
 *                seq store, i.e. the floor of this measurement
 *   call_p90_ns  90th percentile of the same
 *   rt_p50_ns, rt_p90_ns  percentiles of the per-injection round trip
 *   slow_pct     % of injections whose round trip took over 1 ms: a stall
 *                (a CPU taken away from the guest or from this thread)
 *   resample_ns  irqfd-level only: median from the signal to the
 *                resamplefd having been read (the EOI round trip)
 *
 * The guest and this thread both spin, so they are pinned to two different
 * CPUs (the first two this process may use), unless --no-pin.
 *
 * usage: bench-irq-rate [--no-pin] [--split] GUEST_ELF M
 * --split runs the same paths with the split irqchip (userspace IOAPIC; the
 * edge irqfds bound in the kernel, to the pin's mirror or the MSI route;
 * the level irqfd served by kvmkit, on this thread since it signals through
 * kvmkit_irqfd_signal(), its EOI exiting to kvmkit) and prints
 * "RESULT irq-split".
 * prints: RESULT irq <path> n=.. gsi=.. vector=.. rt_ns=.. rate_hz=..
 *         rt_p50_ns=.. rt_p90_ns=.. slow_pct=.. call_ns=.. call_p90_ns=..
 *         [resample_ns=.. resample_p90_ns=..]
 */
#include <sched.h>
#include <stdarg.h>
#include <sys/eventfd.h>

#include <kvmkit/kvmkit.h>

#include "bench_util.h"
#include "guest_abi.h"

#define BENCH_MEM (16ull << 20)
#define BLOCK 20
#define WARMUP 50
#define WATCHDOG_NS (30ull * 1000000000ull)
#define WATCHDOG_MS 30000
#define SLOW_NS 1000000ull

/* IOAPIC redirection entry: vector, fixed delivery, physical APIC 0. */
#define RTE_LEVEL (1ull << 15)
#define MSI_ADDR_APIC0 0xfee00000ull

enum path_id { P_NOP, P_LINE, P_IRQFD_EDGE, P_IRQFD_LEVEL, P_SIGNAL_MSI, P_MSI_IRQFD, P_COUNT };

struct path {
	const char *name;
	unsigned int vector; /* 0 for nop */
	int gsi; /* -1: none */
	int efd, rfd; /* irqfd and resamplefd, or -1 */
	uint64_t taken; /* interrupts (or NOPs) this path has made */
	uint64_t n; /* of those, measured */
	uint64_t loop_ns;
	uint64_t *call_ns;
	uint64_t *rt_ns;
	uint64_t *resample_ns;
};

struct bench {
	struct kvmkit_machine *m;
	struct kvmkit_vm *vm;
	struct kvmkit_irqchip *chip;
	volatile uint32_t *seq, *ack, *cmd;
	volatile uint64_t *args, *result;
	volatile uint32_t *cnt;
	int cpu[2]; /* vCPU thread, this thread; -1: not pinned */
	struct path p[P_COUNT];
};

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench-irq-rate: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

__attribute__((noreturn)) static void die(const char *what)
{
	fail("%s: %s", what, kvmkit_strerror());
}

static void *hva(struct bench *b, uint64_t gpa, uint64_t len)
{
	void *p = kvmkit_vm_gpa_to_hva(b->vm, gpa, len);

	if (!p)
		fail("gpa 0x%llx is not in guest RAM", (unsigned long long)gpa);
	return p;
}

static inline void cpu_pause(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

/*
 * Spins until *@p has reached @want (serial-number order: both the ack and
 * the counters only go up). The watchdog's clock is read only every 4096
 * spins, so a short wait costs no clock read.
 */
static void spin_until(const volatile uint32_t *p, uint32_t want, const char *what)
{
	uint64_t deadline = 0;

	for (uint32_t i = 1; (int32_t)(__atomic_load_n(p, __ATOMIC_ACQUIRE) - want) < 0; i++) {
		cpu_pause();
		if (i & 0xfff)
			continue;
		if (!deadline)
			deadline = bench_now_ns() + WATCHDOG_NS;
		else if (bench_now_ns() > deadline)
			fail("%s: still %u after %llu s, waiting for %u", what,
			     __atomic_load_n(p, __ATOMIC_ACQUIRE),
			     (unsigned long long)(WATCHDOG_NS / 1000000000ull), want);
	}
}

static uint32_t count(struct bench *b, unsigned int vector)
{
	return __atomic_load_n(&b->cnt[GUEST_LAB_CNT_VECTOR(vector) / 4], __ATOMIC_ACQUIRE);
}

/* Runs one mailbox command on vCPU 0 and returns its result. */
static uint64_t lab_cmd(struct bench *b, uint32_t cmd, uint64_t a0, uint64_t a1, uint64_t a2)
{
	uint32_t next = *b->seq + 1;

	b->args[0] = a0;
	b->args[1] = a1;
	b->args[2] = a2;
	*b->cmd = cmd;
	__atomic_store_n(b->seq, next, __ATOMIC_RELEASE);
	spin_until(b->ack, next, "mailbox ack");
	return *b->result;
}

/*
 * Spins on non-blocking eventfd @fd until it has been signalled, and reads
 * it. Like the counters, it is spun on rather than slept on: a host thread
 * that sleeps in poll() and must be woken (and scheduled, on a busy
 * machine) would add its wake-up to whichever irqchip resamples later.
 */
static void efd_wait(int fd, uint64_t *value)
{
	uint64_t deadline = 0;

	for (uint32_t i = 1; read(fd, value, sizeof(*value)) != sizeof(*value); i++) {
		if (errno != EAGAIN)
			fail("reading eventfd %d: %s", fd, strerror(errno));
		cpu_pause();
		if (i & 0xfff)
			continue;
		if (!deadline)
			deadline = bench_now_ns() + WATCHDOG_NS;
		else if (bench_now_ns() > deadline)
			fail("eventfd %d not signalled within %d ms", fd, WATCHDOG_MS);
	}
}

/*
 * One injection (or NOP round trip) on @p, closed loop. With @rec the call
 * time, the round trip and (irqfd-level) the resample time are stored as
 * sample number p->n + @i.
 */
static void inject(struct bench *b, struct path *p, bool rec, uint64_t i)
{
	uint32_t want = (uint32_t)(p->taken + 1);
	struct kvmkit_irq_status st = { 0 };
	uint64_t t0, t1, v;
	int r = 0;

	switch (p - b->p) {
	case P_NOP:
		*b->cmd = GUEST_LAB_NOP;
		want = *b->seq + 1;
		t0 = bench_now_ns();
		__atomic_store_n(b->seq, want, __ATOMIC_RELEASE);
		t1 = bench_now_ns();
		spin_until(b->ack, want, "NOP ack");
		break;
	case P_LINE:
		t0 = bench_now_ns();
		r = kvmkit_irq_pulse(b->chip, (uint32_t)p->gsi, &st);
		t1 = bench_now_ns();
		if (r || st.result != KVMKIT_IRQ_DELIVERED || st.cpus != 1)
			fail("kvmkit_irq_pulse(%d): %d, %s to %u CPUs (want delivered to one)%s%s",
			     p->gsi, r, kvmkit_irq_result_name(st.result), st.cpus, r ? ": " : "",
			     r ? kvmkit_strerror() : "");
		spin_until(&b->cnt[p->vector], want, p->name);
		break;
	case P_IRQFD_EDGE:
	case P_MSI_IRQFD:
		t0 = bench_now_ns();
		r = kvmkit_irqfd_signal(b->chip, (uint32_t)p->gsi, p->efd);
		t1 = bench_now_ns();
		if (r)
			die("kvmkit_irqfd_signal");
		spin_until(&b->cnt[p->vector], want, p->name);
		break;
	case P_IRQFD_LEVEL:
		t0 = bench_now_ns();
		r = kvmkit_irqfd_signal(b->chip, (uint32_t)p->gsi, p->efd);
		t1 = bench_now_ns();
		if (r)
			die("kvmkit_irqfd_signal");
		spin_until(&b->cnt[p->vector], want, p->name);
		/* The guest's EOI de-asserted the line: only now may the
		 * device assert it again. */
		efd_wait(p->rfd, &v);
		if (rec)
			p->resample_ns[p->n + i] = bench_now_ns() - t0;
		if (v != 1)
			fail("resamplefd counted %llu EOIs for one interrupt",
			     (unsigned long long)v);
		break;
	case P_SIGNAL_MSI:
		t0 = bench_now_ns();
		r = kvmkit_signal_msi(b->chip, MSI_ADDR_APIC0, p->vector, -1, &st);
		t1 = bench_now_ns();
		if (r || st.result != KVMKIT_IRQ_DELIVERED || st.cpus != 1)
			fail("kvmkit_signal_msi: %d, %s to %u CPUs (want delivered to one)%s%s", r,
			     kvmkit_irq_result_name(st.result), st.cpus, r ? ": " : "",
			     r ? kvmkit_strerror() : "");
		spin_until(&b->cnt[p->vector], want, p->name);
		break;
	default:
		fail("no such path");
	}
	if (rec) {
		p->rt_ns[p->n + i] = bench_now_ns() - t0;
		p->call_ns[p->n + i] = t1 - t0;
	}
	p->taken++;
}

static void run_block(struct bench *b, struct path *p, unsigned int k)
{
	uint64_t t0, t1;

	t0 = bench_now_ns();
	for (unsigned int i = 0; i < k; i++)
		inject(b, p, true, i);
	t1 = bench_now_ns();
	p->loop_ns += t1 - t0;
	p->n += k;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts @v in place and returns the @q-th quantile (nearest rank). */
static double quantile(uint64_t *v, uint64_t n, double q)
{
	uint64_t i;

	qsort(v, n, sizeof(*v), cmp_u64);
	i = (uint64_t)(q * (double)(n - 1) + 0.5);
	if (q == 0.5 && !(n & 1))
		return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
	return (double)v[i];
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	if (fd < 0)
		fail("eventfd: %s", strerror(errno));
	return fd;
}

/* The first two CPUs this thread may run on, or -1s if there are fewer. */
static void pick_cpus(int cpu[2])
{
	cpu_set_t set;
	int n = 0;

	cpu[0] = cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			cpu[n++] = c;
	if (n < 2)
		cpu[0] = cpu[1] = -1;
}

static void pin_self(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fail("sched_setaffinity(CPU %d): %s", cpu, strerror(errno));
}

static bool split_mode;

static void setup(struct bench *b, const char *elf, uint64_t m, bool pin)
{
	static const char *const names[P_COUNT] = {
		[P_NOP] = "nop",
		[P_LINE] = "line",
		[P_IRQFD_EDGE] = "irqfd-edge",
		[P_IRQFD_LEVEL] = "irqfd-level",
		[P_SIGNAL_MSI] = "signal-msi",
		[P_MSI_IRQFD] = "msi-irqfd",
	};
	struct kvmkit_machine_config cfg;
	uint64_t mb = GUEST_LAB_MAILBOX(0);
	struct path *p;
	void *image;
	size_t len;

	for (unsigned int i = 0; i < P_COUNT; i++) {
		p = &b->p[i];
		p->name = names[i];
		p->vector = i ? 0x40 + i - 1 : 0;
		p->gsi = -1;
		p->efd = p->rfd = -1;
		p->call_ns = calloc(m, sizeof(uint64_t));
		p->rt_ns = calloc(m, sizeof(uint64_t));
		if (!p->call_ns || !p->rt_ns)
			fail("out of memory");
	}
	b->p[P_IRQFD_LEVEL].resample_ns = calloc(m, sizeof(uint64_t));
	if (!b->p[P_IRQFD_LEVEL].resample_ns)
		fail("out of memory");

	image = bench_read_file(elf, &len);
	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = 1;
	cfg.vm.mem_size = BENCH_MEM;
	cfg.kernel = image;
	cfg.kernel_len = len;
	cfg.irqchip = true;
	cfg.irqchip_mode = split_mode ? KVMKIT_IRQCHIP_SPLIT : KVMKIT_IRQCHIP_KERNEL;
	if (kvmkit_machine_create(&cfg, &b->m))
		die("machine");
	free(image);
	b->vm = kvmkit_machine_vm(b->m);
	b->chip = kvmkit_machine_irqchip(b->m);
	if (!b->chip)
		fail("the machine has no irqchip");
	b->seq = hva(b, mb + GUEST_LAB_MB_SEQ, 4);
	b->ack = hva(b, mb + GUEST_LAB_MB_ACK, 4);
	b->cmd = hva(b, mb + GUEST_LAB_MB_CMD, 4);
	b->result = hva(b, mb + GUEST_LAB_MB_RESULT, 8);
	b->args = hva(b, mb + GUEST_LAB_MB_ARG(0), 24);
	b->cnt = hva(b, GUEST_LAB_COUNTERS(0), 0x1000);

	/*
	 * Both sides spin: the guest on its mailbox, this thread on the guest's
	 * counters. On one CPU each would wait for the other's time slice to
	 * end. The vCPU thread inherits this thread's affinity at start.
	 */
	if (pin)
		pick_cpus(b->cpu);
	else
		b->cpu[0] = b->cpu[1] = -1;
	if (b->cpu[0] >= 0)
		pin_self(b->cpu[0]);
	if (kvmkit_vm_start(b->vm))
		die("start");
	if (b->cpu[1] >= 0)
		pin_self(b->cpu[1]);
	spin_until(&b->cnt[GUEST_LAB_CNT_READY / 4], 1, "guest READY");
	/* Off the exception vectors and fully masked: no legacy PIC here. */
	lab_cmd(b, GUEST_LAB_PIC_INIT, 0x20, 0x28, 0xffff);
	lab_cmd(b, GUEST_LAB_LAPIC_ENABLE, 0, 0, 0);
	lab_cmd(b, GUEST_LAB_STI, 0, 0, 0);

	/* Three IOAPIC-only pins (16, 17, 18): never a legacy ISA pin. */
	for (unsigned int i = P_LINE; i <= P_IRQFD_LEVEL; i++) {
		p = &b->p[i];
		p->gsi = kvmkit_gsi_alloc_line(b->chip);
		if (p->gsi < 16)
			fail("kvmkit_gsi_alloc_line = %d: %s", p->gsi, kvmkit_strerror());
		if (lab_cmd(b, GUEST_LAB_IOAPIC_WRITE, (uint64_t)p->gsi,
			    p->vector | (i == P_IRQFD_LEVEL ? RTE_LEVEL : 0), 0))
			fail("the guest rejected the IOAPIC entry of pin %d", p->gsi);
	}
	p = &b->p[P_IRQFD_EDGE];
	p->efd = new_eventfd();
	if (kvmkit_irqfd_bind(b->chip, (uint32_t)p->gsi, p->efd, -1))
		die("irqfd (edge)");
	p = &b->p[P_IRQFD_LEVEL];
	p->efd = new_eventfd();
	p->rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); /* spun on: efd_wait() */
	if (p->rfd < 0)
		fail("eventfd: %s", strerror(errno));
	if (kvmkit_irqfd_bind(b->chip, (uint32_t)p->gsi, p->efd, p->rfd))
		die("irqfd (level, resample)");
	p = &b->p[P_MSI_IRQFD];
	p->gsi = kvmkit_gsi_alloc_msi(b->chip);
	if (p->gsi < 0)
		die("kvmkit_gsi_alloc_msi");
	if (kvmkit_irq_route_msi(b->chip, (uint32_t)p->gsi, MSI_ADDR_APIC0, p->vector, -1) ||
	    kvmkit_irq_routes_commit(b->chip))
		die("MSI route");
	p->efd = new_eventfd();
	if (kvmkit_irqfd_bind(b->chip, (uint32_t)p->gsi, p->efd, -1))
		die("irqfd (MSI)");
}

/* Every interrupt arrived exactly once on its own vector, and nothing else. */
static void verify(struct bench *b)
{
	uint64_t total = 0;

	lab_cmd(b, GUEST_LAB_NOP, 0, 0, 0); /* anything injected has been taken */
	for (unsigned int i = P_LINE; i < P_COUNT; i++) {
		struct path *p = &b->p[i];

		if (count(b, p->vector) != (uint32_t)p->taken)
			fail("%s: the guest counted %u interrupts on vector 0x%x, expected %llu",
			     p->name, count(b, p->vector), p->vector, (unsigned long long)p->taken);
		total += p->taken;
	}
	if (b->cnt[GUEST_LAB_CNT_TOTAL / 4] != (uint32_t)total)
		fail("the guest took %u interrupts in all, expected %llu (spurious or stray)",
		     b->cnt[GUEST_LAB_CNT_TOTAL / 4], (unsigned long long)total);
	if (b->cnt[GUEST_LAB_CNT_PENDING_EOI / 4])
		fail("%u EOIs pending", b->cnt[GUEST_LAB_CNT_PENDING_EOI / 4]);
}

static void power_off(struct bench *b)
{
	struct kvmkit_stop_info info;

	/* EXIT acks and powers off: no spin on the ack. */
	b->args[0] = 0;
	*b->cmd = GUEST_LAB_EXIT;
	__atomic_add_fetch(b->seq, 1, __ATOMIC_RELEASE);
	if (kvmkit_vm_wait(b->vm, WATCHDOG_MS, &info))
		die("waiting for power-off");
	if (info.reason != KVMKIT_STOP_GUEST_EXIT || info.status != GUEST_STATUS_OK)
		fail("guest stopped: %s (status %d): %s", kvmkit_stop_reason_name(info.reason),
		     info.status, info.detail);
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	uint64_t m, blocks;
	bool pin = true;

	while (argc > 1 && argv[1][0] == '-') {
		if (!strcmp(argv[1], "--no-pin"))
			pin = false;
		else if (!strcmp(argv[1], "--split"))
			split_mode = true;
		else
			break;
		argv++;
		argc--;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: bench-irq-rate [--no-pin] [--split] GUEST_ELF M\n");
		return 2;
	}
	m = bench_parse_u64("M", argv[2]);
	if (m < BLOCK || m % BLOCK || m > 1000000) {
		fprintf(stderr, "bench-irq-rate: M must be a multiple of %d, %d .. 1000000\n",
			BLOCK, BLOCK);
		return 2;
	}
	setup(&b, argv[1], m, pin);
	fprintf(stderr,
		"bench-irq-rate: guest ready, routes and irqfds set up; vCPU on CPU %d, host on CPU %d\n",
		b.cpu[0], b.cpu[1]);

	/* Warm-up (counted by the guest, not measured). */
	for (unsigned int i = 0; i < P_COUNT; i++)
		for (unsigned int k = 0; k < WARMUP; k++)
			inject(&b, &b.p[i], false, 0);
	verify(&b);
	fprintf(stderr, "bench-irq-rate: warm-up done\n");

	blocks = m / BLOCK;
	for (uint64_t blk = 0; blk < blocks; blk++)
		for (unsigned int i = 0; i < P_COUNT; i++)
			run_block(&b, &b.p[(blk + i) % P_COUNT], BLOCK);
	verify(&b);

	for (unsigned int i = 0; i < P_COUNT; i++) {
		struct path *p = &b.p[i];
		double rt = (double)p->loop_ns / (double)p->n;
		uint64_t slow = 0;

		for (uint64_t k = 0; k < p->n; k++)
			slow += p->rt_ns[k] > SLOW_NS;

		printf("RESULT %s %s n=%llu gsi=%d vector=%u pinned=%d rt_ns=%.1f rate_hz=%.1f rt_p50_ns=%.1f rt_p90_ns=%.1f slow_pct=%.1f call_ns=%.1f call_p90_ns=%.1f",
		       split_mode ? "irq-split" : "irq", p->name, (unsigned long long)p->n, p->gsi,
		       p->vector, b.cpu[0] >= 0, rt, 1e9 / rt, quantile(p->rt_ns, p->n, 0.5),
		       quantile(p->rt_ns, p->n, 0.9), 100.0 * (double)slow / (double)p->n,
		       quantile(p->call_ns, p->n, 0.5), quantile(p->call_ns, p->n, 0.9));
		if (p->resample_ns)
			printf(" resample_ns=%.1f resample_p90_ns=%.1f",
			       quantile(p->resample_ns, p->n, 0.5),
			       quantile(p->resample_ns, p->n, 0.9));
		printf("\n");
	}
	power_off(&b);
	kvmkit_machine_destroy(b.m);
	return 0;
}
