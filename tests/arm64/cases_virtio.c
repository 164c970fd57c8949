// SPDX-License-Identifier: MIT
/*
 * virtio-mmio on arm64 (lab.h): a virtio-rng created with the defaults
 * lands in the first window of the arm64 map on the first device SPI, and
 * the guest's own driver (tests/guest/arm64/lib/virtio.c) gets its random
 * bytes with exactly one edge interrupt per request.
 */
#include <stdio.h>

#include "lab.h"

#define RNG_REQUESTS 8

static int make_rng(struct lab *l, void *arg)
{
	struct kvmkit_virtio_mmio_config vc;

	kvmkit_virtio_mmio_config_init(&vc);
	return kvmkit_virtio_rng_create(l->vm, &vc, arg);
}

void t_virtio_rng(void)
{
	struct kvmkit_virtio *dev = NULL;
	struct kvmkit_virtio_info info;
	struct lab l = { 0 };
	uint64_t res = 0;
	uint32_t intid;

	CHECK(lab_start(&l, 1, NULL, make_rng, &dev) == 0, "lab");
	kvmkit_virtio_get_info(dev, &info);
	CHECK(info.base == KVMKIT_ARM64_VIRTIO_MMIO && info.size == KVMKIT_VIRTIO_MMIO_SIZE,
	      "window 0x%llx+0x%llx", (unsigned long long)info.base, (unsigned long long)info.size);
	/* The allocator's first device SPI, not an x86 legacy pin. */
	CHECK(info.gsi == 16 && info.trigger == KVMKIT_VIRTIO_IRQ_EDGE, "gsi %u trigger %d",
	      info.gsi, (int)info.trigger);
	intid = info.gsi + KVMKIT_ARM64_SPI_BASE;
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(&l, 0), NULL) == 0, "spi");
	CHECK(lab_cmd(&l, 0, A64_CMD_VIRTIO_RNG, info.base, RNG_REQUESTS, intid, &res) == 0,
	      "driver");
	CHECK(res == RNG_REQUESTS, "driver result 0x%llx", (unsigned long long)res);
	/* A round trip later: one interrupt per request, no more. */
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&l, 0, intid) == RNG_REQUESTS, "%u interrupts for %u requests",
	      count_of(&l, 0, intid), RNG_REQUESTS);
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	if (l.vm)
		kvmkit_vm_stop(l.vm); /* devices go before the VM, once it has stopped */
	kvmkit_virtio_destroy(dev);
	lab_free(&l);
}
