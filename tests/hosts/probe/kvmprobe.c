// SPDX-License-Identifier: MIT
/*
 * kvmprobe: checks that /dev/kvm works, using the raw KVM API only.
 *
 * Opens /dev/kvm, checks KVM_GET_API_VERSION == 12, creates a VM, the
 * in-kernel interrupt controller (x86: KVM_CREATE_IRQCHIP; arm64: a GICv3
 * through KVM_CREATE_DEVICE), a vCPU, prints a few KVM_CHECK_EXTENSION
 * values, then runs a tiny guest that does N port-I/O (x86) or MMIO
 * (arm64) writes and reports the cost of one exit to userspace.
 *
 * Exit status: 0 ok, 1 failure, 77 "skipped: no /dev/kvm" (unless
 * --require, which makes a missing /dev/kvm a failure).
 *
 * Usage: kvmprobe [--require] [--exits N]
 * Builds natively (meson) and statically with a cross compiler.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define EXIT_SKIP 77
#define MEM_SIZE 0x10000u

static int failures;

static void fail(const char *what)
{
	fprintf(stderr, "kvmprobe: FAIL: %s: %s\n", what, strerror(errno));
	failures++;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

struct cap {
	const char *name;
	long id;
};

#define CAP(x) { #x, x }

static const struct cap caps[] = {
	CAP(KVM_CAP_USER_MEMORY),
	CAP(KVM_CAP_NR_VCPUS),
	CAP(KVM_CAP_MAX_VCPUS),
	CAP(KVM_CAP_NR_MEMSLOTS),
	CAP(KVM_CAP_IRQCHIP),
	CAP(KVM_CAP_IOEVENTFD),
	CAP(KVM_CAP_IRQFD),
	CAP(KVM_CAP_ONE_REG),
	CAP(KVM_CAP_READONLY_MEM),
	CAP(KVM_CAP_IMMEDIATE_EXIT),
	CAP(KVM_CAP_DEVICE_CTRL),
#if defined(__x86_64__)
	CAP(KVM_CAP_PIT2),
	CAP(KVM_CAP_X2APIC_API),
	CAP(KVM_CAP_NESTED_STATE),
#elif defined(__aarch64__)
	CAP(KVM_CAP_ARM_VM_IPA_SIZE),
	CAP(KVM_CAP_ARM_PSCI_0_2),
	CAP(KVM_CAP_ARM_PMU_V3),
#endif
};

static void print_caps(int fd)
{
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int v = ioctl(fd, KVM_CHECK_EXTENSION, caps[i].id);

		printf("  %-26s %d\n", caps[i].name, v);
	}
}

#if defined(__x86_64__)
#define PROBE_PORT 0x10
#define DONE_PORT 0x11
#define CODE_GPA 0x1000u

/* Real mode at 0x1000: al = 0x2a; cx = N; do { out 0x10, al } while (--cx);
 * out 0x11, al; hlt. */
static size_t guest_code(uint8_t *mem, unsigned int n)
{
	const uint8_t code[] = {
		0xb0, 0x2a,			/* mov al, 0x2a */
		0xb9, (uint8_t)n, (uint8_t)(n >> 8), /* mov cx, n */
		0xe6, PROBE_PORT,		/* 1: out PROBE_PORT, al */
		0x49,				/* dec cx */
		0x75, 0xfb,			/* jnz 1b */
		0xe6, DONE_PORT,		/* out DONE_PORT, al */
		0xf4,				/* hlt */
	};

	memcpy(mem + CODE_GPA, code, sizeof(code));
	return sizeof(code);
}

static int arch_vm_setup(int vm)
{
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0)
		fail("KVM_SET_TSS_ADDR");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		fail("KVM_CREATE_IRQCHIP");
		return -1;
	}
	printf("KVM_CREATE_IRQCHIP: ok\n");
	return 0;
}

static int arch_vcpu_setup(int kvm, int vm, int vcpu)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	(void)kvm;
	(void)vm;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
		fail("KVM_GET_SREGS");
		return -1;
	}
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) {
		fail("KVM_SET_SREGS");
		return -1;
	}
	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_GPA;
	regs.rflags = 2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
		fail("KVM_SET_REGS");
		return -1;
	}
	return 0;
}

/* 1: a probe write, 2: the final write, -1: anything else. */
static int classify_exit(const struct kvm_run *run)
{
	const uint8_t *data;

	if (run->exit_reason != KVM_EXIT_IO ||
	    run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1)
		return -1;
	data = (const uint8_t *)run + run->io.data_offset;
	if (*data != 0x2a)
		return -1;
	if (run->io.port == PROBE_PORT)
		return 1;
	return run->io.port == DONE_PORT ? 2 : -1;
}

#elif defined(__aarch64__)
#define RAM_GPA 0x40000000ull
#define MMIO_GPA 0x50000000ull
#define GICD_GPA 0x08000000ull
#define GICR_GPA 0x080a0000ull

/* x0 = MMIO_GPA; w1 = 0x2a; x2 = N; do { *(u32 *)x0 = w1 } while (--x2);
 * *(u32 *)(x0 + 8) = w1; b . */
static size_t guest_code(uint8_t *mem, unsigned int n)
{
	const uint32_t code[] = {
		0xd2aa0000,			/* movz x0, #0x5000, lsl #16 */
		0x52800541,			/* movz w1, #0x2a */
		0xd2800002 | ((n & 0xffffu) << 5), /* movz x2, #n */
		0xb9000001,			/* 1: str w1, [x0] */
		0xf1000442,			/* subs x2, x2, #1 */
		0x54ffffc1,			/* b.ne 1b */
		0xb9000801,			/* str w1, [x0, #8] */
		0x14000000,			/* b . */
	};

	memcpy(mem, code, sizeof(code));
	return sizeof(code);
}

static int vgic_fd = -1;

static int set_dev_attr(int dev, uint32_t group, uint64_t attr, void *val,
			const char *what)
{
	struct kvm_device_attr a = {
		.group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)val,
	};

	if (ioctl(dev, KVM_SET_DEVICE_ATTR, &a) < 0) {
		fail(what);
		return -1;
	}
	return 0;
}

static int arch_vm_setup(int vm)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	uint64_t dist = GICD_GPA, redist = GICR_GPA;

	if (ioctl(vm, KVM_CREATE_DEVICE, &cd) < 0) {
		fail("KVM_CREATE_DEVICE(KVM_DEV_TYPE_ARM_VGIC_V3)");
		return -1;
	}
	vgic_fd = (int)cd.fd;
	printf("KVM_CREATE_DEVICE(VGIC_V3): ok\n");
	if (set_dev_attr(vgic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
			 KVM_VGIC_V3_ADDR_TYPE_DIST, &dist, "vgic dist addr") ||
	    set_dev_attr(vgic_fd, KVM_DEV_ARM_VGIC_GRP_ADDR,
			 KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
			 "vgic redist addr"))
		return -1;
	return 0;
}

static int arch_vcpu_setup(int kvm, int vm, int vcpu)
{
	struct kvm_vcpu_init init;
	uint64_t pc = RAM_GPA;
	struct kvm_one_reg reg = {
		.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE |
		      KVM_REG_ARM_CORE_REG(regs.pc),
		.addr = (uint64_t)(uintptr_t)&pc,
	};

	(void)kvm;
	memset(&init, 0, sizeof(init));
	if (ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init) < 0) {
		fail("KVM_ARM_PREFERRED_TARGET");
		return -1;
	}
	if (ioctl(vcpu, KVM_ARM_VCPU_INIT, &init) < 0) {
		fail("KVM_ARM_VCPU_INIT");
		return -1;
	}
	if (ioctl(vcpu, KVM_SET_ONE_REG, &reg) < 0) {
		fail("KVM_SET_ONE_REG(pc)");
		return -1;
	}
	/* The vGIC can only be initialised once the vCPUs exist. */
	if (set_dev_attr(vgic_fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
			 KVM_DEV_ARM_VGIC_CTRL_INIT, NULL, "vgic init"))
		return -1;
	printf("vGICv3 initialised\n");
	return 0;
}

static int classify_exit(const struct kvm_run *run)
{
	uint32_t v;

	if (run->exit_reason != KVM_EXIT_MMIO || !run->mmio.is_write ||
	    run->mmio.len != 4)
		return -1;
	memcpy(&v, run->mmio.data, sizeof(v));
	if (v != 0x2a)
		return -1;
	if (run->mmio.phys_addr == MMIO_GPA)
		return 1;
	return run->mmio.phys_addr == MMIO_GPA + 8 ? 2 : -1;
}
#else
#error "kvmprobe supports x86_64 and aarch64 only"
#endif

static int run_guest(int kvm, int vm, unsigned int n)
{
	struct kvm_userspace_memory_region region;
	struct kvm_run *run;
	uint8_t *mem;
	long run_size;
	int vcpu;
	unsigned int probes = 0;
	double t0 = 0, t1;

	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fail("mmap guest memory");
		return -1;
	}
	guest_code(mem, n);
	memset(&region, 0, sizeof(region));
#if defined(__aarch64__)
	region.guest_phys_addr = RAM_GPA;
#endif
	region.memory_size = MEM_SIZE;
	region.userspace_addr = (uint64_t)(uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		fail("KVM_SET_USER_MEMORY_REGION");
		return -1;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		fail("KVM_CREATE_VCPU");
		return -1;
	}
	printf("KVM_CREATE_VCPU: ok\n");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0) {
		fail("KVM_GET_VCPU_MMAP_SIZE");
		return -1;
	}
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		   vcpu, 0);
	if (run == MAP_FAILED) {
		fail("mmap kvm_run");
		return -1;
	}
	if (arch_vcpu_setup(kvm, vm, vcpu))
		return -1;

	for (;;) {
		int kind;

		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			fail("KVM_RUN");
			return -1;
		}
		kind = classify_exit(run);
		if (kind < 0) {
			fprintf(stderr,
				"kvmprobe: FAIL: unexpected exit reason %u "
				"after %u probe exits\n",
				run->exit_reason, probes);
			failures++;
			return -1;
		}
		if (kind == 2)
			break;
		if (probes++ == 0)
			t0 = now_us();
	}
	t1 = now_us();
	if (probes != n) {
		fprintf(stderr, "kvmprobe: FAIL: %u probe exits, expected %u\n",
			probes, n);
		failures++;
		return -1;
	}
	printf("guest ran: %u exits to userspace, %.1f us per exit\n", n,
	       n > 1 ? (t1 - t0) / (n - 1) : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	int require = 0, kvm, vm, api;
	unsigned int exits = 1000;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--require")) {
			require = 1;
		} else if (!strcmp(argv[i], "--exits") && i + 1 < argc) {
			exits = (unsigned int)strtoul(argv[++i], NULL, 0);
			if (exits < 1 || exits > 0xffff) {
				fprintf(stderr, "kvmprobe: --exits 1..65535\n");
				return 2;
			}
		} else {
			fprintf(stderr,
				"usage: kvmprobe [--require] [--exits N]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		if (!require && (errno == ENOENT || errno == ENXIO ||
				 errno == ENODEV)) {
			printf("skipped: no /dev/kvm\n");
			return EXIT_SKIP;
		}
		fail("open /dev/kvm");
		return 1;
	}
	api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	printf("KVM_GET_API_VERSION: %d\n", api);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "kvmprobe: FAIL: API version %d, expected %d\n",
			api, KVM_API_VERSION);
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fail("KVM_CREATE_VM");
		return 1;
	}
	printf("KVM_CREATE_VM: ok\n");
	printf("extensions (/dev/kvm):\n");
	print_caps(kvm);
	if (arch_vm_setup(vm) == 0)
		run_guest(kvm, vm, exits);

	if (failures) {
		printf("kvmprobe: %d failure(s)\n", failures);
		return 1;
	}
	printf("kvmprobe: ok\n");
	return 0;
}
