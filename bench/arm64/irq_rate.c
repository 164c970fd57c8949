// SPDX-License-Identifier: MIT
/*
 * arm64 interrupt injection paths, the counterpart of bench/irq_rate.c:
 * the guest is the arm64 lab (tests/guest/arm64/progs/lab.c) with one vCPU
 * polling its mailbox with IRQs on; its handler acknowledges, counts and
 * ends every interrupt (ICC_IAR1/EOIR1 or GICC_IAR/EOIR).
 *
 * Paths:
 *   nop          baseline, no interrupt: the host bumps the mailbox's seq
 *                for a NOP and spins until the guest acks it
 *   line         kvmkit_irq_pulse(): two KVM_IRQ_LINEs on an edge SPI
 *   irqfd-edge   kvmkit_irqfd_signal() on an edge SPI's irqfd
 *   irqfd-level  the same on a level SPI with a resamplefd, which the host
 *                spins on (the guest's EOI) before the next signal
 *   signal-msi   kvmkit_signal_msi() through the ITS (GICv3 with an ITS)
 *   msi-irqfd    an MSI vector (MSI route with device id + irqfd) (ITS)
 *
 * Closed loop per injection: inject, spin until the guest counted it (and,
 * level, the resamplefd fired), next. M measured injections per path after
 * 50 warm-up ones, interleaved in blocks of 20 in rotating order. Checked at
 * the end: every path's count is exact. The vCPU thread and this thread
 * spin, so they are pinned to two CPUs when there are two.
 *
 * usage: bench-arm64-irq [M]
 * prints: RESULT irq-arm64 <path> n=.. rt_p50_ns=.. rt_p90_ns=.. loop_ns=..
 *         call_p50_ns=.. [resample_p50_ns=..]
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lab.h"

#define WARMUP 50
#define BLOCK 20
#define SPIN_LIMIT_NS 5000000000ull

enum { P_NOP, P_LINE, P_IRQFD_EDGE, P_IRQFD_LEVEL, P_SIGNAL_MSI, P_MSI_IRQFD, NPATHS };
static const char *const names[NPATHS] = {
	"nop", "line", "irqfd-edge", "irqfd-level", "signal-msi", "msi-irqfd",
};

struct path {
	bool on;
	uint32_t gsi, intid;
	int fd, rfd;
	struct kvmkit_msi *vec;
	uint32_t sent; /* injections the guest must count */
	uint64_t *rt, *call, *resample;
	unsigned int n;
};

static struct lab l;
static struct path paths[NPATHS];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int spin_count(uint32_t intid, uint32_t want)
{
	uint64_t end = now_ns() + SPIN_LIMIT_NS;

	while (count_of(&l, 0, intid) < want)
		if (now_ns() > end)
			return -1;
	return 0;
}

static int spin_efd(int fd)
{
	uint64_t end = now_ns() + SPIN_LIMIT_NS, v;

	while (read(fd, &v, 8) != 8)
		if (errno != EAGAIN || now_ns() > end)
			return -1;
	return 0;
}

/* One closed-loop injection on @p; 0 or -1. */
static int inject(int i, bool record)
{
	struct path *p = &paths[i];
	uint64_t t0, t1 = 0, t2, t3 = 0, seq;
	struct kvmkit_irq_status st;
	int r = 0;

	t0 = now_ns();
	switch (i) {
	case P_NOP:
		seq = *mbox(&l, 0, A64_MBOX_SEQ) + 1;
		*mbox(&l, 0, A64_MBOX_CMD) = A64_CMD_NOP;
		__atomic_store_n(mbox(&l, 0, A64_MBOX_SEQ), seq, __ATOMIC_RELEASE);
		t1 = now_ns();
		while (__atomic_load_n(mbox(&l, 0, A64_MBOX_DONE), __ATOMIC_ACQUIRE) != seq)
			if (now_ns() - t0 > SPIN_LIMIT_NS)
				return -1;
		break;
	case P_LINE:
		r = kvmkit_irq_pulse(l.chip, p->gsi, &st);
		break;
	case P_IRQFD_EDGE:
	case P_IRQFD_LEVEL:
		r = kvmkit_irqfd_signal(l.chip, p->gsi, p->fd);
		break;
	case P_SIGNAL_MSI:
		r = kvmkit_signal_msi(l.chip, KVMKIT_ARM64_GITS_TRANSLATER, 0, 1, &st);
		if (!r && st.result != KVMKIT_IRQ_DELIVERED)
			r = -1;
		break;
	case P_MSI_IRQFD:
		r = kvmkit_msi_signal(p->vec);
		break;
	}
	if (i != P_NOP) {
		t1 = now_ns();
		if (r || spin_count(p->intid, ++p->sent))
			return -1;
		if (i == P_IRQFD_LEVEL) {
			if (spin_efd(p->rfd))
				return -1;
			t3 = now_ns();
		}
	}
	t2 = now_ns();
	if (record) {
		p->call[p->n] = t1 - t0;
		p->rt[p->n] = (i == P_IRQFD_LEVEL ? t3 : t2) - t0;
		if (p->resample)
			p->resample[p->n] = t3 - t0;
		p->n++;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, unsigned int n, unsigned int q)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[(uint64_t)(n - 1) * q / 100];
}

static int setup(void)
{
	uint64_t r = 1;
	int g;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	paths[P_NOP].on = true;
	for (int i = P_LINE; i <= P_IRQFD_LEVEL; i++) {
		struct path *p = &paths[i];

		g = kvmkit_gsi_alloc_line(l.chip);
		CHECK(g >= 0, "%s", kvmkit_strerror());
		p->gsi = (uint32_t)g;
		p->intid = p->gsi + KVMKIT_ARM64_SPI_BASE;
		p->fd = p->rfd = -1;
		if (i != P_LINE)
			p->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (i == P_IRQFD_LEVEL)
			p->rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (i != P_LINE)
			CHECK(kvmkit_irqfd_bind(l.chip, p->gsi, p->fd, p->rfd) == 0, "%s",
			      kvmkit_strerror());
		CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, p->intid, i != P_IRQFD_LEVEL,
			      spi_target(&l, 0), NULL) == 0,
		      "spi");
		p->on = true;
	}
	if (kvmkit_irqchip_has_its(l.chip)) {
		CHECK(lab_cmd(&l, 0, A64_CMD_LPI_INIT, 0, 0, 0, NULL) == 0, "lpi");
		CHECK(lab_cmd(&l, 0, A64_CMD_ITS_INIT, 0, 0, 0, NULL) == 0, "its");
		for (int e = 0; e < 2; e++) {
			struct path *p = &paths[P_SIGNAL_MSI + e];

			p->intid = A64_LPI_BASE + 100 + (uint32_t)e;
			CHECK(lab_cmd(&l, 0, A64_CMD_ITS_MAP, 1, (uint64_t)e, p->intid, &r) == 0 &&
				      r == 0,
			      "its map");
			p->on = true;
		}
		CHECK(kvmkit_msi_open(l.chip, &paths[P_MSI_IRQFD].vec) == 0, "%s",
		      kvmkit_strerror());
		CHECK(kvmkit_msi_configure(paths[P_MSI_IRQFD].vec, KVMKIT_ARM64_GITS_TRANSLATER, 1,
					   1) == 0,
		      "%s", kvmkit_strerror());
	}
	return 0;
out:
	return -1;
}

/* The guest's vCPU thread inherits this thread's CPU set at start. */
static bool pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

int main(int argc, char **argv)
{
	unsigned int m = argc > 1 ? (unsigned int)atoi(argv[1]) : 2000;
	bool pinned = sysconf(_SC_NPROCESSORS_ONLN) >= 2 && pin(0);
	int rc = 1;

	if (m < BLOCK || m % BLOCK || m > 1000000) {
		fprintf(stderr, "usage: %s [M: a multiple of %d]\n", argv[0], BLOCK);
		return 2;
	}
	if (!kvmkit_kvm_available()) {
		printf("skipped: no /dev/kvm\n");
		return 77;
	}
	for (int i = 0; i < NPATHS; i++)
		paths[i].fd = paths[i].rfd = -1;
	if (setup())
		goto out;
	if (pinned)
		pin(1);
	printf("GICv%d%s, M=%u, %s\n", l.gic, kvmkit_irqchip_has_its(l.chip) ? " + ITS" : "", m,
	       pinned ? "vCPU on CPU 0, this thread on CPU 1" : "not pinned (one CPU)");
	for (int i = 0; i < NPATHS; i++) {
		paths[i].rt = calloc(m, 8);
		paths[i].call = calloc(m, 8);
		if (i == P_IRQFD_LEVEL)
			paths[i].resample = calloc(m, 8);
	}
	for (unsigned int w = 0; w < WARMUP; w++)
		for (int i = 0; i < NPATHS; i++)
			CHECK(!paths[i].on || inject(i, false) == 0, "warm-up %s", names[i]);
	for (unsigned int b = 0; b < m / BLOCK; b++)
		for (int k = 0; k < NPATHS; k++) {
			int i = (int)((b + (unsigned int)k) % NPATHS);

			for (unsigned int j = 0; paths[i].on && j < BLOCK; j++)
				CHECK(inject(i, true) == 0, "%s injection %u", names[i],
				      paths[i].n);
		}
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	for (int i = P_LINE; i < NPATHS; i++)
		CHECK(!paths[i].on || count_of(&l, 0, paths[i].intid) == paths[i].sent,
		      "%s: guest counted %u of %u", names[i], count_of(&l, 0, paths[i].intid),
		      paths[i].sent);
	for (int i = 0; i < NPATHS; i++) {
		struct path *p = &paths[i];
		uint64_t sum = 0;

		if (!p->on)
			continue;
		for (unsigned int j = 0; j < p->n; j++)
			sum += p->rt[j];
		printf("RESULT irq-arm64 %s n=%u loop_ns=%llu rt_p90_ns=%llu ", names[i], p->n,
		       (unsigned long long)(sum / p->n), (unsigned long long)pct(p->rt, p->n, 90));
		printf("rt_p50_ns=%llu call_p50_ns=%llu", (unsigned long long)pct(p->rt, p->n, 50),
		       (unsigned long long)pct(p->call, p->n, 50));
		if (p->resample)
			printf(" resample_p50_ns=%llu",
			       (unsigned long long)pct(p->resample, p->n, 50));
		printf("\n");
	}
	rc = lab_power_off(&l) ? 1 : 0;
out:
	if (fail_msg[0])
		printf("FAILED: %s\n", fail_msg);
	kvmkit_msi_close(paths[P_MSI_IRQFD].vec);
	lab_free(&l);
	for (int i = 0; i < NPATHS; i++) {
		if (paths[i].fd >= 0)
			close(paths[i].fd);
		if (paths[i].rfd >= 0)
			close(paths[i].rfd);
		free(paths[i].rt);
		free(paths[i].call);
		free(paths[i].resample);
	}
	return rc;
}
