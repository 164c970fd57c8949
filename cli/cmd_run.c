// SPDX-License-Identifier: MIT
/* `kvmkit run`: boot a guest (ELF64, Multiboot, Linux) on a standard machine. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdbool.h>
#include <stdint.h>

#include <kvmkit/kvmkit.h>

#include "cli.h"

/* Exit status for a failure: user input problems are 2, host problems 120. */
static int failure_status(void)
{
	switch (kvmkit_last_error()->kind) {
	case KVMKIT_ERR_PARAM:
	case KVMKIT_ERR_FORMAT:
		return CLI_EXIT_USAGE;
	case KVMKIT_ERR_SYSCALL:
		return kvmkit_last_error()->err == ENOENT || kvmkit_last_error()->err == EACCES ||
				       kvmkit_last_error()->err == EISDIR ?
			       CLI_EXIT_USAGE :
			       CLI_EXIT_HOST;
	default:
		return CLI_EXIT_HOST;
	}
}

static void print_irq_stats(struct kvmkit_irqchip *chip)
{
	if (!chip) {
		fprintf(stderr, "kvmkit: irq-stats: no irqchip\n");
		return;
	}
	fprintf(stderr, "kvmkit: irq-stats (%s irqchip)\n",
		kvmkit_irqchip_mode_name(kvmkit_irqchip_mode(chip)));
	for (uint32_t gsi = 0; gsi < KVMKIT_MAX_GSI; gsi++) {
		struct kvmkit_gsi_stats st;

		if (kvmkit_irq_gsi_stats(chip, gsi, &st) || !(st.asserts || st.irqfd_signals))
			continue;
		fprintf(stderr,
			"  gsi %3u: asserts %llu, delivered %llu, coalesced %llu, masked %llu, irqfd signals %llu\n",
			gsi, (unsigned long long)st.asserts, (unsigned long long)st.deliveries,
			(unsigned long long)st.coalesced, (unsigned long long)st.masked,
			(unsigned long long)st.irqfd_signals);
	}
}

/*
 * After a hang or a fault, where each vCPU was. A fault's stop detail
 * already holds the registers of the vCPU that stopped the VM (@skip, as
 * they were at the fault): print only the others, so each dump appears once.
 */
static void dump_vcpus(struct kvmkit_machine *m, int skip)
{
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);

	for (unsigned int i = 0; i < kvmkit_vm_vcpu_count(vm); i++) {
		char buf[512];

		if ((int)i == skip)
			continue;
		kvmkit_vcpu_dump(kvmkit_vm_vcpu(vm, i), buf, sizeof(buf));
		fprintf(stderr, "kvmkit: vCPU %u: %s\n", i, buf);
	}
}

/* Runs that end this way get every vCPU's registers on stderr. */
static bool wants_dump(enum kvmkit_stop_reason r)
{
	switch (r) {
	case KVMKIT_STOP_TIMEOUT:
	case KVMKIT_STOP_INTERNAL_ERROR:
	case KVMKIT_STOP_UNHANDLED_EXIT:
	case KVMKIT_STOP_SHUTDOWN:
	case KVMKIT_STOP_GUEST_CRASH:
		return true;
	default:
		return false;
	}
}

/* An initrd is measured (stat) against the room the multiboot placement
 * leaves after the image before it is read: one that cannot fit is refused
 * without reading up to 1 GiB first. Anything else (no such file, not
 * multiboot, an image that does not fit alone) is left to the usual checks.
 * Returns false after printing the refusal. */
static bool initrd_fits(const char *path, const struct kvmkit_machine_config *cfg)
{
	struct kvmkit_multiboot_module mod = { NULL, 0, path };
	struct kvmkit_multiboot_layout lay;
	struct kvmkit_multiboot_image img;
	uint64_t mem = cfg->vm.mem_size;
	uint64_t low = mem < KVMKIT_X86_MMIO_HOLE ? mem : KVMKIT_X86_MMIO_HOLE;
	uint64_t start;
	struct stat st;

	/* Linux: the loader's own placement says whether it fits. */
	if (kvmkit_linux_detect(cfg->kernel, cfg->kernel_len)) {
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
		    kvmkit_boot_check_linux(cfg->kernel, cfg->kernel_len, mem, cfg->cmdline, 0) ||
		    !kvmkit_boot_check_linux(cfg->kernel, cfg->kernel_len, mem, cfg->cmdline,
					     (size_t)st.st_size))
			return true;
		fprintf(stderr, "kvmkit: --initrd %s: %s\n", path, kvmkit_strerror());
		return false;
	}
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
	    !kvmkit_multiboot_detect(cfg->kernel, cfg->kernel_len) ||
	    kvmkit_multiboot_parse(cfg->kernel, cfg->kernel_len, &img) ||
	    kvmkit_multiboot_place(&img, mem, NULL, &mod, 1, &lay))
		return true;
	start = lay.mods[0].start; /* where the initrd would go */
	mod.len = (uint64_t)st.st_size < low ? (size_t)st.st_size : (size_t)low;
	if ((uint64_t)st.st_size < low && !kvmkit_multiboot_place(&img, mem, NULL, &mod, 1, &lay))
		return true;
	fprintf(stderr,
		"kvmkit: --initrd %s: %llu bytes do not fit in guest RAM (%llu bytes free after the image)\n",
		path, (unsigned long long)st.st_size, (unsigned long long)(low - start));
	return false;
}

int cmd_run(int argc, char **argv)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_api_server *api = NULL;
	const char *api_path = NULL, *restore = NULL;
	bool set_mem = false, set_vcpus = false, set_chip = false;
	struct kvmkit_stop_info info;
	const char *kernel = NULL;
	const char *initrd = NULL;
	void *initrd_buf = NULL;
	unsigned int timeout_s = 0;
	bool irq_stats = false;
	struct console *con;
	void *image = NULL;
	size_t image_len = 0;
	int c, r, status;

	kvmkit_machine_config_init(&cfg);
	optind = 0; /* a fresh scan: main() has used getopt on its own argv */
	while ((c = cli_getopt(argc, argv, cli_run_shortopts, cli_run_options, "run")) != -1) {
		switch (c) {
		case 'k':
			kernel = optarg;
			break;
		case 'm':
			if (cli_parse_size(optarg, &cfg.vm.mem_size) || cfg.vm.mem_size == 0) {
				fprintf(stderr,
					"kvmkit: --mem: invalid size '%s' (e.g. 256M, 1G)\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			set_mem = true;
			break;
		case 'c':
			if (cli_parse_uint(optarg, 1, 4096, &cfg.vm.vcpus)) {
				fprintf(stderr, "kvmkit: --vcpus: invalid count '%s' (1..4096)\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			set_vcpus = true;
			break;
		case 't':
			if (cli_parse_uint(optarg, 1, 86400, &timeout_s)) {
				fprintf(stderr, "kvmkit: --timeout: invalid seconds '%s'\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'i':
			set_chip = true;
			if (!strcmp(optarg, "kernel")) {
				cfg.irqchip = true;
				cfg.irqchip_mode = KVMKIT_IRQCHIP_KERNEL;
			} else if (!strcmp(optarg, "split")) {
				cfg.irqchip = true;
				cfg.irqchip_mode = KVMKIT_IRQCHIP_SPLIT;
			} else if (!strcmp(optarg, "none")) {
				cfg.irqchip = false;
			} else {
				fprintf(stderr,
					"kvmkit: --irqchip: unknown mode '%s' (kernel, split, none)\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'I':
			initrd = optarg;
			break;
		case 'A':
			api_path = optarg;
			break;
		case 'R':
			restore = optarg;
			break;
		case 'a':
			cfg.cmdline = optarg;
			break;
		case 's':
			irq_stats = true;
			break;
		case 'V':
			cfg.virtio_mmio_cmdline = true;
			break;
		case 'u':
			cfg.vm.cpu_flags = optarg;
			break;
		case 'T':
			if (!strcmp(optarg, "on")) {
				cfg.testdev = KVMKIT_TESTDEV_ON;
			} else if (!strcmp(optarg, "off")) {
				cfg.testdev = KVMKIT_TESTDEV_OFF;
			} else {
				fprintf(stderr, "kvmkit: --testdev: '%s' is not on or off\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h':
			cli_run_usage(stdout);
			return 0;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvmkit: run: unexpected argument '%s' (see 'kvmkit run --help')\n",
			argv[optind]);
		return CLI_EXIT_USAGE;
	}

	if (restore) {
		struct kvmkit_snapshot_info si;

		if (kernel || initrd || cfg.cmdline || cfg.testdev) {
			fprintf(stderr, "kvmkit: --restore: the snapshot holds the guest: no "
					"--kernel, --initrd, --append or --testdev\n");
			return CLI_EXIT_USAGE;
		}
		/* What the command line leaves out comes from the snapshot;
		 * what it gives must match it (the restore says if not). */
		if (kvmkit_snapshot_info(restore, &si)) {
			cli_fail("--restore");
			return failure_status();
		}
		if (!set_vcpus)
			cfg.vm.vcpus = si.vcpus;
		if (!set_mem)
			cfg.vm.mem_size = si.mem_size;
		if (!set_chip) {
			cfg.irqchip = si.irqchip;
			cfg.irqchip_mode = si.irqchip_mode;
		}
		cfg.console_fd = STDOUT_FILENO;
		r = kvmkit_machine_restore(&cfg, restore, &m);
		if (r) {
			cli_fail("--restore");
			return failure_status();
		}
	} else if (kernel) {
		r = kvmkit_read_file(kernel, &image, &image_len);
		if (r) {
			cli_fail("--kernel");
			return failure_status();
		}
		cfg.kernel = image;
		cfg.kernel_len = image_len;
		cfg.kernel_path = kernel;
	} else {
		cfg.kernel = kvmkit_demo_guest(&cfg.kernel_len);
	}
	cfg.console_fd = STDOUT_FILENO;
	if (!restore && initrd && !initrd_fits(initrd, &cfg)) {
		free(image);
		return CLI_EXIT_USAGE;
	}
	if (initrd) {
		r = kvmkit_read_file(initrd, &initrd_buf, &cfg.initrd_len);
		if (r) {
			cli_fail("--initrd");
			free(image);
			return failure_status();
		}
		cfg.initrd = initrd_buf;
		cfg.initrd_path = initrd;
	}

	r = m ? 0 : kvmkit_machine_create(&cfg, &m);
	if (r) {
		cli_fail(kernel ? kernel : "demo guest");
		free(image);
		free(initrd_buf);
		return failure_status();
	}
	if (api_path) {
		status = cli_api_start(m, api_path, &api);
		if (status) {
			kvmkit_machine_destroy(m);
			free(image);
			free(initrd_buf);
			return status;
		}
	}
	con = console_start(kvmkit_machine_vm(m), kvmkit_machine_uart(m));
	r = kvmkit_machine_run(m, timeout_s ? (int)(timeout_s * 1000) : -1, &info);
	/* The server goes first: it may still be finishing a stop request. */
	kvmkit_api_server_destroy(api);
	console_stop(con);
	if (r) {
		cli_fail("run");
		status = CLI_EXIT_HOST;
	} else {
		cli_report_stop(stderr, &info);
		status = cli_exit_status(&info);
		if (wants_dump(info.reason))
			dump_vcpus(m, info.vcpu);
	}
	if (irq_stats)
		print_irq_stats(kvmkit_machine_irqchip(m));
	kvmkit_machine_destroy(m);
	free(image);
	free(initrd_buf);
	return status;
}
