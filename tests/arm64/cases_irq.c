// SPDX-License-Identifier: MIT
/*
 * The arm64 interrupt cases (lab.h): SPIs through KVM_IRQ_LINE and irqfds
 * (one bound before the vGIC's init), level SPIs with resample, a table
 * committed before the init, PPIs, SGIs, the virtual timer, MSIs through
 * the ITS. Every count is what the guest's handler counted.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lab.h"

#define EDGE_ROUNDS 32
#define LEVEL_ROUNDS 32

/* Edge SPI through KVM_IRQ_LINE (kvmkit_irq_pulse): each pulse counted once. */
void t_spi_line_edge(void)
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
void t_spi_irqfd_edge_early(void)
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
	/* Unbound (KVM's deassign matched the queued dup's eventfd): a write
	 * to the eventfd injects nothing any more. A line on the GSI still
	 * does, so the SPI itself is alive. */
	CHECK(kvmkit_irqfd_unbind(l.chip, (uint32_t)e.gsi, e.fd) == 0, "%s", kvmkit_strerror());
	{
		uint64_t one = 1;

		CHECK(write(e.fd, &one, 8) == 8, "write: %s", strerror(errno));
	}
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, intid) == EDGE_ROUNDS, "the unbound irqfd injected: count %u",
	      count_of(&l, 0, intid));
	CHECK(kvmkit_irq_pulse(l.chip, (uint32_t)e.gsi, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(wait_count(&l, 0, intid, EDGE_ROUNDS + 1) == 0, "line: count %u",
	      count_of(&l, 0, intid));
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, intid) == EDGE_ROUNDS + 1, "after unbind: count %u",
	      count_of(&l, 0, intid));
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
void t_routes_before_init(void)
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
void t_spi_irqfd_level_resample(void)
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

/* An irqfd stays bound while the guest moves its SPI from vCPU 0 to vCPU 1
 * (GICD_IROUTER / GICD_ITARGETSR): each signal lands where the guest last
 * routed it, and only there. */
void t_spi_reroute_irqfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct lab l = { 0 };
	uint32_t intid;
	int gsi;

	CHECK(fd >= 0, "eventfd: %s", strerror(errno));
	CHECK(lab_start(&l, 2, NULL, NULL, NULL) == 0, "lab");
	CHECK(lab_bring_up(&l, 1) == 0, "bring-up");
	gsi = kvmkit_gsi_alloc_line(l.chip);
	intid = (uint32_t)gsi + KVMKIT_ARM64_SPI_BASE;
	CHECK(kvmkit_irqfd_bind(l.chip, (uint32_t)gsi, fd, -1) == 0, "%s", kvmkit_strerror());
	for (uint32_t i = 0; i < 8; i++) {
		unsigned int to = i % 2;

		CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(&l, to), NULL) == 0,
		      "route to %u", to);
		CHECK(kvmkit_irqfd_signal(l.chip, (uint32_t)gsi, fd) == 0, "%s", kvmkit_strerror());
		CHECK(wait_count(&l, to, intid, i / 2 + 1) == 0, "signal %u: vCPU %u has %u", i, to,
		      count_of(&l, to, intid));
	}
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0 &&
		      lab_cmd(&l, 1, A64_CMD_NOP, 0, 0, 0, NULL) == 0,
	      "nop");
	CHECK(count_of(&l, 0, intid) == 4 && count_of(&l, 1, intid) == 4, "counts %u/%u",
	      count_of(&l, 0, intid), count_of(&l, 1, intid));
	CHECK(kvmkit_irqfd_unbind(l.chip, (uint32_t)gsi, fd) == 0, "%s", kvmkit_strerror());
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
	if (fd >= 0)
		close(fd);
}

/* The number of interrupts configured: 64 (32 SPIs, the fewest) and 992
 * (960 SPIs, the most KVM takes), the last SPI of each taken, the next
 * GSI refused as a route target, and the allocator exhausted exactly. */
void t_nr_irqs(void)
{
	static const unsigned int sizes[] = { 64, 992 };
	struct kvmkit_irqchip_config icfg;
	struct lab l = { 0 };
	uint64_t typer = 0;

	for (unsigned int k = 0; k < 2; k++) {
		unsigned int spis = (sizes[k] < 1020 ? sizes[k] : 1020) - 32;
		uint32_t last = spis - 1, intid = last + KVMKIT_ARM64_SPI_BASE;
		int g, n = 0;

		kvmkit_irqchip_config_init(&icfg);
		icfg.gic_nr_irqs = sizes[k];
		CHECK(lab_start(&l, 1, &icfg, NULL, NULL) == 0, "lab with %u", sizes[k]);
		CHECK(kvmkit_irqchip_pins(l.chip) == spis, "%u interrupts: %u pins", sizes[k],
		      kvmkit_irqchip_pins(l.chip));
		CHECK(lab_cmd(&l, 0, A64_CMD_GICD_READ, 0x4, 0, 0, &typer) == 0, "no answer");
		CHECK((typer & 0x1f) == sizes[k] / 32 - 1, "GICD_TYPER 0x%llx for %u",
		      (unsigned long long)typer, sizes[k]);
		CHECK(kvmkit_irq_route_irqchip(l.chip, 40, 0, spis) == -EINVAL,
		      "pin %u accepted with %u interrupts", spis, sizes[k]);
		while ((g = kvmkit_gsi_alloc_line(l.chip)) >= 0)
			n++;
		CHECK(g == -ENOSPC && n == (int)spis - 16, "%d device lines of %u SPIs, then %d", n,
		      spis, g);
		CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(&l, 0), NULL) == 0,
		      "spi");
		CHECK(kvmkit_irq_pulse(l.chip, last, NULL) == 0, "%s", kvmkit_strerror());
		CHECK(wait_count(&l, 0, intid, 1) == 0, "INTID %u not taken", intid);
		CHECK(lab_power_off(&l) == 0, "power off");
		lab_free(&l);
	}
out:
	lab_free(&l);
}

#define PPI_INTID 20 /* not one a KVM device owns (timers, PMU) */
#define PPI_ROUNDS 16
#define SGI_INTID 5
#define SGI_ROUNDS 16
#define VTIMER_ROUNDS 8

/* A PPI through KVM_IRQ_LINE reaches the vCPU it names. KVM keeps PPIs
 * level-sensitive: the line is held until the guest took it (its handler
 * disables the PPI, as a driver quiets its source), then lowered and the
 * PPI enabled again, so each assertion is counted once. */
void t_ppi_line(void)
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
void t_sgi(void)
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
void t_vtimer(void)
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
void t_its_msi(void)
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
