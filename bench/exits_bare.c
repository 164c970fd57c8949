// SPDX-License-Identifier: MIT
/*
 * The floor for the exit round trip: the same guest (exits_bench.elf) in
 * the same long-mode entry state, run by a bare loop of ioctl(KVM_RUN) and a
 * switch on exit_reason. No kvmkit VM, no bus, no vCPU thread: everything
 * below is raw ioctls on this thread. kvmkit is used for one thing only,
 * kvmkit_elf_parse(), a pure function that validates the image and lists its
 * segments; copying them, the GDT, the page tables and the registers are
 * written here.
 *
 * The MMIO and port writes are counted and the clock is read on the same
 * three accesses as in bench-exits-kvmkit, so both programs time the same
 * window with the same bookkeeping per exit.
 *
 * With --timed the loop also does what kvmkit's vCPU loop does for its
 * user_ns statistic (a clock read after KVM_RUN returns and one before the
 * next call) and reports the userspace time per exit of this loop: the
 * share of a minimal VMM plus two clock reads.
 *
 * usage: bench-exits-bare [--timed] GUEST_ELF N
 * prints: RESULT exits bare|bare-timed n=.. mmio_ns=.. pio_ns=.. exit_ns=..
 *         [user_ns=..] wall_ms=..
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

#include <kvmkit/error.h>
#include <kvmkit/loader.h>

#include "bench_util.h"
#include "guest_abi.h"

#define BENCH_MEM (16ull << 20)
#define TSS_ADDR 0xfffbd000ull
#define IDENTITY_MAP_ADDR 0xfffbc000ull
#define HUGE_2M (2ull << 20)

/* Boot area, the same layout kvmkit's loader documents in loader.h. */
#define BOOT_GDT 0x1000
#define BOOT_PML4 0x2000
#define BOOT_PDPT 0x3000
#define BOOT_PD 0x4000
#define PTE_P_RW_US 0x7ull
#define PDE_2M_BIT (1ull << 7)

static void fail(const char *what)
{
	fprintf(stderr, "bench-exits-bare: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int xioctl(int fd, unsigned long req, const void *arg, const char *name)
{
	int r = ioctl(fd, req, arg);

	if (r < 0)
		fail(name);
	return r;
}

static void set_cpuid(int kvm, int vcpu)
{
	struct kvm_cpuid2 *c = bench_supported_cpuid(kvm, 256);

	if (!c)
		fail("KVM_GET_SUPPORTED_CPUID");
	xioctl(vcpu, KVM_SET_CPUID2, c, "KVM_SET_CPUID2");
	free(c);
}

static void load_guest(uint8_t *ram, const char *path, uint64_t *entry)
{
	struct kvmkit_elf_image img;
	uint64_t gdt[3] = { 0, 0x00af9a000000ffffull, 0x00cf92000000ffffull };
	uint64_t *pml4 = (uint64_t *)(ram + BOOT_PML4);
	uint64_t *pdpt = (uint64_t *)(ram + BOOT_PDPT);
	uint64_t *pd = (uint64_t *)(ram + BOOT_PD);
	size_t len;
	uint8_t *elf = bench_read_file(path, &len);

	if (kvmkit_elf_parse(elf, len, &img)) {
		fprintf(stderr, "bench-exits-bare: %s: %s\n", path, kvmkit_strerror());
		exit(1);
	}
	for (unsigned int i = 0; i < img.nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img.segs[i];

		if (s->paddr < 0x8000 || s->paddr + s->memsz > BENCH_MEM) {
			fprintf(stderr, "bench-exits-bare: segment 0x%llx+0x%llx does not fit\n",
				(unsigned long long)s->paddr, (unsigned long long)s->memsz);
			exit(1);
		}
		memcpy(ram + s->paddr, elf + s->offset, s->filesz);
		memset(ram + s->paddr + s->filesz, 0, s->memsz - s->filesz);
	}
	*entry = img.entry;
	free(elf);

	memcpy(ram + BOOT_GDT, gdt, sizeof(gdt));
	pml4[0] = BOOT_PDPT | PTE_P_RW_US;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD + i * 4096) | PTE_P_RW_US;
	for (uint64_t i = 0; i < 2048; i++)
		pd[i] = (i << 21) | PTE_P_RW_US | PDE_2M_BIT;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

static void setup_regs(int vcpu, uint64_t entry)
{
	struct kvm_sregs s;
	struct kvm_regs r;

	xioctl(vcpu, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
	seg(&s.cs, 0x08, 0xb, 1);
	seg(&s.ds, 0x10, 0x3, 0);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.gdt.base = BOOT_GDT;
	s.gdt.limit = 3 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	/* PE|MP|ET|NE|WP|PG, PAE|OSFXSR|OSXMMEXCPT, LME|LMA|SCE */
	s.cr0 = 0x80010033ull;
	s.cr3 = BOOT_PML4;
	s.cr4 = 0x620ull;
	s.efer = 0x501ull;
	xioctl(vcpu, KVM_SET_SREGS, &s, "KVM_SET_SREGS");
	memset(&r, 0, sizeof(r));
	r.rip = entry;
	r.rflags = 0x2;
	r.rdi = 0;
	r.rsi = 1;
	r.rdx = BENCH_MEM;
	xioctl(vcpu, KVM_SET_REGS, &r, "KVM_SET_REGS");
}

int main(int argc, char **argv)
{
	struct kvm_userspace_memory_region region;
	struct kvm_run *run;
	uint64_t n, entry, identity = IDENTITY_MAP_ADDR;
	uint64_t n_mmio = 0, n_pio = 0, t_mmio0 = 0, t_pio0 = 0, t_pio_last = 0;
	uint64_t user_ns = 0, user0 = 0, user1 = 0, ret_ns = 0, t0, t1;
	uint8_t *map, *ram;
	int kvm, vm, vcpu, timed = 0, done = 0, status = -1, run_size;
	long sys_ret;

	if (argc > 1 && !strcmp(argv[1], "--timed")) {
		timed = 1;
		argv++;
		argc--;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: bench-exits-bare [--timed] GUEST_ELF N\n");
		return 2;
	}
	n = bench_parse_u64("N", argv[2]);
	if (n < 2 || n > 0xffffffffull) {
		fprintf(stderr, "bench-exits-bare: N must be 2 .. 2^32-1\n");
		return 2;
	}

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		fail("/dev/kvm");
	vm = xioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	sys_ret = ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR);
	if (sys_ret < 0)
		fail("KVM_SET_TSS_ADDR");
	xioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity, "KVM_SET_IDENTITY_MAP_ADDR");

	/* RAM as kvmkit maps it: anonymous, NORESERVE, 2 MiB aligned, THP. */
	map = mmap(NULL, BENCH_MEM + HUGE_2M, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		fail("mmap");
	ram = (uint8_t *)(((uintptr_t)map + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1));
	madvise(ram, BENCH_MEM, MADV_HUGEPAGE);
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = BENCH_MEM,
		.userspace_addr = (uintptr_t)ram,
	};
	xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");

	vcpu = xioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	run_size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		fail("mmap kvm_run");
	set_cpuid(kvm, vcpu);
	load_guest(ram, argv[1], &entry);
	memcpy(ram + GUEST_BENCH_ITERS_ADDR, &n, sizeof(n));
	setup_regs(vcpu, entry);

	t0 = bench_now_ns();
	while (!done) {
		if (timed && ret_ns)
			user_ns += bench_now_ns() - ret_ns;
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fail("KVM_RUN");
		}
		if (timed)
			ret_ns = bench_now_ns();
		switch (run->exit_reason) {
		case KVM_EXIT_MMIO:
			if (run->mmio.is_write && run->mmio.phys_addr == GUEST_TEST_MMIO &&
			    n_mmio++ == 0) {
				t_mmio0 = bench_now_ns();
				user0 = user_ns;
			}
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
			break;
		case KVM_EXIT_IO: {
			uint8_t *data = (uint8_t *)run + run->io.data_offset;

			if (run->io.direction == KVM_EXIT_IO_IN) {
				memset(data, 0xff, (size_t)run->io.size * run->io.count);
			} else if (run->io.port == GUEST_TEST_PORT) {
				uint64_t i = n_pio++;

				if (i == 0) {
					t_pio0 = bench_now_ns();
				} else if (i + 1 == n) {
					t_pio_last = bench_now_ns();
					user1 = user_ns;
				}
			} else if (run->io.port == GUEST_REPORT_POWER_OFF && run->io.size == 4) {
				uint32_t v;

				memcpy(&v, data, 4);
				status = (int)v;
				done = 1;
			}
			break;
		}
		default:
			fprintf(stderr, "bench-exits-bare: unexpected exit reason %u\n",
				run->exit_reason);
			return 1;
		}
	}
	t1 = bench_now_ns();

	if (status != GUEST_STATUS_OK || n_mmio != n || n_pio != n) {
		fprintf(stderr,
			"bench-exits-bare: status %d, saw %llu MMIO and %llu PIO writes (want %llu)\n",
			status, (unsigned long long)n_mmio, (unsigned long long)n_pio,
			(unsigned long long)n);
		return 1;
	}
	printf("RESULT exits %s n=%llu mmio_ns=%.1f pio_ns=%.1f exit_ns=%.1f",
	       timed ? "bare-timed" : "bare", (unsigned long long)n,
	       (double)(t_pio0 - t_mmio0) / (double)n,
	       (double)(t_pio_last - t_pio0) / (double)(n - 1),
	       (double)(t_pio_last - t_mmio0) / (double)(2 * n - 1));
	if (timed)
		printf(" user_ns=%.1f", (double)(user1 - user0) / (double)(2 * n - 1));
	printf(" wall_ms=%.1f\n", (double)(t1 - t0) / 1e6);
	return 0;
}
