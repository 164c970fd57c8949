// SPDX-License-Identifier: MIT
/* `kvmkit run`: boot a guest (ELF64, Multiboot, Linux) on a standard machine. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
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

#if defined(__x86_64__)
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
#endif
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

static void say_listening(const char *addr, void *opaque)
{
	fprintf(stderr, "kvmkit: --incoming: waiting for a source on %s\n", addr);
}

/* The unix socket a Ctrl-C or kill during the wait must not leave behind
 * (the library removes it itself once a source connects or it fails). */
static char incoming_path[108];

static void incoming_signal(int sig)
{
	if (incoming_path[0])
		unlink(incoming_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Installs (@on) or takes back the handler for the signals that would end
 * the wait; a signal the parent set to be ignored stays ignored. */
static void incoming_guard(const char *addr, bool on)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	static struct sigaction old[3];
	struct sigaction sa = { .sa_handler = incoming_signal };

	if (on && !strncmp(addr, "unix:", 5))
		snprintf(incoming_path, sizeof(incoming_path), "%s", addr + 5);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (on) {
			sigaction(sigs[i], NULL, &old[i]);
			if (old[i].sa_handler != SIG_IGN)
				sigaction(sigs[i], &sa, NULL);
		} else {
			sigaction(sigs[i], &old[i], NULL);
		}
	}
	if (!on)
		incoming_path[0] = '\0';
}

/* `run --incoming ADDR`: waits for one source and returns its machine,
 * running; or prints one line and returns the exit status. The command
 * line's --vcpus, --mem and --irqchip must match the source's; those it
 * leaves out are the source's. */
static int run_incoming(struct kvmkit_machine_config *cfg, const char *addr, unsigned int adopt,
			unsigned int wait_s, struct kvmkit_machine **m)
{
	struct kvmkit_incoming_params p;
	int r;

	if (kvmkit_migrate_check_address(addr, true)) {
		fprintf(stderr, "kvmkit: --incoming '%s': %s\n", addr, kvmkit_last_error()->reason);
		return CLI_EXIT_USAGE;
	}
	kvmkit_incoming_params_init(&p);
	p.adopt = adopt;
	p.accept_timeout_ms = wait_s ? (int)(wait_s * 1000) : -1;
	p.listening = say_listening;
	incoming_guard(addr, true);
	r = kvmkit_machine_incoming(cfg, addr, &p, NULL, m);
	incoming_guard(addr, false);
	if (r) {
		const struct kvmkit_error *e = kvmkit_last_error();

		cli_fail("--incoming");
		if (e->kind == KVMKIT_ERR_SYSCALL && e->err == ETIMEDOUT && wait_s &&
		    strstr(e->reason, "no source connected"))
			return CLI_EXIT_TIMEOUT;
		/* An address that cannot be listened on is the user's to fix. */
		if (e->kind == KVMKIT_ERR_SYSCALL &&
		    (e->err == EEXIST || e->err == EADDRINUSE || e->err == EADDRNOTAVAIL ||
		     e->err == EHOSTUNREACH))
			return CLI_EXIT_USAGE;
		return failure_status();
	}
	return 0;
}

/* --disk: one clear line for a missing image, or a writable disk on a file
 * that cannot be written, before anything is built. */
static bool add_disk(struct kvmkit_machine_config *cfg, char *arg)
{
	struct kvmkit_machine_disk *d = &cfg->disks[cfg->ndisks];
	const char *bad;
	int fd;

	if (cfg->ndisks == KVMKIT_MACHINE_MAX_DISKS) {
		fprintf(stderr, "kvmkit: --disk: at most %d disks\n", KVMKIT_MACHINE_MAX_DISKS);
		return false;
	}
	if (cli_parse_disk(arg, &d->read_only, &bad)) {
		if (bad)
			fprintf(stderr, "kvmkit: --disk %s: unknown option '%s' (PATH[,ro])\n", arg,
				bad);
		else
			fprintf(stderr, "kvmkit: --disk: no image path (PATH[,ro])\n");
		return false;
	}
	fd = open(arg, (d->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		if (!d->read_only && (errno == EACCES || errno == EROFS || errno == EPERM) &&
		    !access(arg, R_OK))
			fprintf(stderr,
				"kvmkit: --disk %s: read-only file given as writable (add ,ro)\n",
				arg);
		else
			fprintf(stderr, "kvmkit: --disk %s: %s\n", arg, strerror(errno));
		return false;
	}
	close(fd);
	d->path = arg;
	cfg->ndisks++;
	return true;
}

/* --net tap=NAME[,vhost]: the tap opened once (a tap that did not exist
 * is made and goes again when the fd closes) so that a tap kvmkit cannot
 * have is one clear line before anything is built. */
static bool add_net(struct kvmkit_machine_config *cfg, char *arg)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	char *spec = strdup(arg);
	const char *bad = NULL;
	int fd, e = 0;

	if (!spec || cli_parse_net(arg, &cfg->net_tap, &cfg->net_vhost, &bad)) {
		fprintf(stderr, "kvmkit: --net %s: %s%s%s (tap=NAME[,vhost])\n", spec ? spec : arg,
			bad ? "unknown option '" : "no tap", bad ? bad : "", bad ? "'" : "");
		free(spec);
		return false;
	}
	if (strlen(cfg->net_tap) >= IFNAMSIZ) {
		fprintf(stderr, "kvmkit: --net %s: a tap name has at most %d bytes\n", spec,
			IFNAMSIZ - 1);
		free(spec);
		return false;
	}
	if (cfg->net_vhost && access("/dev/vhost-net", R_OK | W_OK)) {
		fprintf(stderr,
			"kvmkit: --net %s: /dev/vhost-net: %s (load the vhost_net module, "
			"or drop ,vhost)\n",
			spec, strerror(errno));
		free(spec);
		return false;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", cfg->net_tap);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0)
		e = errno;
	if (fd >= 0)
		close(fd);
	if (e)
		fprintf(stderr, "kvmkit: --net %s: cannot open tap %s: %s (errno %d)\n", spec,
			cfg->net_tap, strerror(e), e);
	free(spec);
	return !e;
}

static bool add_vsock(struct kvmkit_machine_config *cfg, const char *arg)
{
	if (cli_parse_vsock(arg, &cfg->vsock_cid)) {
		fprintf(stderr, "kvmkit: --vsock %s: expected cid=N, N from 3 to 4294967294\n",
			arg);
		return false;
	}
	if (access("/dev/vhost-vsock", R_OK | W_OK)) {
		fprintf(stderr,
			"kvmkit: --vsock %s: /dev/vhost-vsock: %s (load the vhost_vsock "
			"module)\n",
			arg, strerror(errno));
		return false;
	}
	return true;
}

/* The options whose machinery exists only on one architecture: x86_64's
 * split irqchip, port-I/O test device and virtio-mmio command line,
 * arm64's vGIC options (@arm_opt: the first of those given, or NULL). One
 * line naming the first one given elsewhere. (--initrd and --append go with a Linux Image on arm64; --cpu
 * takes each architecture's names.) */
static bool arch_only_ok(const struct kvmkit_machine_config *cfg, bool set_chip,
			 const char *arm_opt)
{
	const char *opt = NULL;

#if defined(__x86_64__)
	(void)cfg;
	(void)set_chip;
	opt = arm_opt;
	if (opt)
		fprintf(stderr, "kvmkit: run: %s is arm64-only (this kvmkit is built for %s)\n",
			opt, "x86_64");
#else
	(void)arm_opt;
	if (set_chip && cfg->irqchip && cfg->irqchip_mode == KVMKIT_IRQCHIP_SPLIT)
		opt = "--irqchip split";
	else if (cfg->testdev != KVMKIT_TESTDEV_AUTO)
		opt = "--testdev";
	else if (cfg->virtio_mmio_cmdline) /* the device tree names them */
		opt = "--virtio-mmio-cmdline";
	if (opt)
		fprintf(stderr, "kvmkit: run: %s is x86_64-only (this kvmkit is built for %s)\n",
			opt, "arm64");
#endif
	return !opt;
}

int cmd_run(int argc, char **argv)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	struct kvmkit_api_server *api = NULL;
	const char *api_path = NULL, *restore = NULL, *snapshot_dir = NULL;
	const char *incoming = NULL;
	bool set_mem = false, set_vcpus = false, set_chip = false;
	struct kvmkit_stop_info info;
	const char *kernel = NULL;
	const char *initrd = NULL;
	void *initrd_buf = NULL;
	unsigned int timeout_s = 0, incoming_wait_s = 0;
	bool irq_stats = false;
	const char *arm_opt = NULL; /* the first arm64-only option given */
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
		case 'S':
			if (!*optarg) {
				fprintf(stderr, "kvmkit: --snapshot-dir: empty directory name\n");
				return CLI_EXIT_USAGE;
			}
			snapshot_dir = optarg;
			break;
		case 'N':
			incoming = optarg;
			break;
		case 'W':
			if (cli_parse_uint(optarg, 1, 86400, &incoming_wait_s)) {
				fprintf(stderr, "kvmkit: --incoming-timeout: invalid seconds '%s'\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'a':
			cfg.cmdline = optarg;
			break;
		case 's':
			irq_stats = true;
			break;
		case 'L':
			cfg.virtio_mmio_cmdline = true;
			break;
		case 'u':
			cfg.vm.cpu_flags = optarg;
			break;
		case 'D':
			if (!add_disk(&cfg, optarg))
				return CLI_EXIT_USAGE;
			break;
		case 'r':
			cfg.virtio_rng = true;
			break;
		case 'n':
			if (cfg.net_tap) {
				fprintf(stderr, "kvmkit: --net: one network device only\n");
				return CLI_EXIT_USAGE;
			}
			if (!add_net(&cfg, optarg))
				return CLI_EXIT_USAGE;
			break;
		case 'K':
			if (!add_vsock(&cfg, optarg))
				return CLI_EXIT_USAGE;
			break;
		case 'V':
			if (!strcmp(optarg, "edge") || !strcmp(optarg, "level")) {
				cfg.virtio_trigger = strcmp(optarg, "edge") ?
							     KVMKIT_VIRTIO_IRQ_LEVEL :
							     KVMKIT_VIRTIO_IRQ_EDGE;
			} else {
				fprintf(stderr, "kvmkit: --virtio-irq: '%s' is not edge or level\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'C':
			if (!strcmp(optarg, "serial") || !strcmp(optarg, "virtio")) {
				cfg.virtio_console = !strcmp(optarg, "virtio");
			} else {
				fprintf(stderr, "kvmkit: --console: '%s' is not serial or virtio\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
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
		case 'G':
			if (!strcmp(optarg, "auto") || !strcmp(optarg, "v2") ||
			    !strcmp(optarg, "v3")) {
				cfg.gic_version =
					optarg[0] == 'v' ? (unsigned int)(optarg[1] - '0') : 0;
			} else {
				fprintf(stderr, "kvmkit: --gic: '%s' is not v2, v3 or auto\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			arm_opt = arm_opt ? arm_opt : "--gic";
			break;
		case 'Q':
			/* The vGIC checks the rest (a multiple of 32 in 64..992). */
			if (cli_parse_uint(optarg, 1, 4096, &cfg.gic_nr_irqs)) {
				fprintf(stderr, "kvmkit: --gic-irqs: invalid count '%s'\n", optarg);
				return CLI_EXIT_USAGE;
			}
			arm_opt = arm_opt ? arm_opt : "--gic-irqs";
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

	if ((cfg.ndisks || cfg.virtio_rng || cfg.virtio_console) && set_chip && !cfg.irqchip) {
		fprintf(stderr, "kvmkit: --disk, --rng and --console virtio need an irqchip (not "
				"--irqchip none)\n");
		return CLI_EXIT_USAGE;
	}
	if ((cfg.net_tap || cfg.vsock_cid) && set_chip && !cfg.irqchip) {
		fprintf(stderr, "kvmkit: --net and --vsock need an irqchip (not --irqchip none)\n");
		return CLI_EXIT_USAGE;
	}
	if (!arch_only_ok(&cfg, set_chip, arm_opt))
		return CLI_EXIT_USAGE;
	if (incoming) {
		unsigned int adopt = (set_vcpus ? 0 : KVMKIT_INCOMING_ADOPT_VCPUS) |
				     (set_mem ? 0 : KVMKIT_INCOMING_ADOPT_MEM) |
				     (set_chip ? 0 : KVMKIT_INCOMING_ADOPT_IRQCHIP);

		if (restore || kernel || initrd || cfg.cmdline || cfg.testdev) {
			fprintf(stderr, "kvmkit: --incoming: the source sends the guest: no "
					"--restore, --kernel, --initrd, --append or --testdev\n");
			return CLI_EXIT_USAGE;
		}
		cfg.console_fd = STDOUT_FILENO;
		status = run_incoming(&cfg, incoming, adopt, incoming_wait_s, &m);
		if (status)
			return status;
	} else if (restore) {
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
		if (!cfg.kernel_len) {
			fprintf(stderr, "kvmkit: run: no demo guest on this architecture: give "
					"--kernel FILE\n");
			return CLI_EXIT_USAGE;
		}
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
	free(image); /* copied into guest RAM, as the initrd */
	free(initrd_buf);
	image = initrd_buf = NULL;
	if (r) {
		cli_fail(kernel ? kernel : "demo guest");
		return failure_status();
	}
#ifdef __GLIBC__
	/* Freed heap pages stay resident: give them back before the run. */
	malloc_trim(0);
#endif
	if (api_path) {
		status = cli_api_start(m, api_path, &api);
		if (status) {
			kvmkit_machine_destroy(m);
			return status;
		}
	}
	con = console_start(m, snapshot_dir);
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
	return status;
}
