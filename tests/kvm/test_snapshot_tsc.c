// SPDX-License-Identifier: MIT
/*
 * The guest's TSC across a snapshot restored in a new process, in both
 * irqchip modes (docs/SNAPSHOT.md, "Time"): guest time stops while a
 * snapshot rests, so the restored TSC goes on from the saved value. Each
 * of the irq_lab guest's two vCPUs reads its TSC (T0), the machine is
 * paused, snapshotted and destroyed, this process waits REST_MS, and each
 * restored vCPU reads its TSC again (T1); the second vCPU's TSC write
 * meets KVM's synchronization with the first's, and the two stay in step
 * (one TSC offset, read through KVM_VCPU_TSC_OFFSET where KVM has it). Asserted: T1 > T0 (never backwards), and T1 - T0 is no
 * more TSC than the host time the guest could have run between the two
 * reads, the rest left out (never forwards by the rest). Bounds come from
 * measured host times and the vCPU's TSC frequency, not from sleeps.
 *
 * The snapshot is taken soon after the VM starts: its TSC is then within
 * a second of a new VM's, which kernels before 6.x's "don't sync
 * user-written TSC against startup values" take for a synchronization and
 * ignore (kvm_synchronize_tsc), leaving the restored TSC near 0.
 *
 * KVM-PVM keeps the guest TSC at the host's and ignores TSC writes: the
 * binary has its own meson entry, skipped there with the reason; it passes
 * in the emulated x86 host.
 */
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <time.h>

#include "restore_proc.h"

#define REST_MS 1000

#define VCPUS 2

static uint64_t rdtsc_guest(struct lab *l, unsigned int cpu)
{
	return lab_cmd(l, cpu, GUEST_LAB_RDTSC, 0, 0, 0);
}

/* proc_args: [0] host time (ns) before the first read, [1..2] each vCPU's
 * TSC, read just before the pause. */
static void before_tsc(struct lab *l)
{
	proc_args[0] = proc_now_ns();
	for (unsigned int c = 0; c < VCPUS; c++)
		proc_args[1 + c] = rdtsc_guest(l, c);
	assert_int_equal(kvmkit_vm_pause(l->vm), 0);
}

/* A vCPU's TSC offset, where KVM has the attribute (Linux 5.16+). */
static bool tsc_offset(struct lab *r, unsigned int cpu, uint64_t *out)
{
	struct kvm_device_attr attr = { .group = KVM_VCPU_TSC_CTRL,
					.attr = KVM_VCPU_TSC_OFFSET,
					.addr = (uint64_t)(uintptr_t)out };
	int fd = kvmkit_vcpu_fd(kvmkit_vm_vcpu(r->vm, cpu));

	return !ioctl(fd, KVM_HAS_DEVICE_ATTR, &attr) && !ioctl(fd, KVM_GET_DEVICE_ATTR, &attr);
}

/* The vCPUs stay in step: KVM gives them one offset (the source's were one
 * too: created together). */
static void in_step(struct lab *r)
{
	uint64_t o0, o1;
	bool have;

	/* vCPU ioctls wait for KVM_RUN to return: pause first. */
	assert_int_equal(kvmkit_vm_pause(r->vm), 0);
	have = tsc_offset(r, 0, &o0) && tsc_offset(r, 1, &o1);
	assert_int_equal(kvmkit_vm_resume(r->vm), 0);
	if (!have) {
		printf("(no KVM_VCPU_TSC_OFFSET here: the vCPUs' offsets are not compared)\n");
		return;
	}
	if (o0 != o1)
		fail_msg("the restored vCPUs' TSC offsets differ: 0x%" PRIx64 " and 0x%" PRIx64, o0,
			 o1);
}

static void after_tsc(struct lab *r)
{
	uint64_t since = proc_args[0], rest = proc_args[PROC_REST], t0, t1, ran_ns, most;
	int khz = ioctl(kvmkit_vcpu_fd(kvmkit_vm_vcpu(r->vm, 0)), KVM_GET_TSC_KHZ, 0);

	assert_true(khz > 0);
	for (unsigned int c = 0; c < VCPUS; c++) {
		t0 = proc_args[1 + c];
		t1 = rdtsc_guest(r, c);
		ran_ns = proc_now_ns() - since - rest;
		/* What the guest may have run, with 5% and 1 ms for rounding. */
		most = ran_ns / 1000000 * (uint64_t)khz * 105 / 100 + (uint64_t)khz;
		printf("vCPU %u TSC: %" PRIu64 " before, %" PRIu64 " after (%+" PRId64
		       " cycles, at most %" PRIu64 " for the %" PRIu64
		       " ms that could run; rest %" PRIu64 " ms, %d kHz)\n",
		       c, t0, t1, (int64_t)(t1 - t0), most, ran_ns / 1000000, rest / 1000000, khz);
		if (t1 <= t0)
			fail_msg("vCPU %u: the restored TSC went backwards: %" PRIu64
				 " after %" PRIu64,
				 c, t1, t0);
		if (t1 - t0 > most)
			fail_msg("vCPU %u: the restored TSC moved %" PRIu64
				 " cycles, more than the %" PRIu64
				 " the guest could have run: it counted the rest",
				 c, t1 - t0, most);
	}
	in_step(r);
}

static const struct proc_case cases[] = {
	{ "tsc", before_tsc, after_tsc, REST_MS, VCPUS },
};

#define PVM_NO_TSC_WRITE                                                             \
	"KVM-PVM keeps the guest TSC at the host's and ignores KVM_SET_MSRS of the " \
	"TSC, so a restored guest's TSC is the host's"

static uint64_t host_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* One TSC reading with the CLOCK_MONOTONIC_RAW time it was taken at (ns):
 * bracketed by two clock reads at most 5 us apart (retried otherwise). */
static void tsc_sample(uint64_t *tsc, uint64_t *ns)
{
	for (int i = 0;; i++) {
		struct timespec a, b;
		uint64_t ta, tb;

		clock_gettime(CLOCK_MONOTONIC_RAW, &a);
		*tsc = host_rdtsc();
		clock_gettime(CLOCK_MONOTONIC_RAW, &b);
		ta = (uint64_t)a.tv_sec * 1000000000ull + (uint64_t)a.tv_nsec;
		tb = (uint64_t)b.tv_sec * 1000000000ull + (uint64_t)b.tv_nsec;
		*ns = ta + (tb - ta) / 2;
		if (tb - ta <= 5000 || i == 1000)
			return;
	}
}

/*
 * The host's TSC rate (kHz) against CLOCK_MONOTONIC_RAW over 200 ms (at
 * most about 25 ppm off), and the rate KVM gives a new vCPU. KVM fixes
 * that rate when its module loads; a host that recalibrates its TSC
 * afterwards by more than KVM's 250 ppm tolerance (the emulated x86 host
 * now and then: its "Refined TSC clocksource calibration" lands after
 * kvm_amd loaded) has vCPUs whose rate KVM can neither honour nor scale,
 * and their TSC is KVM's catch-up emulation, whatever the VMM writes.
 * Measured, not a timing assertion.
 */
static bool tsc_rate_consistent(char *why, size_t len)
{
	struct kvmkit_machine *m = machine_for("hello", 1, 16 << 20);
	int khz =
		ioctl(kvmkit_vcpu_fd(kvmkit_vm_vcpu(kvmkit_machine_vm(m), 0)), KVM_GET_TSC_KHZ, 0);
	uint64_t c0, n0, c1, n1, host;
	double ppm;

	kvmkit_machine_destroy(m);
	tsc_sample(&c0, &n0);
	usleep(200000);
	tsc_sample(&c1, &n1);
	host = (c1 - c0) * 1000000 / (n1 - n0);
	ppm = ((double)khz - (double)host) / (double)host * 1e6;
	printf("TSC rates: vCPU %d kHz, host %" PRIu64 " kHz (%+.0f ppm)\n", khz, host, ppm);
	snprintf(why, len,
		 "KVM gives vCPUs a %d kHz TSC while the host's runs at %" PRIu64
		 " kHz (%+.0f ppm, beyond KVM's 250 ppm): the host recalibrated its TSC after "
		 "KVM loaded, and KVM emulates guest TSCs by catch-up",
		 khz, host, ppm);
	return khz > 0 && ppm < 250 && ppm > -250;
}

static void tsc_case(enum kvmkit_irqchip_mode mode)
{
	char why[256];

	host_quirk(host_is_kvm_pvm(), PVM_NO_TSC_WRITE);
	if (!tsc_rate_consistent(why, sizeof(why))) {
		printf("skipped: %s\n", why);
		skip();
	}
	proc_run_case(&cases[0], mode);
}

static void test_tsc_kernel(void **state)
{
	tsc_case(KVMKIT_IRQCHIP_KERNEL);
}

static void test_tsc_split(void **state)
{
	tsc_case(KVMKIT_IRQCHIP_SPLIT);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tsc_kernel),
		cmocka_unit_test(test_tsc_split),
	};

	return proc_test_main(argc, argv, cases, "snapshot_tsc", tests);
}
