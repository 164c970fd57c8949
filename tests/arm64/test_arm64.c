// SPDX-License-Identifier: MIT
/*
 * arm64 guest tests, run inside the emulated arm64 host (tests/hosts) in
 * one process, one case after the other: the vCPUs and PSCI, the vGIC
 * (created version, SPIs through KVM_IRQ_LINE and irqfds, level irqfds
 * with resample, irqfds bound before the vGIC's init), and the refusals.
 * Every interrupt count is what the guest's handler counted (arm64_abi.h).
 *
 * A small harness of its own: Debian has no static libcmocka, and these
 * binaries are linked statically for the emulated host.
 *
 * usage: test-arm64 [-v] [--expect-gic 2|3] [--only NAME] [GUEST_DIR]
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <kvmkit/kvmkit.h>
#if KVMK_HAVE_LIBFDT
#include <libfdt.h>
#endif

#include "arm64_abi.h"

#define WAIT_MS 30000 /* a guest that does not answer fails the case */
#define EDGE_ROUNDS 32
#define LEVEL_ROUNDS 32

static const char *guest_dir = A64_GUEST_DIR;
static int expect_gic;
static int failures;
static bool verbose; /* -v: each command and wait on stderr */
static char fail_msg[512];

/* A failed check records the first message and returns from the case. */
#define CHECK(cond, ...)                                         \
	do {                                                     \
		if (!(cond)) {                                   \
			note_fail(__LINE__, #cond, __VA_ARGS__); \
			goto out;                                \
		}                                                \
	} while (0)

static void __attribute__((format(printf, 3, 4)))
note_fail(int line, const char *cond, const char *fmt, ...)
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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int read_guest(const char *name, void **img, size_t *len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s.elf", guest_dir, name);
	return kvmkit_read_file(path, img, len);
}

/* ---- the lab: a VM running lab.elf, driven through its mailboxes -------- */

struct lab {
	struct kvmkit_vm *vm;
	struct kvmkit_irqchip *chip;
	struct kvmkit_uart *uart;
	unsigned int ncpus;
	int gic;
};

typedef int (*before_vcpus_fn)(struct lab *l, void *arg);

static volatile uint64_t *mbox(struct lab *l, unsigned int cpu, unsigned int off)
{
	return kvmkit_vm_gpa_to_hva(l->vm, A64_MBOX(cpu) + off, 8);
}

static uint32_t count_of(struct lab *l, unsigned int cpu, uint32_t intid)
{
	volatile uint32_t *c = kvmkit_vm_gpa_to_hva(l->vm, A64_COUNT(cpu, intid), 4);

	return __atomic_load_n(c, __ATOMIC_ACQUIRE);
}

static int wait_u64(volatile uint64_t *p, uint64_t want)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (__atomic_load_n(p, __ATOMIC_ACQUIRE) != want)
		if (now_ms() > end)
			return -1;
		else
			usleep(100);
	return 0;
}

static int wait_count(struct lab *l, unsigned int cpu, uint32_t intid, uint32_t want)
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
static int lab_cmd(struct lab *l, unsigned int cpu, uint64_t cmd, uint64_t a0, uint64_t a1,
		   uint64_t a2, uint64_t *res)
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
	if (cmd == A64_CMD_SYSTEM_OFF || cmd == A64_CMD_SYSTEM_RESET)
		return 0;
	if (wait_u64(mbox(l, cpu, A64_MBOX_DONE), seq))
		return -1;
	if (res)
		*res = *mbox(l, cpu, A64_MBOX_RESULT);
	return 0;
}

static void lab_free(struct lab *l)
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
static int lab_start(struct lab *l, unsigned int ncpus, const struct kvmkit_irqchip_config *icfg,
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
static int lab_power_off(struct lab *l)
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

static uint64_t spi_target(struct lab *l, unsigned int cpu)
{
	return cpu | kvmkit_vcpu_mpidr(kvmkit_vm_vcpu(l->vm, cpu)) << 8;
}

/* ---- cases ---------------------------------------------------------------- */

/* The machine (vGIC, UART on MMIO) boots hello.elf: its line on the UART,
 * then PSCI SYSTEM_OFF: a guest exit with status 0. */
static void t_hello(void)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_stop_info info;
	char out[512];
	void *img = NULL;
	size_t len, n;

	CHECK(read_guest("hello", &img, &len) == 0, "%s", kvmkit_strerror());
	kvmkit_machine_config_init(&cfg);
	cfg.vm.mem_size = 64 << 20;
	cfg.kernel = img;
	cfg.kernel_len = len;
	CHECK(kvmkit_machine_create(&cfg, &m) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_machine_run(m, WAIT_MS, &info) == 0, "%s", kvmkit_strerror());
	n = kvmkit_uart_output(kvmkit_machine_uart(m), out, sizeof(out) - 1);
	out[n] = 0;
	CHECK(info.reason == KVMKIT_STOP_GUEST_EXIT && info.status == 0, "stop %s: %s (output %s)",
	      kvmkit_stop_reason_name(info.reason), info.detail, out);
	CHECK(strstr(out, "hello from vCPU 0 of 1, PSCI 0x"), "output: %s", out);
out:
	kvmkit_machine_destroy(m);
	free(img);
}

/* PSCI SYSTEM_RESET stops the VM as a guest reset. */
static void t_psci_reset(void)
{
	struct kvmkit_stop_info info;
	struct lab l;
	uint64_t v = 0;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	/* KVM's PSCI is 0.2 or later (major in bits 31:16). */
	CHECK(lab_cmd(&l, 0, A64_CMD_PSCI_VERSION, 0, 0, 0, &v) == 0, "no answer");
	CHECK((v >> 16) >= 1 || (v & 0xffff) >= 2, "PSCI version 0x%llx", (unsigned long long)v);
	lab_cmd(&l, 0, A64_CMD_SYSTEM_RESET, 0, 0, 0, NULL);
	CHECK(kvmkit_vm_wait(l.vm, WAIT_MS, &info) == 0, "%s", kvmkit_strerror());
	CHECK(info.reason == KVMKIT_STOP_GUEST_RESET, "stop %s: %s",
	      kvmkit_stop_reason_name(info.reason), info.detail);
out:
	lab_free(&l);
}

/* The vGIC version created, and what the guest's distributor says. */
static void t_gic_version(void)
{
	struct lab l;
	uint64_t typer = 0;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	printf("  created GICv%d\n", l.gic);
	CHECK(!expect_gic || l.gic == expect_gic, "GICv%d created, GICv%d expected", l.gic,
	      expect_gic);
	/* GICD_TYPER.ITLinesNumber: (256 / 32) - 1 for the default 256. */
	CHECK(lab_cmd(&l, 0, A64_CMD_GICD_READ, 0x4, 0, 0, &typer) == 0, "no answer");
	CHECK((typer & 0x1f) == 7, "GICD_TYPER 0x%llx", (unsigned long long)typer);
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
}

/* Edge SPI through KVM_IRQ_LINE (kvmkit_irq_pulse): each pulse counted once. */
static void t_spi_line_edge(void)
{
	struct kvmkit_gsi_stats st;
	struct kvmkit_irq_status s;
	struct lab l;
	uint32_t intid;
	int gsi;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	gsi = kvmkit_gsi_alloc_line(l.chip);
	CHECK(gsi == 16, "first device GSI %d", gsi);
	intid = (uint32_t)gsi + KVMKIT_ARM64_SPI_BASE;
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(&l, 0), NULL) == 0, "spi");
	for (uint32_t i = 1; i <= EDGE_ROUNDS; i++) {
		CHECK(kvmkit_irq_pulse(l.chip, (uint32_t)gsi, &s) == 0, "%s", kvmkit_strerror());
		CHECK(s.result == KVMKIT_IRQ_DELIVERED, "status %s",
		      kvmkit_irq_result_name(s.result));
		CHECK(wait_count(&l, 0, intid, i) == 0, "round %u: count %u", i,
		      count_of(&l, 0, intid));
		CHECK(count_of(&l, 0, intid) == i, "round %u: count %u", i, count_of(&l, 0, intid));
	}
	/* A round trip later nothing more arrived. */
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, intid) == EDGE_ROUNDS, "count %u", count_of(&l, 0, intid));
	CHECK(kvmkit_irq_gsi_stats(l.chip, (uint32_t)gsi, &st) == 0 && st.asserts == EDGE_ROUNDS,
	      "asserts %llu", (unsigned long long)st.asserts);
	/* A masked SPI is not taken. */
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_DISABLE, intid, 0, 0, NULL) == 0, "disable");
	CHECK(kvmkit_irq_pulse(l.chip, (uint32_t)gsi, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, intid) == EDGE_ROUNDS, "count %u", count_of(&l, 0, intid));
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
}

struct early_irqfd {
	int gsi;
	int fd;
};

/* Before any vCPU: KVM would refuse the irqfd (-EAGAIN), kvmkit queues it. */
static int bind_early(struct lab *l, void *arg)
{
	struct early_irqfd *e = arg;

	e->gsi = kvmkit_gsi_alloc_line(l->chip);
	if (e->gsi < 0)
		return -1;
	return kvmkit_irqfd_bind(l->chip, (uint32_t)e->gsi, e->fd, -1);
}

/* Edge SPI through an irqfd bound before the vGIC's init. */
static void t_spi_irqfd_edge_early(void)
{
	struct early_irqfd e = { -1, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
	struct lab l = { 0 };
	uint32_t intid;

	CHECK(e.fd >= 0, "eventfd: %s", strerror(errno));
	CHECK(lab_start(&l, 1, NULL, bind_early, &e) == 0, "lab");
	intid = (uint32_t)e.gsi + KVMKIT_ARM64_SPI_BASE;
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(&l, 0), NULL) == 0, "spi");
	for (uint32_t i = 1; i <= EDGE_ROUNDS; i++) {
		CHECK(kvmkit_irqfd_signal(l.chip, (uint32_t)e.gsi, e.fd) == 0, "%s",
		      kvmkit_strerror());
		CHECK(wait_count(&l, 0, intid, i) == 0, "round %u: count %u", i,
		      count_of(&l, 0, intid));
		CHECK(count_of(&l, 0, intid) == i, "round %u: count %u", i, count_of(&l, 0, intid));
	}
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, intid) == EDGE_ROUNDS, "count %u", count_of(&l, 0, intid));
	CHECK(kvmkit_irqfd_unbind(l.chip, (uint32_t)e.gsi, e.fd) == 0, "%s", kvmkit_strerror());
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
	if (e.fd >= 0)
		close(e.fd);
}

#define REROUTED_GSI 20
#define REROUTED_PIN 21

/* Before any vCPU: GSI 20 to pin 21 (KVM's init would install its own
 * table over this one), and an irqfd on it (queued). */
static int reroute_early(struct lab *l, void *arg)
{
	int *fd = arg;
	int r = kvmkit_irq_route_remove(l->chip, REROUTED_GSI);

	if (!r)
		r = kvmkit_irq_route_irqchip(l->chip, REROUTED_GSI, 0, REROUTED_PIN);
	if (!r)
		r = kvmkit_irq_routes_commit(l->chip);
	return r ? r : kvmkit_irqfd_bind(l->chip, REROUTED_GSI, *fd, -1);
}

/* A table committed before the vGIC's init is the one in force after it,
 * and a GSI's line (KVM_IRQ_LINE, raw INTID) and irqfd (routed by KVM)
 * reach the same SPI: INTID 53, never 52. */
static void t_routes_before_init(void)
{
	const uint32_t intid = REROUTED_PIN + KVMKIT_ARM64_SPI_BASE;
	const uint32_t unrouted = REROUTED_GSI + KVMKIT_ARM64_SPI_BASE;
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct lab l = { 0 };

	CHECK(fd >= 0, "eventfd: %s", strerror(errno));
	CHECK(lab_start(&l, 1, NULL, reroute_early, &fd) == 0, "lab");
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(&l, 0), NULL) == 0, "spi");
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, unrouted, 1, spi_target(&l, 0), NULL) == 0, "spi");
	CHECK(kvmkit_irqfd_signal(l.chip, REROUTED_GSI, fd) == 0, "%s", kvmkit_strerror());
	CHECK(wait_count(&l, 0, intid, 1) == 0, "irqfd: INTID %u %u, INTID %u %u", intid,
	      count_of(&l, 0, intid), unrouted, count_of(&l, 0, unrouted));
	CHECK(kvmkit_irq_pulse(l.chip, REROUTED_GSI, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(wait_count(&l, 0, intid, 2) == 0, "line: INTID %u %u, INTID %u %u", intid,
	      count_of(&l, 0, intid), unrouted, count_of(&l, 0, unrouted));
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, intid) == 2 && count_of(&l, 0, unrouted) == 0,
	      "INTID %u %u, INTID %u %u", intid, count_of(&l, 0, intid), unrouted,
	      count_of(&l, 0, unrouted));
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
	if (fd >= 0)
		close(fd);
}

static int efd_wait(int fd, uint64_t *v)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, WAIT_MS) != 1)
		return -1;
	return read(fd, v, 8) == 8 ? 0 : -1;
}

/* Level SPI through an irqfd with resample: one interrupt per signal, and
 * each EOI reaches the resamplefd once. */
static void t_spi_irqfd_level_resample(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct lab l = { 0 };
	uint64_t resamples = 0, v;
	uint32_t intid;
	int gsi;

	CHECK(fd >= 0 && rfd >= 0, "eventfd: %s", strerror(errno));
	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	gsi = kvmkit_gsi_alloc_line(l.chip);
	CHECK(gsi >= 16, "gsi %d", gsi);
	intid = (uint32_t)gsi + KVMKIT_ARM64_SPI_BASE;
	CHECK(kvmkit_irqfd_bind(l.chip, (uint32_t)gsi, fd, rfd) == 0, "%s", kvmkit_strerror());
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 0, spi_target(&l, 0), NULL) == 0, "spi");
	for (uint32_t i = 1; i <= LEVEL_ROUNDS; i++) {
		CHECK(kvmkit_irqfd_signal(l.chip, (uint32_t)gsi, fd) == 0, "%s", kvmkit_strerror());
		CHECK(wait_count(&l, 0, intid, i) == 0, "round %u: count %u", i,
		      count_of(&l, 0, intid));
		CHECK(efd_wait(rfd, &v) == 0, "round %u: no resample", i);
		resamples += v;
		CHECK(count_of(&l, 0, intid) == i, "round %u: count %u", i, count_of(&l, 0, intid));
	}
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, intid) == LEVEL_ROUNDS, "count %u", count_of(&l, 0, intid));
	CHECK(resamples == LEVEL_ROUNDS, "resamples %llu", (unsigned long long)resamples);
	CHECK(kvmkit_irqfd_unbind(l.chip, (uint32_t)gsi, fd) == 0, "%s", kvmkit_strerror());
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
	if (fd >= 0)
		close(fd);
	if (rfd >= 0)
		close(rfd);
}

/* vCPU 1 starts powered off; vCPU 0 starts it with PSCI CPU_ON; its MPIDR
 * is the one kvmkit reports; an SPI routed to it is taken there only. */
static void t_smp_psci(void)
{
	struct kvmkit_vcpu *v1;
	struct lab l;
	uint64_t r = 1, mpidr = 0, aff;
	uint32_t intid;
	int gsi;

	CHECK(lab_start(&l, 2, NULL, NULL, NULL) == 0, "lab");
	v1 = kvmkit_vm_vcpu(l.vm, 1);
	CHECK(*mbox(&l, 1, A64_MBOX_ONLINE) == 0, "vCPU 1 ran before CPU_ON");
	aff = kvmkit_vcpu_mpidr(v1) & KVMKIT_ARM64_MPIDR_AFF_MASK;
	CHECK(aff == 1, "vCPU 1's affinity 0x%llx", (unsigned long long)aff);
	CHECK(lab_cmd(&l, 0, A64_CMD_CPU_ON, aff, 1, 0, &r) == 0, "no answer");
	CHECK(r == 0, "CPU_ON returned %lld", (long long)r);
	CHECK(wait_u64(mbox(&l, 1, A64_MBOX_ONLINE), A64_ONLINE_MAGIC) == 0, "vCPU 1 never ran");
	CHECK(lab_cmd(&l, 1, A64_CMD_MPIDR, 0, 0, 0, &mpidr) == 0, "no answer");
	CHECK(mpidr == kvmkit_vcpu_mpidr(v1), "guest MPIDR 0x%llx, kvmkit 0x%llx",
	      (unsigned long long)mpidr, (unsigned long long)kvmkit_vcpu_mpidr(v1));
	/* PSCI: ALREADY_ON (-4) for a running vCPU. */
	CHECK(lab_cmd(&l, 0, A64_CMD_CPU_ON, aff, 1, 0, &r) == 0, "no answer");
	CHECK((int64_t)r == -4, "second CPU_ON returned %lld", (long long)r);
	CHECK(lab_cmd(&l, 1, A64_CMD_GIC_INIT, (uint64_t)l.gic, 0, 0, NULL) == 0, "gic init 1");
	gsi = kvmkit_gsi_alloc_line(l.chip);
	intid = (uint32_t)gsi + KVMKIT_ARM64_SPI_BASE;
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(&l, 1), NULL) == 0, "spi");
	CHECK(kvmkit_irq_pulse(l.chip, (uint32_t)gsi, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(wait_count(&l, 1, intid, 1) == 0, "vCPU 1 took nothing");
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 1, intid) == 1 && count_of(&l, 0, intid) == 0, "counts %u/%u",
	      count_of(&l, 0, intid), count_of(&l, 1, intid));
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
}

/* A forced version: the host's own is created; the other one, which
 * neither emulated host has (QEMU's GICv3 has no GICv2 compatibility), is
 * refused as unsupported. Needs --expect-gic. */
static void t_gic_forced(void)
{
	struct kvmkit_irqchip_config icfg;
	struct kvmkit_vm_config cfg;
	struct kvmkit_irqchip *chip;
	struct kvmkit_vm *vm = NULL;
	int r;

	if (!expect_gic) {
		printf("  (no --expect-gic: nothing to compare)\n");
		return;
	}
	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 16 << 20;
	kvmkit_irqchip_config_init(&icfg);
	icfg.gic_version = expect_gic == 3 ? KVMKIT_GIC_V2 : KVMKIT_GIC_V3;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	r = kvmkit_irqchip_create(vm, &icfg, &chip);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_UNSUPPORTED, "GICv%u: %d %s",
	      icfg.gic_version, r, kvmkit_strerror());
	printf("  forced GICv%u refused: %s\n", icfg.gic_version, kvmkit_strerror());
	kvmkit_vm_destroy(vm);
	vm = NULL;
	icfg.gic_version = (unsigned int)expect_gic;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_create(vm, &icfg, &chip) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_gic_version(chip) == expect_gic, "GICv%d",
	      kvmkit_irqchip_gic_version(chip));
out:
	kvmkit_vm_destroy(vm);
}

#define PPI_INTID 20 /* not one a KVM device owns (timers, PMU) */
#define PPI_ROUNDS 16
#define SGI_INTID 5
#define SGI_ROUNDS 16
#define VTIMER_ROUNDS 8

/* vCPU @cpu started with PSCI CPU_ON from vCPU 0, its GIC interface on. */
static int lab_bring_up(struct lab *l, unsigned int cpu)
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

/* A PPI through KVM_IRQ_LINE reaches the vCPU it names. KVM keeps PPIs
 * level-sensitive: the line is held until the guest took it (its handler
 * disables the PPI, as a driver quiets its source), then lowered and the
 * PPI enabled again, so each assertion is counted once. */
static void t_ppi_line(void)
{
	struct lab l;

	CHECK(lab_start(&l, 2, NULL, NULL, NULL) == 0, "lab");
	CHECK(lab_bring_up(&l, 1) == 0, "bring-up");
	CHECK(lab_cmd(&l, 0, A64_CMD_PRIVATE_ENABLE, PPI_INTID, 2, 0, NULL) == 0, "ppi");
	for (uint32_t i = 1; i <= PPI_ROUNDS; i++) {
		CHECK(lab_cmd(&l, 1, A64_CMD_PRIVATE_ENABLE, PPI_INTID, 2, 0, NULL) == 0, "ppi");
		CHECK(kvmkit_irqchip_ppi(l.chip, 1, PPI_INTID, true) == 0, "%s", kvmkit_strerror());
		CHECK(wait_count(&l, 1, PPI_INTID, i) == 0, "round %u: count %u", i,
		      count_of(&l, 1, PPI_INTID));
		CHECK(kvmkit_irqchip_ppi(l.chip, 1, PPI_INTID, false) == 0, "%s",
		      kvmkit_strerror());
	}
	CHECK(lab_cmd(&l, 1, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 1, PPI_INTID) == PPI_ROUNDS && count_of(&l, 0, PPI_INTID) == 0,
	      "counts %u/%u", count_of(&l, 0, PPI_INTID), count_of(&l, 1, PPI_INTID));
	CHECK(kvmkit_irqchip_ppi(l.chip, 1, 32, true) == -EINVAL, "INTID 32 accepted");
	CHECK(kvmkit_irqchip_ppi(l.chip, 2, PPI_INTID, true) == -EINVAL, "vCPU 2 accepted");
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
}

/* SGIs from vCPU 0 to vCPU 1 (ICC_SGI1R_EL1 or GICD_SGIR), each counted. */
static void t_sgi(void)
{
	struct lab l;
	uint64_t mpidr1;

	CHECK(lab_start(&l, 2, NULL, NULL, NULL) == 0, "lab");
	CHECK(lab_bring_up(&l, 1) == 0, "bring-up");
	mpidr1 = kvmkit_vcpu_mpidr(kvmkit_vm_vcpu(l.vm, 1));
	CHECK(lab_cmd(&l, 1, A64_CMD_PRIVATE_ENABLE, SGI_INTID, 1, 0, NULL) == 0, "sgi");
	CHECK(lab_cmd(&l, 0, A64_CMD_PRIVATE_ENABLE, SGI_INTID, 1, 0, NULL) == 0, "sgi");
	for (uint32_t i = 1; i <= SGI_ROUNDS; i++) {
		CHECK(lab_cmd(&l, 0, A64_CMD_SGI, SGI_INTID, 1, mpidr1, NULL) == 0, "send");
		CHECK(wait_count(&l, 1, SGI_INTID, i) == 0, "round %u: count %u", i,
		      count_of(&l, 1, SGI_INTID));
	}
	CHECK(lab_cmd(&l, 1, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 1, SGI_INTID) == SGI_ROUNDS && count_of(&l, 0, SGI_INTID) == 0,
	      "counts %u/%u", count_of(&l, 0, SGI_INTID), count_of(&l, 1, SGI_INTID));
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
}

/* The virtual timer's PPI (KVM's own device), armed one shot at a time. */
static void t_vtimer(void)
{
	struct lab l;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	for (uint32_t i = 1; i <= VTIMER_ROUNDS; i++) {
		CHECK(lab_cmd(&l, 0, A64_CMD_VTIMER, 10000, 0, 0, NULL) == 0, "arm");
		CHECK(wait_count(&l, 0, A64_VTIMER_INTID, i) == 0, "round %u: count %u", i,
		      count_of(&l, 0, A64_VTIMER_INTID));
	}
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, A64_VTIMER_INTID) == VTIMER_ROUNDS, "count %u",
	      count_of(&l, 0, A64_VTIMER_INTID));
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
}

#define ITS_DEV 5
#define ITS_EVENT 3
#define ITS_LPI (A64_LPI_BASE + 40)
#define ITS_VEC_EVENT 4
#define ITS_VEC_LPI (A64_LPI_BASE + 41)
#define ITS_ROUNDS 16

/* MSIs through the ITS, with a device id: one-shot (KVM_SIGNAL_MSI), and
 * an MSI vector handle (an MSI route + irqfd); each LPI counted. An event
 * the guest did not map reads MASKED (KVM: blocked). On a GICv2 there is
 * no ITS and MSIs are refused as unsupported. */
static void t_its_msi(void)
{
	struct kvmkit_irq_status st;
	struct kvmkit_gsi_stats gs;
	struct kvmkit_msi *vec = NULL;
	struct lab l;
	uint64_t r = 1;
	int e;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	if (l.gic == 2) {
		CHECK(!kvmkit_irqchip_has_its(l.chip), "an ITS with a GICv2");
		e = kvmkit_signal_msi(l.chip, KVMKIT_ARM64_GITS_TRANSLATER, 0, -1, NULL);
		CHECK(e == -ENOTSUP && kvmkit_last_error()->kind == KVMKIT_ERR_UNSUPPORTED,
		      "MSI on GICv2: %d %s", e, kvmkit_strerror());
		printf("  GICv2: no ITS, MSIs refused: %s\n", kvmkit_strerror());
		CHECK(lab_power_off(&l) == 0, "power off");
		goto out;
	}
	CHECK(kvmkit_irqchip_has_its(l.chip), "the GICv3 host has no ITS");
	CHECK(kvmkit_vm_check_cap(l.vm, KVM_CAP_MSI_DEVID) > 0, "no KVM_CAP_MSI_DEVID");
	CHECK(lab_cmd(&l, 0, A64_CMD_LPI_INIT, 0, 0, 0, NULL) == 0, "lpi init");
	CHECK(lab_cmd(&l, 0, A64_CMD_ITS_INIT, 0, 0, 0, NULL) == 0, "its init");
	CHECK(lab_cmd(&l, 0, A64_CMD_ITS_MAP, ITS_DEV, ITS_EVENT, ITS_LPI, &r) == 0 && r == 0,
	      "its map: %llu", (unsigned long long)r);
	for (uint32_t i = 1; i <= ITS_ROUNDS; i++) {
		CHECK(kvmkit_signal_msi(l.chip, KVMKIT_ARM64_GITS_TRANSLATER, ITS_EVENT, ITS_DEV,
					&st) == 0,
		      "%s", kvmkit_strerror());
		CHECK(st.result == KVMKIT_IRQ_DELIVERED, "status %s",
		      kvmkit_irq_result_name(st.result));
		CHECK(wait_count(&l, 0, ITS_LPI, i) == 0, "round %u: count %u", i,
		      count_of(&l, 0, ITS_LPI));
	}
	/* Not mapped: KVM drops it and says so. */
	CHECK(kvmkit_signal_msi(l.chip, KVMKIT_ARM64_GITS_TRANSLATER, 9, ITS_DEV, &st) == 0, "%s",
	      kvmkit_strerror());
	CHECK(st.result == KVMKIT_IRQ_MASKED, "unmapped event: %s",
	      kvmkit_irq_result_name(st.result));

	/* A device's vector: MSI route with the device id, irqfd, signals. */
	CHECK(lab_cmd(&l, 0, A64_CMD_ITS_MAP, ITS_DEV, ITS_VEC_EVENT, ITS_VEC_LPI, &r) == 0 &&
		      r == 0,
	      "its map");
	CHECK(kvmkit_msi_open(l.chip, &vec) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_msi_configure(vec, KVMKIT_ARM64_GITS_TRANSLATER, ITS_VEC_EVENT, ITS_DEV) == 0,
	      "%s", kvmkit_strerror());
	for (uint32_t i = 1; i <= ITS_ROUNDS; i++) {
		CHECK(kvmkit_msi_signal(vec) == 0, "%s", kvmkit_strerror());
		CHECK(wait_count(&l, 0, ITS_VEC_LPI, i) == 0, "vector round %u: count %u", i,
		      count_of(&l, 0, ITS_VEC_LPI));
	}
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, ITS_LPI) == ITS_ROUNDS && count_of(&l, 0, ITS_VEC_LPI) == ITS_ROUNDS,
	      "counts %u/%u", count_of(&l, 0, ITS_LPI), count_of(&l, 0, ITS_VEC_LPI));
	CHECK(kvmkit_irq_gsi_stats(l.chip, kvmkit_msi_gsi(vec), &gs) == 0 &&
		      gs.irqfd_signals == ITS_ROUNDS,
	      "vector signals %llu", (unsigned long long)gs.irqfd_signals);
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	kvmkit_msi_close(vec);
	lab_free(&l);
}

/* The device tree of a live VM: its vCPUs' affinities, its vGIC version.
 * (tests/unit/test_arm64_fdt.c has dtc decompile the whole tree.) */
static void t_fdt(void)
{
#if KVMK_HAVE_LIBFDT
	struct kvmkit_arm64_platform p;
	const fdt32_t *reg;
	struct lab l;
	void *dtb = NULL;
	size_t len;
	int node, n;

	CHECK(lab_start(&l, 2, NULL, NULL, NULL) == 0, "lab");
	CHECK(kvmkit_arm64_platform_of(l.vm, &p) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_arm64_fdt_build(&p, &dtb, &len) == 0, "%s", kvmkit_strerror());
	CHECK(fdt_check_header(dtb) == 0 && fdt_totalsize(dtb) == len, "bad blob");
	node = fdt_path_offset(dtb, "/cpus/cpu@1");
	CHECK(node >= 0, "no /cpus/cpu@1: %s", fdt_strerror(node));
	reg = fdt_getprop(dtb, node, "reg", &n);
	CHECK(reg && n == 4 &&
		      fdt32_to_cpu(*reg) == (kvmkit_vcpu_mpidr(kvmkit_vm_vcpu(l.vm, 1)) &
					     KVMKIT_ARM64_MPIDR_AFF_MASK),
	      "cpu@1 reg");
	node = fdt_path_offset(dtb, "/intc@8000000/msi-controller@8080000");
	CHECK((node >= 0) == kvmkit_irqchip_has_its(l.chip), "ITS node %d", node);
	node = fdt_path_offset(dtb, "/intc@8000000");
	CHECK(node >= 0 && fdt_node_check_compatible(dtb, node,
						     l.gic == 3 ? "arm,gic-v3" :
								  "arm,cortex-a15-gic") == 0,
	      "GIC node for GICv%d", l.gic);
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	free(dtb);
	lab_free(&l);
#else
	printf("  (built without libfdt)\n");
#endif
}

/* A 64-byte arm64 Image header (booting.rst) followed by @len - 64 bytes. */
static uint8_t *fake_image(size_t len, uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	uint8_t *b = calloc(1, len);

	if (!b)
		return NULL;
	memcpy(b + 8, &text_offset, 8);
	memcpy(b + 16, &image_size, 8);
	memcpy(b + 24, &flags, 8);
	memcpy(b + 0x38, "ARM\x64", 4);
	return b;
}

/* The Linux loader checks the image and the room before writing. */
static void t_linux_refusals(void)
{
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm = NULL;
	uint8_t *img = NULL;
	int r;

	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 16 << 20;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_create(vm, NULL, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vm_create_vcpu(vm, 0, NULL) == 0, "%s", kvmkit_strerror());
	img = fake_image(4096, 0, 8192, 2 /* LE, 4K pages */);
	CHECK(img, "alloc");
	CHECK(kvmkit_arm64_image_detect(img, 4096) && !kvmkit_arm64_image_detect(img, 63),
	      "detect");
	r = kvmkit_boot_arm64_linux(vm, img, 63, NULL, 0, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT, "truncated: %d", r);
	img[0x38] = 'X';
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT, "bad magic: %d", r);
	free(img);
	img = fake_image(4096, 0, 8192, 1 /* big-endian */);
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && strstr(kvmkit_strerror(), "big-endian"), "BE: %s", kvmkit_strerror());
	free(img);
	img = fake_image(4096, 0, 8192, 3 << 1 /* 64K pages */);
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && strstr(kvmkit_strerror(), "64K"), "64K: %s", kvmkit_strerror());
	free(img);
	img = fake_image(4096, 0, 1ull << 40, 2); /* image_size past RAM */
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT, "huge: %d", r);
	free(img);
	img = fake_image(4096, 0x1001, 8192, 2); /* unaligned text_offset */
	r = kvmkit_boot_arm64_linux(vm, img, 4096, NULL, 0, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT, "offset: %d", r);
	free(img);
	/* An initrd that leaves no room below the device tree's 2 MiB. */
	img = fake_image(4096, 0, 8192, 2);
	r = kvmkit_boot_arm64_linux(vm, img, 4096, img, 15 << 20, NULL);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_PARAM &&
		      strstr(kvmkit_strerror(), "initrd"),
	      "initrd: %d %s", r, kvmkit_strerror());
	/* And one that fits: loaded, vCPU 0 at the image, X0 at the DTB. */
	CHECK(kvmkit_boot_arm64_linux(vm, img, 4096, img, 4096, "console=ttyS0") == 0, "%s",
	      kvmkit_strerror());
out:
	free(img);
	kvmkit_vm_destroy(vm);
}

/* What kvmkit refuses, with the error it records. */
static void t_refusals(void)
{
	struct kvmkit_irqchip_config icfg;
	struct kvmkit_vm_config cfg;
	struct kvmkit_irqchip *chip;
	struct kvmkit_vm *vm = NULL;
	int r;

	kvmkit_vm_config_init(&cfg);
	cfg.vcpus = 2;
	cfg.mem_size = 16 << 20;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	kvmkit_irqchip_config_init(&icfg);
	icfg.gic_nr_irqs = 100;
	r = kvmkit_irqchip_create(vm, &icfg, &chip);
	CHECK(r == -EINVAL && kvmkit_last_error()->kind == KVMKIT_ERR_PARAM &&
		      strstr(kvmkit_strerror(), "gic_nr_irqs"),
	      "nr_irqs 100: %d %s", r, kvmkit_strerror());
	icfg.gic_nr_irqs = 1056;
	CHECK(kvmkit_irqchip_create(vm, &icfg, &chip) == -EINVAL, "nr_irqs 1056 accepted");
	icfg.gic_nr_irqs = 32;
	CHECK(kvmkit_irqchip_create(vm, &icfg, &chip) == -EINVAL, "nr_irqs 32 accepted");
	icfg.gic_nr_irqs = 256;
	icfg.gic_version = 4;
	CHECK(kvmkit_irqchip_create(vm, &icfg, &chip) == -EINVAL, "version 4 accepted");
	kvmkit_vm_destroy(vm);
	vm = NULL;

	/* A GICv2 serves 8 vCPUs at most. A GICv2-only host says so itself
	 * (KVM_CAP_MAX_VCPUS is 8 there): then kvmkit_vm_create refuses. */
	cfg.vcpus = 9;
	if (kvmkit_vm_create(&cfg, &vm) == 0) {
		icfg.gic_version = KVMKIT_GIC_V2;
		r = kvmkit_irqchip_create(vm, &icfg, &chip);
		CHECK(r == -EINVAL && strstr(kvmkit_strerror(), "8 vCPUs"),
		      "v2 with 9 vCPUs: %d %s", r, kvmkit_strerror());
		kvmkit_vm_destroy(vm);
		vm = NULL;
	} else {
		CHECK(strstr(kvmkit_strerror(), "KVM_CAP_MAX_VCPUS"), "%s", kvmkit_strerror());
	}

	/* Before every vCPU exists the vGIC is not initialised: a line is
	 * refused (an irqfd is queued instead, see the irqfd case). */
	cfg.vcpus = 2;
	CHECK(kvmkit_vm_create(&cfg, &vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_create(vm, NULL, &chip) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vm_create_vcpu(vm, 0, NULL) == 0, "%s", kvmkit_strerror());
	r = kvmkit_irq_line(chip, 16, true, NULL);
	CHECK(r == -EBUSY && kvmkit_last_error()->kind == KVMKIT_ERR_STATE,
	      "line before init: %d %s", r, kvmkit_strerror());
	CHECK(kvmkit_vm_create_vcpu(vm, 1, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irq_line(chip, 16, true, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irq_line(chip, 16, false, NULL) == 0, "%s", kvmkit_strerror());
	/* GIC routes: chip 0 only, pins below the SPIs. */
	CHECK(kvmkit_irq_route_irqchip(chip, 40, 1, 3) == -EINVAL, "irqchip 1 accepted");
	CHECK(kvmkit_irq_route_irqchip(chip, 40, 0, 224) == -EINVAL, "pin 224 accepted");
out:
	kvmkit_vm_destroy(vm);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "hello", t_hello },
	{ "psci_reset", t_psci_reset },
	{ "gic_version", t_gic_version },
	{ "gic_forced", t_gic_forced },
	{ "spi_line_edge", t_spi_line_edge },
	{ "spi_irqfd_edge_early", t_spi_irqfd_edge_early },
	{ "spi_irqfd_level_resample", t_spi_irqfd_level_resample },
	{ "routes_before_init", t_routes_before_init },
	{ "smp_psci", t_smp_psci },
	{ "ppi_line", t_ppi_line },
	{ "sgi", t_sgi },
	{ "vtimer", t_vtimer },
	{ "its_msi", t_its_msi },
	{ "fdt", t_fdt },
	{ "linux_refusals", t_linux_refusals },
	{ "refusals", t_refusals },
};

int main(int argc, char **argv)
{
	const char *only = NULL;
	unsigned int ran = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--expect-gic") && i + 1 < argc)
			expect_gic = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "-v"))
			verbose = true;
		else if (argv[i][0] != '-')
			guest_dir = argv[i];
		else {
			fprintf(stderr,
				"usage: %s [-v] [--expect-gic 2|3] [--only NAME] [GUEST_DIR]\n",
				argv[0]);
			return 2;
		}
	}
	alarm(240); /* a hang anywhere fails the binary, never the suite's timeout */
	if (!kvmkit_kvm_available()) {
		printf("%s: no /dev/kvm\n", getenv("KVMKIT_REQUIRE_KVM") ? "FAILED" : "skipped");
		return getenv("KVMKIT_REQUIRE_KVM") ? 1 : 77;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t t0;

		if (only && strcmp(only, cases[i].name))
			continue;
		fail_msg[0] = 0;
		t0 = now_ms();
		cases[i].fn();
		ran++;
		if (fail_msg[0]) {
			failures++;
			printf("FAIL %s: %s\n", cases[i].name, fail_msg);
		} else {
			printf("ok   %s (%llu ms)\n", cases[i].name,
			       (unsigned long long)(now_ms() - t0));
		}
		fflush(stdout);
	}
	printf("arm64: %u run, %d failed\n", ran, failures);
	return failures || !ran ? 1 : 0;
}
