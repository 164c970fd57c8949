// SPDX-License-Identifier: MIT
/*
 * A masked SPI (lab.h): the guest disables it at the distributor
 * (GICD_ICENABLER), the host raises it several times, nothing arrives;
 * the guest enables it again and exactly one interrupt arrives (an edge
 * SPI's pending state is one latch however many edges it saw), then it
 * works as before. Through KVM_IRQ_LINE and through an irqfd.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lab.h"

#define MASKED_EDGES 3

/* One edge on @gsi: a pulse on the line, or a write to the irqfd @fd. */
static int raise_edge(struct lab *l, int gsi, int fd)
{
	return fd < 0 ? kvmkit_irq_pulse(l->chip, (uint32_t)gsi, NULL) :
			kvmkit_irqfd_signal(l->chip, (uint32_t)gsi, fd);
}

static int masked_round(struct lab *l, int gsi, int fd)
{
	uint32_t intid = (uint32_t)gsi + KVMKIT_ARM64_SPI_BASE;
	const char *how = fd < 0 ? "line" : "irqfd";

	CHECK(lab_cmd(l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(l, 0), NULL) == 0, "spi");
	CHECK(raise_edge(l, gsi, fd) == 0, "%s: %s", how, kvmkit_strerror());
	CHECK(wait_count(l, 0, intid, 1) == 0, "%s: unmasked: count %u", how,
	      count_of(l, 0, intid));
	CHECK(lab_cmd(l, 0, A64_CMD_SPI_DISABLE, intid, 0, 0, NULL) == 0, "disable");
	for (unsigned int i = 0; i < MASKED_EDGES; i++)
		CHECK(raise_edge(l, gsi, fd) == 0, "%s: %s", how, kvmkit_strerror());
	/* A round trip through the guest: had any arrived, it was counted. */
	CHECK(lab_cmd(l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(l, 0, intid) == 1, "%s: %u taken while masked", how,
	      count_of(l, 0, intid) - 1);
	CHECK(lab_cmd(l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(l, 0), NULL) == 0, "enable");
	CHECK(wait_count(l, 0, intid, 2) == 0, "%s: nothing after unmasking: count %u", how,
	      count_of(l, 0, intid));
	CHECK(lab_cmd(l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(l, 0, intid) == 2, "%s: %u after unmasking, want exactly 1", how,
	      count_of(l, 0, intid) - 1);
	CHECK(raise_edge(l, gsi, fd) == 0, "%s: %s", how, kvmkit_strerror());
	CHECK(wait_count(l, 0, intid, 3) == 0, "%s: count %u", how, count_of(l, 0, intid));
	CHECK(lab_cmd(l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(l, 0, intid) == 3, "%s: count %u", how, count_of(l, 0, intid));
	return 0;
out:
	return -1;
}

void t_spi_masked(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct lab l = { 0 };
	int line_gsi, fd_gsi;

	CHECK(fd >= 0, "eventfd: %s", strerror(errno));
	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	line_gsi = kvmkit_gsi_alloc_line(l.chip);
	fd_gsi = kvmkit_gsi_alloc_line(l.chip);
	CHECK(line_gsi >= 0 && fd_gsi >= 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqfd_bind(l.chip, (uint32_t)fd_gsi, fd, -1) == 0, "%s", kvmkit_strerror());
	CHECK(masked_round(&l, line_gsi, -1) == 0, "line");
	CHECK(masked_round(&l, fd_gsi, fd) == 0, "irqfd");
	CHECK(kvmkit_irqfd_unbind(l.chip, (uint32_t)fd_gsi, fd) == 0, "%s", kvmkit_strerror());
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	lab_free(&l);
	if (fd >= 0)
		close(fd);
}
