// SPDX-License-Identifier: MIT
/*
 * The guest's TSC across a snapshot restored in a new process, in both
 * irqchip modes (docs/SNAPSHOT.md, "Time"): guest time stops while a
 * snapshot rests, so the restored TSC goes on from the saved value. Each
 * of the irq_lab guest's two vCPUs reads its TSC (T0), the machine is
 * paused, snapshotted and destroyed, this process waits REST_MS, and each
 * restored vCPU reads its TSC again (T1); the second vCPU's TSC write
 * meets KVM's synchronization with the first's. Asserted: T1 > T0 (never backwards), and T1 - T0 is no
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
}

static const struct proc_case cases[] = {
	{ "tsc", before_tsc, after_tsc, REST_MS, VCPUS },
};

#define PVM_NO_TSC_WRITE                                                             \
	"KVM-PVM keeps the guest TSC at the host's and ignores KVM_SET_MSRS of the " \
	"TSC, so a restored guest's TSC is the host's"

static void test_tsc_kernel(void **state)
{
	host_quirk(host_is_kvm_pvm(), PVM_NO_TSC_WRITE);
	proc_run_case(&cases[0], KVMKIT_IRQCHIP_KERNEL);
}

static void test_tsc_split(void **state)
{
	host_quirk(host_is_kvm_pvm(), PVM_NO_TSC_WRITE);
	proc_run_case(&cases[0], KVMKIT_IRQCHIP_SPLIT);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tsc_kernel),
		cmocka_unit_test(test_tsc_split),
	};
	int r;

	proc_cases = cases;
	proc_ncases = sizeof(cases) / sizeof(cases[0]);
	r = proc_main(argc, argv);
	if (r >= 0)
		return r;
	test_args(argc, argv);
	require_kvm();
	return cmocka_run_group_tests_name("snapshot_tsc", tests, NULL, NULL);
}
