// SPDX-License-Identifier: MIT
/*
 * The arm64 lab (lab.h): a VM running lab.elf (tests/guest/arm64), driven
 * through its mailboxes, and the small harness the tests and the
 * benchmark share.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lab.h"

const char *guest_dir = A64_GUEST_DIR;
bool verbose;
char fail_msg[512];

void note_fail(int line, const char *cond, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (fail_msg[0])
		return;
	n = snprintf(fail_msg, sizeof(fail_msg), "line %d: %s: ", line, cond);
	va_start(ap, fmt);
	vsnprintf(fail_msg + n, sizeof(fail_msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int read_guest(const char *name, void **img, size_t *len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s.elf", guest_dir, name);
	return kvmkit_read_file(path, img, len);
}

volatile uint64_t *mbox(struct lab *l, unsigned int cpu, unsigned int off)
{
	return kvmkit_vm_gpa_to_hva(l->vm, A64_MBOX(cpu) + off, 8);
}

uint32_t count_of(struct lab *l, unsigned int cpu, uint32_t intid)
{
	volatile uint32_t *c = kvmkit_vm_gpa_to_hva(l->vm, A64_COUNT(cpu, intid), 4);

	return __atomic_load_n(c, __ATOMIC_ACQUIRE);
}

int wait_u64(volatile uint64_t *p, uint64_t want)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (__atomic_load_n(p, __ATOMIC_ACQUIRE) != want)
		if (now_ms() > end)
			return -1;
		else
			usleep(100);
	return 0;
}

int wait_count(struct lab *l, unsigned int cpu, uint32_t intid, uint32_t want)
{
	uint64_t end = now_ms() + WAIT_MS;

	if (verbose)
		fprintf(stderr, "  [%llu ms] vCPU %u: waiting for INTID %u count %u (now %u)\n",
			(unsigned long long)now_ms(), cpu, intid, want, count_of(l, cpu, intid));
	while (count_of(l, cpu, intid) < want)
		if (now_ms() > end)
			return -1;
		else
			usleep(100);
	return 0;
}

/* Runs a command on vCPU @cpu; -1 (and *res untouched) if it never ends. */
int lab_cmd(struct lab *l, unsigned int cpu, uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2,
	    uint64_t *res)
{
	uint64_t seq = *mbox(l, cpu, A64_MBOX_SEQ) + 1;

	if (verbose)
		fprintf(stderr, "  [%llu ms] vCPU %u: command %llu (0x%llx 0x%llx 0x%llx)\n",
			(unsigned long long)now_ms(), cpu, (unsigned long long)cmd,
			(unsigned long long)a0, (unsigned long long)a1, (unsigned long long)a2);

	*mbox(l, cpu, A64_MBOX_CMD) = cmd;
	*mbox(l, cpu, A64_MBOX_ARG0) = a0;
	*mbox(l, cpu, A64_MBOX_ARG1) = a1;
	*mbox(l, cpu, A64_MBOX_ARG2) = a2;
	__atomic_store_n(mbox(l, cpu, A64_MBOX_SEQ), seq, __ATOMIC_RELEASE);
	if (cmd == A64_CMD_SYSTEM_OFF || cmd == A64_CMD_SYSTEM_RESET || cmd == A64_CMD_CPU_OFF ||
	    cmd == A64_CMD_BAD_MMIO)
		return 0;
	if (wait_u64(mbox(l, cpu, A64_MBOX_DONE), seq))
		return -1;
	if (res)
		*res = *mbox(l, cpu, A64_MBOX_RESULT);
	return 0;
}

void lab_free(struct lab *l)
{
	if (l->uart && fail_msg[0]) {
		char out[2048];
		size_t n = kvmkit_uart_output(l->uart, out, sizeof(out) - 1);

		out[n] = 0;
		if (n)
			printf("  guest output:\n%s\n", out);
	}
	if (l->vm)
		kvmkit_vm_stop(l->vm);
	kvmkit_uart_destroy(l->uart);
	kvmkit_vm_destroy(l->vm);
	memset(l, 0, sizeof(*l));
}

/* VM, vGIC (@icfg or the defaults), @before, vCPUs, UART, lab.elf, start,
 * and vCPU 0's loop up. 0, or -1 with the failure noted. */
int lab_start(struct lab *l, unsigned int ncpus, const struct kvmkit_irqchip_config *icfg,
	      before_vcpus_fn before, void *arg)
{
	struct kvmkit_vm_config cfg;
	void *img = NULL;
	size_t len;

	memset(l, 0, sizeof(*l));
	l->ncpus = ncpus;
	kvmkit_vm_config_init(&cfg);
	cfg.vcpus = ncpus;
	cfg.mem_size = 64 << 20;
	CHECK(read_guest("lab", &img, &len) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vm_create(&cfg, &l->vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_create(l->vm, icfg, &l->chip) == 0, "%s", kvmkit_strerror());
	l->gic = kvmkit_irqchip_gic_version(l->chip);
	CHECK(l->gic == 2 || l->gic == 3, "version %d", l->gic);
	CHECK(!before || before(l, arg) == 0, "%s", kvmkit_strerror());
	for (unsigned int i = 0; i < ncpus; i++)
		CHECK(kvmkit_vm_create_vcpu(l->vm, i, NULL) == 0, "vcpu %u: %s", i,
		      kvmkit_strerror());
	CHECK(kvmkit_uart_create_mmio(l->vm, KVMKIT_ARM64_UART, -1, &l->uart) == 0, "%s",
	      kvmkit_strerror());
	CHECK(kvmkit_boot_elf64(l->vm, img, len) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vm_start(l->vm) == 0, "%s", kvmkit_strerror());
	CHECK(wait_u64(mbox(l, 0, A64_MBOX_ONLINE), A64_ONLINE_MAGIC) == 0, "vCPU 0 never came up");
	CHECK(lab_cmd(l, 0, A64_CMD_GIC_INIT, (uint64_t)l->gic, 0, 0, NULL) == 0,
	      "GIC init never finished");
	free(img);
	return 0;
out:
	free(img);
	return -1;
}

/* Powers the lab off through PSCI and checks the stop. */
int lab_power_off(struct lab *l)
{
	struct kvmkit_stop_info info;

	lab_cmd(l, 0, A64_CMD_SYSTEM_OFF, 0, 0, 0, NULL);
	CHECK(kvmkit_vm_wait(l->vm, WAIT_MS, &info) == 0, "%s", kvmkit_strerror());
	CHECK(info.reason == KVMKIT_STOP_GUEST_EXIT && info.status == 0, "stop %s (%d): %s",
	      kvmkit_stop_reason_name(info.reason), info.status, info.detail);
	return 0;
out:
	return -1;
}

uint64_t spi_target(struct lab *l, unsigned int cpu)
{
	return cpu | kvmkit_vcpu_mpidr(kvmkit_vm_vcpu(l->vm, cpu)) << 8;
}

/* vCPU @cpu started with PSCI CPU_ON from vCPU 0, its GIC interface on. */
int lab_bring_up(struct lab *l, unsigned int cpu)
{
	uint64_t aff = kvmkit_vcpu_mpidr(kvmkit_vm_vcpu(l->vm, cpu)) & KVMKIT_ARM64_MPIDR_AFF_MASK;
	uint64_t r = 1;

	CHECK(lab_cmd(l, 0, A64_CMD_CPU_ON, aff, cpu, 0, &r) == 0 && r == 0, "CPU_ON %u: %lld", cpu,
	      (long long)r);
	CHECK(wait_u64(mbox(l, cpu, A64_MBOX_ONLINE), A64_ONLINE_MAGIC) == 0, "vCPU %u never ran",
	      cpu);
	CHECK(lab_cmd(l, cpu, A64_CMD_GIC_INIT, (uint64_t)l->gic, 0, 0, NULL) == 0, "gic init");
	return 0;
out:
	return -1;
}
