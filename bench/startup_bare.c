// SPDX-License-Identifier: MIT
/*
 * The floor for start-up: what `kvmkit run --kernel PAYLOAD` has to do to
 * show a Multiboot payload's first serial byte, done with raw ioctls and
 * nothing else (no kvmkit code, no devices, no vCPU thread):
 *
 *   open /dev/kvm, KVM_CREATE_VM, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR,
 *   RAM (anonymous, NORESERVE, 2 MiB aligned, THP: as kvmkit maps it),
 *   KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, PIT reinjection off by
 *   KVM_REINJECT_CONTROL on a thread of its own (joined before exit, as
 *   kvmkit's in-kernel irqchip does), one vCPU with KVM's supported CPUID,
 *   the ELF32 segments, a GDT and a Multiboot information structure at
 *   kvmkit's addresses, flat 32-bit protected mode with EAX = 0x2BADB002;
 *
 * then KVM_RUN on the main thread until the guest writes COM1's THR (0x3f8):
 * that byte goes to stdout at once. The run goes on to the guest's
 * isa-debug-exit write (port 0xf4), whose value V ends the process with
 * status ((V << 1) | 1) & 0xff as kvmkit's device does. Any other exit is
 * an error. bench-startup-exec times exec -> the byte.
 *
 * --reinject picks what happens to the PIT's lost-tick reinjection, which
 * KVM turns on at KVM_CREATE_PIT2: "thread" (default) switches it off on a
 * thread as above, "sync" switches it off on the main thread before the
 * vCPU is created, "on" leaves KVM's default (as QEMU, kvmtool and
 * Firecracker do; the kernel then unregisters the notifiers when the VM is
 * destroyed).
 *
 * With BENCH_PHASES=1 it prints per-phase times on stderr:
 *   RESULT phases bare exec_to_main_ms=.. vm_ms=.. ram_ms=.. irqchip_ms=..
 *          vcpu_ms=.. load_ms=.. to_first_byte_ms=..
 *
 * usage: bench-startup-bare [--reinject thread|sync|on] PAYLOAD [MEM_MIB]
 *        (MEM_MIB: default 128, as kvmkit run)
 */
#include <elf.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

#include "bench_util.h"

#define TSS_ADDR 0xfffbd000ull
#define IDENTITY_MAP_ADDR 0xfffbc000ull
#define HUGE_2M (2ull << 20)
#define MB_MAGIC 0x1BADB002u
#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_SEARCH 8192
/* kvmkit's Multiboot area (include/kvmkit/loader.h). */
#define MB_GDT 0x9000u
#define MB_INFO 0x9100u
#define COM1 0x3f8
#define DEBUG_EXIT 0xf4

static void fail(const char *what)
{
	fprintf(stderr, "bench-startup-bare: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void bad_image(const char *why)
{
	fprintf(stderr, "bench-startup-bare: payload: %s\n", why);
	exit(1);
}

static int xioctl(int fd, unsigned long req, const void *arg, const char *name)
{
	int r = ioctl(fd, req, arg);

	if (r < 0)
		fail(name);
	return r;
}

static int vm_fd;
static struct kvm_reinject_control reinject; /* pit_reinject = 0 */

/* Costs an SRCU grace period in the kernel (kvmkit does the same on a
 * thread: src/arch/x86/irqchip_kernel.c). */
static void *reinject_off(void *arg)
{
	(void)arg;
	if (ioctl(vm_fd, KVM_REINJECT_CONTROL, &reinject) < 0)
		perror("bench-startup-bare: KVM_REINJECT_CONTROL");
	return NULL;
}

static void set_cpuid(int kvm, int vcpu)
{
	struct kvm_cpuid2 *c = bench_supported_cpuid(kvm, 64);

	if (!c)
		fail("KVM_GET_SUPPORTED_CPUID");
	xioctl(vcpu, KVM_SET_CPUID2, c, "KVM_SET_CPUID2");
	free(c);
}

/* Copies the ELF32 image's PT_LOAD segments into RAM; returns the entry. */
static uint32_t load_elf32(uint8_t *ram, uint64_t mem, const uint8_t *b, size_t len)
{
	Elf32_Ehdr eh;
	int found = 0;

	for (size_t off = 0; off + 12 <= len && off + 12 <= MB_SEARCH; off += 4) {
		uint32_t h[3];

		memcpy(h, b + off, sizeof(h));
		if (h[0] == MB_MAGIC && (uint32_t)(h[0] + h[1] + h[2]) == 0) {
			found = 1;
			break;
		}
	}
	if (!found)
		bad_image("no Multiboot header");
	if (len < sizeof(eh))
		bad_image("too short");
	memcpy(&eh, b, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS32 ||
	    eh.e_machine != EM_386 || eh.e_phentsize != sizeof(Elf32_Phdr) || eh.e_phoff > len ||
	    (uint64_t)eh.e_phnum * sizeof(Elf32_Phdr) > len - eh.e_phoff)
		bad_image("not an ELF32 i386 executable");
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf32_Phdr ph;

		memcpy(&ph, b + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > len ||
		    ph.p_filesz > len - ph.p_offset || (uint64_t)ph.p_paddr + ph.p_memsz > mem ||
		    (ph.p_paddr < 0x10000 && ph.p_paddr + ph.p_memsz > MB_GDT))
			bad_image("segment outside RAM or over the Multiboot area");
		memcpy(ram + ph.p_paddr, b + ph.p_offset, ph.p_filesz);
		memset(ram + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	return eh.e_entry;
}

/* A GDT and a minimal information structure (memory sizes only) where
 * kvmkit puts them. */
static void write_boot_area(uint8_t *ram, uint64_t mem)
{
	uint64_t gdt[3] = { 0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull };
	uint32_t info[4] = { 1, 640, (uint32_t)((mem - (1u << 20)) >> 10), 0 };

	memcpy(ram + MB_GDT, gdt, sizeof(gdt));
	memcpy(ram + MB_INFO, info, sizeof(info));
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->db = 1;
}

static void setup_regs(int vcpu, uint32_t entry)
{
	struct kvm_sregs s;
	struct kvm_regs r;

	xioctl(vcpu, KVM_GET_SREGS, &s, "KVM_GET_SREGS");
	seg(&s.cs, 0x08, 0xb);
	seg(&s.ds, 0x10, 0x3);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.gdt.base = MB_GDT;
	s.gdt.limit = 3 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = 0x11; /* PE | ET */
	s.cr2 = s.cr3 = s.cr4 = s.efer = 0;
	xioctl(vcpu, KVM_SET_SREGS, &s, "KVM_SET_SREGS");
	memset(&r, 0, sizeof(r));
	r.rip = entry;
	r.rflags = 0x2;
	r.rax = MB_BOOT_MAGIC;
	r.rbx = MB_INFO;
	xioctl(vcpu, KVM_SET_REGS, &r, "KVM_SET_REGS");
}

static double ms(uint64_t a, uint64_t b)
{
	return (double)(b - a) / 1e6;
}

int main(int argc, char **argv)
{
	uint64_t t_main = bench_now_ns(), t[7] = { 0 }, t_exec = 0, mem = 128ull << 20;
	uint64_t identity = IDENTITY_MAP_ADDR;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	struct kvm_userspace_memory_region region;
	const char *env = getenv("BENCH_T_EXEC_NS"), *phases = getenv("BENCH_PHASES");
	const char *mode = "thread";
	bool threaded = false;
	struct kvm_run *run;
	pthread_t reinject_thread;
	int kvm, vcpu, run_size, status = -1, printed = 0;
	uint32_t entry;
	uint8_t *map, *ram, *image;
	size_t len;

	if (argc > 2 && !strcmp(argv[1], "--reinject")) {
		mode = argv[2];
		argv += 2;
		argc -= 2;
	}
	if ((argc != 2 && argc != 3) ||
	    (strcmp(mode, "thread") && strcmp(mode, "sync") && strcmp(mode, "on"))) {
		fprintf(stderr,
			"usage: bench-startup-bare [--reinject thread|sync|on] PAYLOAD [MEM_MIB]\n");
		return 2;
	}
	if (argc == 3)
		mem = bench_parse_u64("MEM_MIB", argv[2]) << 20;
	if (mem < (8ull << 20) || mem > (3ull << 30)) {
		fprintf(stderr, "bench-startup-bare: MEM_MIB must be 8 .. 3072\n");
		return 2;
	}
	if (env)
		t_exec = bench_parse_u64("BENCH_T_EXEC_NS", env);
	image = bench_read_file(argv[1], &len);

	t[0] = bench_now_ns();
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		fail("/dev/kvm");
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		fail("KVM_GET_API_VERSION");
	vm_fd = xioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	run_size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
	if (ioctl(vm_fd, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR) < 0)
		fail("KVM_SET_TSS_ADDR");
	xioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &identity, "KVM_SET_IDENTITY_MAP_ADDR");
	t[1] = bench_now_ns();

	map = mmap(NULL, mem + HUGE_2M, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		fail("mmap");
	ram = (uint8_t *)(((uintptr_t)map + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1));
	madvise(ram, mem, MADV_HUGEPAGE);
	madvise(ram, mem, MADV_DONTDUMP);
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = mem,
		.userspace_addr = (uint64_t)(uintptr_t)ram,
	};
	xioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");
	t[2] = bench_now_ns();

	xioctl(vm_fd, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
	xioctl(vm_fd, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");
	if (!strcmp(mode, "thread")) {
		if (pthread_create(&reinject_thread, NULL, reinject_off, NULL)) {
			fprintf(stderr, "bench-startup-bare: pthread_create failed\n");
			return 1;
		}
		threaded = true;
	} else if (!strcmp(mode, "sync")) {
		reinject_off(NULL);
	}
	t[3] = bench_now_ns();

	vcpu = xioctl(vm_fd, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		fail("mmap kvm_run");
	set_cpuid(kvm, vcpu);
	t[4] = bench_now_ns();

	write_boot_area(ram, mem);
	entry = load_elf32(ram, mem, image, len);
	free(image);
	setup_regs(vcpu, entry);
	t[5] = bench_now_ns();

	while (status < 0) {
		uint8_t v;

		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fail("KVM_RUN");
		}
		if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT ||
		    run->io.size != 1 || run->io.count != 1 ||
		    run->io.data_offset > (uint64_t)run_size - 1) {
			fprintf(stderr, "bench-startup-bare: unexpected exit %u\n",
				run->exit_reason);
			return 1;
		}
		v = *((uint8_t *)run + run->io.data_offset);

		if (run->io.port == COM1) {
			if (write(STDOUT_FILENO, &v, 1) != 1)
				fail("write");
			if (!printed++)
				t[6] = bench_now_ns();
		} else if (run->io.port == DEBUG_EXIT) {
			status = ((v << 1) | 1) & 0xff;
		}
		/* Other ports: dropped, as on a bus with nothing there. */
	}
	if (threaded)
		pthread_join(reinject_thread, NULL);
	if (phases && !strcmp(phases, "1") && printed)
		fprintf(stderr,
			"RESULT phases bare exec_to_main_ms=%.3f vm_ms=%.3f ram_ms=%.3f irqchip_ms=%.3f vcpu_ms=%.3f load_ms=%.3f to_first_byte_ms=%.3f\n",
			t_exec ? ms(t_exec, t_main) : -1.0, ms(t[0], t[1]), ms(t[1], t[2]),
			ms(t[2], t[3]), ms(t[3], t[4]), ms(t[4], t[5]),
			t_exec ? ms(t_exec, t[6]) : -1.0);
	munmap(run, (size_t)run_size);
	munmap(map, mem + HUGE_2M);
	close(vcpu);
	close(vm_fd);
	close(kvm);
	return status;
}
