// SPDX-License-Identifier: MIT
/*
 * Where kvmkit's start-up time goes: assembles the machine that
 * kvmkit_machine_create() (and so `kvmkit run`) builds, in its order, by
 * calling the library's phases one at a time with a CLOCK_MONOTONIC
 * timestamp around each:
 *
 *   exec_to_main   $BENCH_T_EXEC_NS (set by bench-startup-exec just before
 *                  execve) -> main(): kernel exec + dynamic loader
 *   read           reading the guest image
 *   vm_create      kvmkit_vm_create(): /dev/kvm, KVM_CREATE_VM, limits,
 *                  TSS and identity map, the RAM slot
 *   irqchip        kvmkit_irqchip_create(), the machine's default: KVM's
 *                  PIC, IOAPIC and PIT; PIT reinjection is switched off on
 *                  a thread (src/arch/x86/irqchip_kernel.c)
 *   vcpu_create    kvmkit_vm_create_vcpu(): KVM_CREATE_VCPU, kvm_run mmap,
 *                  KVM_GET_SUPPORTED_CPUID + KVM_SET_CPUID2
 *   devices        UART on COM1 with its IRQ 4 line, debug-exit, report
 *                  device, fw_cfg, test device (src/vmm/machine.c's table)
 *   load           Multiboot (ELF32 with a header) or ELF64 boot, as the
 *                  machine picks: boot area, segments, registers
 *   first_exit     the first KVM_RUN until its exit has been handled
 *                  (kvmkit_vcpu_run_once(), on this thread)
 *   run            the rest of the guest, on kvmkit's vCPU thread
 *
 * to_first_exit is exec -> first exit handled, end to end. It also reports
 * the peak RSS (VmHWM) and how much of the guest's RAM is resident
 * (mincore() over the RAM mapping): the part of the RSS that is guest
 * memory rather than VMM overhead.
 *
 * usage: bench-startup-phases GUEST_ELF MEM_MIB
 * prints the guest's serial output, then
 *        RESULT phases kvmkit|kvmkit-mb exec_to_main_ms=.. ... guest_resident_kib=..
 * (kvmkit-mb for a Multiboot image)
 */
#include <sys/mman.h>

#include <kvmkit/kvmkit.h>

#include "bench_util.h"

static void die(const char *what)
{
	fprintf(stderr, "bench-startup-phases: %s: %s\n", what, kvmkit_strerror());
	exit(1);
}

static long status_kib(const char *key)
{
	char line[256];
	long v = -1;
	size_t klen = strlen(key);
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static uint64_t resident_kib(void *addr, uint64_t len)
{
	size_t pages = (size_t)(len / 4096);
	unsigned char *vec = malloc(pages);
	uint64_t n = 0;

	if (!vec || mincore(addr, (size_t)len, vec) < 0) {
		perror("mincore");
		exit(1);
	}
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return n * 4;
}

static double ms(uint64_t a, uint64_t b)
{
	return (double)(b - a) / 1e6;
}

/* The machine's devices (src/vmm/machine.c), in its order. */
struct devices {
	struct kvmkit_uart *uart;
	struct kvmkit_line *uart_line;
	struct kvmkit_debug_exit *dbg;
	struct kvmkit_report *rep;
	struct kvmkit_fwcfg *fwcfg;
	struct kvmkit_testdev *testdev;
};

static void create_devices(struct kvmkit_vm *vm, struct devices *d)
{
	if (kvmkit_uart_create(vm, KVMKIT_UART_COM1, STDOUT_FILENO, &d->uart) ||
	    kvmkit_line_open(kvmkit_vm_irqchip(vm), KVMKIT_UART_COM1_IRQ, &d->uart_line) ||
	    kvmkit_uart_connect_irq(d->uart, d->uart_line) ||
	    kvmkit_debug_exit_create(vm, KVMKIT_DEBUG_EXIT_PORT, &d->dbg) ||
	    kvmkit_report_create(vm, KVMKIT_REPORT_PORT, &d->rep) ||
	    kvmkit_fwcfg_create(vm, NULL, &d->fwcfg) || kvmkit_testdev_create(vm, &d->testdev))
		die("devices");
}

static void destroy_devices(struct devices *d)
{
	kvmkit_testdev_destroy(d->testdev);
	kvmkit_fwcfg_destroy(d->fwcfg);
	kvmkit_report_destroy(d->rep);
	kvmkit_debug_exit_destroy(d->dbg);
	kvmkit_uart_destroy(d->uart);
	kvmkit_line_close(d->uart_line);
}

int main(int argc, char **argv)
{
	uint64_t t_main = bench_now_ns(), t_exec = 0, t[10];
	struct kvmkit_irqchip_config icfg;
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm;
	struct kvmkit_vcpu *vcpu;
	struct devices dev = { 0 };
	struct kvmkit_stop_info info;
	const char *env = getenv("BENCH_T_EXEC_NS");
	uint64_t mem;
	void *image;
	size_t len;
	int first, r;

	if (argc != 3) {
		fprintf(stderr, "usage: %s GUEST_ELF MEM_MIB\n", argv[0]);
		return 2;
	}
	if (env)
		t_exec = bench_parse_u64("BENCH_T_EXEC_NS", env);
	mem = bench_parse_u64("MEM_MIB", argv[2]) << 20;

	t[0] = bench_now_ns();
	image = bench_read_file(argv[1], &len);
	t[1] = bench_now_ns();
	kvmkit_vm_config_init(&cfg);
	cfg.vcpus = 1;
	cfg.mem_size = mem;
	if (kvmkit_vm_create(&cfg, &vm))
		die("vm_create");
	t[2] = bench_now_ns();
	kvmkit_irqchip_config_init(&icfg);
	if (kvmkit_irqchip_create(vm, &icfg, NULL))
		die("irqchip");
	t[3] = bench_now_ns();
	if (kvmkit_vm_create_vcpu(vm, 0, &vcpu))
		die("vcpu_create");
	t[4] = bench_now_ns();
	create_devices(vm, &dev);
	t[5] = bench_now_ns();
	if (kvmkit_multiboot_detect(image, len))
		r = kvmkit_boot_multiboot(vm, image, len, argv[1], NULL, 0);
	else
		r = kvmkit_boot_elf64(vm, image, len);
	if (r)
		die("load");
	t[6] = bench_now_ns();
	first = kvmkit_vcpu_run_once(vcpu);
	if (first < 0)
		die("first exit");
	t[7] = bench_now_ns();
	if (kvmkit_vm_start(vm) || kvmkit_vm_wait(vm, 600000, &info))
		die("run");
	t[8] = bench_now_ns();
	if (info.reason != KVMKIT_STOP_GUEST_EXIT) {
		fprintf(stderr, "bench-startup-phases: guest stopped: %s (status %d)\n",
			kvmkit_stop_reason_name(info.reason), info.status);
		return 1;
	}

	/* Labelled by boot protocol: their guest RAM footprints differ. */
	printf("\nRESULT phases %s exec_to_main_ms=%.3f read_ms=%.3f vm_create_ms=%.3f irqchip_ms=%.3f vcpu_create_ms=%.3f devices_ms=%.3f load_ms=%.3f first_exit_ms=%.3f to_first_exit_ms=%.3f run_ms=%.3f first_exit_reason=%d status=%d hwm_kib=%ld guest_resident_kib=%llu\n",
	       kvmkit_multiboot_detect(image, len) ? "kvmkit-mb" : "kvmkit",
	       t_exec ? ms(t_exec, t_main) : -1.0, ms(t[0], t[1]), ms(t[1], t[2]), ms(t[2], t[3]),
	       ms(t[3], t[4]), ms(t[4], t[5]), ms(t[5], t[6]), ms(t[6], t[7]),
	       t_exec ? ms(t_exec, t[7]) : -1.0, ms(t[7], t[8]), first, info.status,
	       status_kib("VmHWM"),
	       (unsigned long long)resident_kib(kvmkit_vm_gpa_to_hva(vm, 0, mem), mem));
	fflush(stdout);
	/* As kvmkit_machine_destroy(): vCPU threads go before their devices. */
	kvmkit_vm_stop(vm);
	destroy_devices(&dev);
	kvmkit_vm_destroy(vm);
	free(image);
	return 0;
}
