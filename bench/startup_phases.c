// SPDX-License-Identifier: MIT
/*
 * Where kvmkit's start-up time goes: assembles the same machine `kvmkit run`
 * builds (VM, one vCPU, UART on COM1, debug-exit, report device, ELF64
 * guest) by calling the library's phases one at a time, with a
 * CLOCK_MONOTONIC timestamp around each:
 *
 *   exec_to_main   $BENCH_T_EXEC_NS (set by bench-startup-exec just before
 *                  execve) -> main(): kernel exec + dynamic loader
 *   read           reading the guest image
 *   open           opening /dev/kvm and checking the API version (a probe;
 *                  kvmkit_vm_create() opens it again, as `kvmkit run` does)
 *   vm_create      kvmkit_vm_create(): KVM_CREATE_VM, limits, TSS, RAM slot
 *   vcpu_create    kvmkit_vm_create_vcpu(): KVM_CREATE_VCPU, kvm_run mmap,
 *                  KVM_GET_SUPPORTED_CPUID + KVM_SET_CPUID2
 *   devices        UART, debug-exit and report device on the PIO bus
 *   load           kvmkit_boot_elf64(): boot area, segments, registers
 *   first_exit     the first KVM_RUN until its exit has been handled
 *                  (kvmkit_vcpu_run_once(), on this thread)
 *   run            the rest of the guest, on kvmkit's vCPU thread
 *
 * It also reports the peak RSS (VmHWM) and how much of the guest's RAM is
 * resident (mincore() over the RAM mapping): the part of the RSS that is
 * guest memory rather than VMM overhead.
 *
 * usage: bench-startup-phases GUEST_ELF MEM_MIB
 * prints the guest's serial output, then
 *        RESULT phases kvmkit exec_to_main_ms=.. ... guest_resident_kib=..
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

int main(int argc, char **argv)
{
	uint64_t t_main = bench_now_ns(), t_exec = 0, t[10];
	struct kvmkit_vm_config cfg;
	struct kvmkit_system *sys;
	struct kvmkit_vm *vm;
	struct kvmkit_vcpu *vcpu;
	struct kvmkit_uart *uart;
	struct kvmkit_debug_exit *dbg;
	struct kvmkit_report *rep;
	struct kvmkit_stop_info info;
	const char *env = getenv("BENCH_T_EXEC_NS");
	uint64_t mem;
	void *image;
	size_t len;
	int first;

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
	if (kvmkit_system_open(NULL, &sys))
		die("open");
	kvmkit_system_close(sys);
	t[2] = bench_now_ns();
	kvmkit_vm_config_init(&cfg);
	cfg.vcpus = 1;
	cfg.mem_size = mem;
	if (kvmkit_vm_create(&cfg, &vm))
		die("vm_create");
	t[3] = bench_now_ns();
	if (kvmkit_vm_create_vcpu(vm, 0, &vcpu))
		die("vcpu_create");
	t[4] = bench_now_ns();
	if (kvmkit_uart_create(vm, KVMKIT_UART_COM1, STDOUT_FILENO, &uart) ||
	    kvmkit_debug_exit_create(vm, KVMKIT_DEBUG_EXIT_PORT, &dbg) ||
	    kvmkit_report_create(vm, KVMKIT_REPORT_PORT, &rep))
		die("devices");
	t[5] = bench_now_ns();
	if (kvmkit_boot_elf64(vm, image, len))
		die("load");
	t[6] = bench_now_ns();
	first = kvmkit_vcpu_run_once(vcpu);
	if (first < 0)
		die("first exit");
	t[7] = bench_now_ns();
	if (kvmkit_vm_start(vm) || kvmkit_vm_wait(vm, 600000, &info))
		die("run");
	t[8] = bench_now_ns();
	if (info.reason != KVMKIT_STOP_GUEST_EXIT || info.status != 0) {
		fprintf(stderr, "bench-startup-phases: guest stopped: %s (status %d)\n",
			kvmkit_stop_reason_name(info.reason), info.status);
		return 1;
	}

	printf("RESULT phases kvmkit exec_to_main_ms=%.3f read_ms=%.3f open_ms=%.3f vm_create_ms=%.3f vcpu_create_ms=%.3f devices_ms=%.3f load_ms=%.3f first_exit_ms=%.3f to_first_exit_ms=%.3f run_ms=%.3f first_exit_reason=%d hwm_kib=%ld guest_resident_kib=%llu\n",
	       t_exec ? ms(t_exec, t_main) : -1.0, ms(t[0], t[1]), ms(t[1], t[2]), ms(t[2], t[3]),
	       ms(t[3], t[4]), ms(t[4], t[5]), ms(t[5], t[6]), ms(t[6], t[7]),
	       t_exec ? ms(t_exec, t[7]) : -1.0, ms(t[7], t[8]), first, status_kib("VmHWM"),
	       (unsigned long long)resident_kib(kvmkit_vm_gpa_to_hva(vm, 0, mem), mem));
	fflush(stdout);
	/* As kvmkit_machine_destroy(): vCPU threads go before their devices. */
	kvmkit_vm_stop(vm);
	kvmkit_report_destroy(rep);
	kvmkit_debug_exit_destroy(dbg);
	kvmkit_uart_destroy(uart);
	kvmkit_vm_destroy(vm);
	free(image);
	return 0;
}
