// SPDX-License-Identifier: MIT
/*
 * Boots a Linux kernel through the library (kvmkit_machine) with two MMIO
 * devices declared in the DSDT (kvmkit_machine_config.mmio_devs): a
 * level-triggered LNRO0005 at 0xd0000000 on GSI 5 and an edge one at
 * 0xd0001000 on GSI 6, with nothing behind them. The guest's /init prints
 * what the kernel made of them (tests/linux/run-in-host.sh checks it).
 * Exit status: 0 after the guest's poweroff, 1 otherwise.
 * usage: linux-probe KERNEL INITRD VCPUS kernel|split APPEND
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvmkit/kvmkit.h>

int main(int argc, char **argv)
{
	const struct kvmkit_machine_mmio_dev devs[] = {
		{ 0xd0000000, 0x200, 5, true, "LNRO0005" },
		{ 0xd0001000, 0x200, 6, false, "LNRO0005" },
	};
	struct kvmkit_machine_config cfg;
	struct kvmkit_stop_info info;
	struct kvmkit_machine *m;
	void *kernel, *initrd;
	size_t klen, ilen;

	if (argc != 6) {
		fprintf(stderr, "usage: linux-probe KERNEL INITRD VCPUS kernel|split APPEND\n");
		return 2;
	}
	if (kvmkit_read_file(argv[1], &kernel, &klen) ||
	    kvmkit_read_file(argv[2], &initrd, &ilen)) {
		fprintf(stderr, "linux-probe: %s\n", kvmkit_strerror());
		return 2;
	}
	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = (unsigned int)atoi(argv[3]);
	cfg.vm.mem_size = 512ull << 20;
	cfg.irqchip_mode = strcmp(argv[4], "split") ? KVMKIT_IRQCHIP_KERNEL : KVMKIT_IRQCHIP_SPLIT;
	cfg.kernel = kernel;
	cfg.kernel_len = klen;
	cfg.initrd = initrd;
	cfg.initrd_len = ilen;
	cfg.cmdline = argv[5];
	cfg.console_fd = 1;
	cfg.mmio_devs = devs;
	cfg.n_mmio_devs = 2;
	if (kvmkit_machine_create(&cfg, &m)) {
		fprintf(stderr, "linux-probe: %s\n", kvmkit_strerror());
		return 1;
	}
	free(kernel);
	free(initrd);
	if (kvmkit_machine_run(m, 300 * 1000, &info)) {
		fprintf(stderr, "linux-probe: %s\n", kvmkit_strerror());
		kvmkit_machine_destroy(m);
		return 1;
	}
	kvmkit_machine_destroy(m);
	if (info.reason != KVMKIT_STOP_GUEST_EXIT || info.status != 0) {
		fprintf(stderr, "linux-probe: stopped: %s: %s\n",
			kvmkit_stop_reason_name(info.reason), info.detail);
		return 1;
	}
	return 0;
}
