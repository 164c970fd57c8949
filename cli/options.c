// SPDX-License-Identifier: MIT
/*
 * The command line's option tables, their usage texts and getopt's errors.
 * The tables and the texts sit side by side so that an option is added to
 * both at once; tests/unit/test_cli.c fails when they disagree.
 */
#include <stdio.h>
#include <string.h>

#include <kvmkit/kvmkit.h>

#include "cli.h"

const struct option cli_global_options[] = {
	{ "log", required_argument, NULL, 'l' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};
const char cli_global_shortopts[] = "+:h";

const struct option cli_run_options[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "mem", required_argument, NULL, 'm' },
	{ "vcpus", required_argument, NULL, 'c' },
	{ "timeout", required_argument, NULL, 't' },
	{ "irqchip", required_argument, NULL, 'i' },
	{ "irq-stats", no_argument, NULL, 's' },
	{ "cpu", required_argument, NULL, 'u' },
	{ "initrd", required_argument, NULL, 'I' },
	{ "append", required_argument, NULL, 'a' },
	{ "testdev", required_argument, NULL, 'T' },
	{ "api", required_argument, NULL, 'A' },
	{ "restore", required_argument, NULL, 'R' },
	{ "snapshot-dir", required_argument, NULL, 'S' },
	{ "incoming", required_argument, NULL, 'N' },
	{ "incoming-timeout", required_argument, NULL, 'W' },
	{ "disk", required_argument, NULL, 'D' },
	{ "rng", no_argument, NULL, 'r' },
	{ "console", required_argument, NULL, 'C' },
	{ "virtio-irq", required_argument, NULL, 'V' },
	{ "net", required_argument, NULL, 'n' },
	{ "vsock", required_argument, NULL, 'K' },
	{ "virtio-mmio-cmdline", no_argument, NULL, 'L' },
	{ "gic", required_argument, NULL, 'G' },
	{ "gic-irqs", required_argument, NULL, 'Q' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};
const char cli_run_shortopts[] = ":k:m:c:t:h";

const struct option cli_caps_options[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};
const char cli_caps_shortopts[] = ":h";

/* The control clients: pause, resume and stop take no option but --help;
 * query has --json, snapshot --paused, migrate --to. */
const struct option cli_ctl_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};
const char cli_ctl_shortopts[] = ":h";

const struct option cli_snapshot_options[] = {
	{ "paused", no_argument, NULL, 'P' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};
const char cli_snapshot_shortopts[] = ":h";

const struct option cli_query_options[] = {
	{ "json", no_argument, NULL, 'j' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};
const char cli_query_shortopts[] = ":h";

const struct option cli_migrate_options[] = {
	{ "to", required_argument, NULL, 't' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};
const char cli_migrate_shortopts[] = ":h";

/* What --kernel, --initrd and --append take on this architecture. */
#if defined(__aarch64__)
#define KERNEL_TEXT                                                                     \
	"  -k, --kernel FILE      guest image: AArch64 ELF64, or a Linux arm64 Image\n" \
	"                         (required: there is no demo guest on arm64)\n"
#define INITRD_TEXT "      --initrd FILE      the initrd of a Linux Image\n"
#define APPEND_TEXT "      --append \"ARGS\"    the command line of a Linux Image\n"
#define VIRTIO_BASE_TEXT "0x0a000000"
#else
#define KERNEL_TEXT                                                                   \
	"  -k, --kernel FILE      guest image: Linux bzImage or PVH vmlinux, ELF64\n" \
	"                         x86_64, or Multiboot v1 ELF32 (default: the\n"     \
	"                         embedded demo guest)\n"
#define INITRD_TEXT "      --initrd FILE      Linux initrd, or Multiboot module 0\n"
#define APPEND_TEXT                                                       \
	"      --append \"ARGS\"    Linux command line, or Multiboot command line\n" \
	"                         after the kernel path\n"
#define VIRTIO_BASE_TEXT "0xd0000000"
#endif

/* One line per option of cli_run_options, in the same order (kept one
 * per line around the per-architecture macros). */
/* clang-format off */
static const char run_options_text[] =
	KERNEL_TEXT
	"  -m, --mem SIZE         guest RAM, e.g. 256M, 1G (default 128M)\n"
	"  -c, --vcpus N          vCPUs, 1..4096 (default 1)\n"
	"  -t, --timeout SEC      stop the guest after SEC seconds (exit status 124)\n"
	"      --irqchip MODE     kernel (default), split (IOAPIC, PIC, PIT in kvmkit)\n"
	"                         or none\n"
	"      --irq-stats        per-GSI interrupt counts on stderr at exit\n"
	"      --cpu +F,-F,...    switch CPU features on or off (names: run --help)\n"
	INITRD_TEXT
	APPEND_TEXT
	"      --testdev on|off   the test device (default: on for Multiboot images,\n"
	"                         off for others)\n"
	"      --api PATH         serve the control API on unix socket PATH\n"
	"                         (kvmkit query|pause|resume|stop|snapshot|migrate\n"
	"                         PATH; docs/API.md)\n"
	"      --restore DIR      continue the guest saved in DIR (kvmkit snapshot);\n"
	"                         --vcpus, --mem, --irqchip default to the snapshot's\n"
	"                         and must match it; no --kernel/--initrd/--append\n"
	"      --snapshot-dir DIR Ctrl-A s on the console pauses the VM, saves it into\n"
	"                         DIR/snapshot-N (the first N free; for --restore)\n"
	"                         and resumes it; without this option Ctrl-A s is\n"
	"                         refused\n"
	"      --incoming ADDR    wait on unix:PATH or tcp:HOST:PORT (port 0: any) for\n"
	"                         one `kvmkit migrate` and run the guest it sends;\n"
	"                         --vcpus, --mem, --irqchip default to the source's\n"
	"      --incoming-timeout SEC\n"
	"                         give up (status 124) when no source connected\n"
	"                         within SEC seconds (default: wait for ever)\n"
	"      --disk PATH[,ro]   a virtio-blk disk on a raw image (up to 8; ro:\n"
	"                         read-only), virtio-mmio at " VIRTIO_BASE_TEXT " + n * 0x1000\n"
	"      --rng              a virtio-rng device (the first virtio-mmio window)\n"
	"      --console serial|virtio\n"
	"                         the terminal on the UART (default) or on a\n"
	"                         virtio-console after the disks (Linux: hvc0)\n"
	"      --virtio-irq edge|level\n"
	"                         the virtio devices' interrupts: irqfd pulses (default)\n"
	"                         or level with resample\n"
	"      --net tap=NAME[,vhost]\n"
	"                         virtio-net on tap NAME (after the console); vhost:\n"
	"                         packets moved by /dev/vhost-net\n"
	"      --vsock cid=N      virtio-vsock through /dev/vhost-vsock, guest cid N\n"
	"      --virtio-mmio-cmdline\n"
	"                         Linux: also list the virtio-mmio devices as\n"
	"                         virtio_mmio.device= on the command line\n"
	"      --gic v2|v3|auto   arm64: the vGIC version (auto: GICv3, else GICv2)\n"
	"      --gic-irqs N       arm64: the vGIC's interrupts, a multiple of 32 in\n"
	"                         64..992 (default 256)\n"
	"  -h, --help             print usage\n";
/* clang-format on */

/* The control clients, for `kvmkit --help` and `kvmkit CMD --help`. */
static const char ctl_text[] =
	"  query SOCKET [--json]  state, vCPUs, memory and interrupts of the VM served\n"
	"                         on SOCKET by `kvmkit run --api` (--json: the reply)\n"
	"  pause SOCKET           pause the VM (returns once every vCPU is parked)\n"
	"  resume SOCKET          resume a paused VM\n"
	"  stop SOCKET            stop the VM (its `kvmkit run` exits 0)\n"
	"  snapshot SOCKET DIR [--paused]\n"
	"                         pause the VM, save it into DIR (new or empty), resume\n"
	"                         it (--paused: leave it paused)\n"
	"  migrate SOCKET --to ADDR\n"
	"                         move the running VM to the `kvmkit run --incoming`\n"
	"                         at ADDR (unix:PATH, tcp:HOST:PORT); prints the\n"
	"                         downtime; on failure the VM runs on here\n";

static const char ctl_exit_text[] =
	"control client exit status: 0 done, 1 the VM refused (stderr says why),\n"
	"2 bad arguments, 3 no server answered on SOCKET\n";

static const char run_exit_text[] =
	"exit status:\n"
	"  0..117   the guest's own status except 2: power-off status V, or\n"
	"           (V << 1) | 1 for isa-debug-exit\n"
	"  2        bad input (one line on stderr)\n"
	"  118      the guest asked for a reset, e.g. a Linux reboot (kvmkit does not\n"
	"           reboot it)\n"
	"  119      the guest reported a crash (a Linux panic, through pvpanic)\n"
	"  120      KVM or the host failed\n"
	"  121      triple fault\n"
	"  122      unhandled exit or KVM internal error\n"
	"  123      every vCPU halted for good\n"
	"  124      --timeout expired\n"
	"  125      the guest's status was 2 or outside 0..117 (stderr says which)\n";

void cli_run_usage(FILE *f)
{
	fprintf(f,
		"usage: kvmkit run [OPTIONS]\n"
		"boots a guest on kvmkit's standard machine\n"
		"\n"
		"options:\n"
		"%s"
		"\n"
		"console: stdin goes to the guest's UART; Ctrl-A x stops the VM\n"
		"CPU features for --cpu:",
		run_options_text);
#if defined(__x86_64__)
	for (unsigned int i = 0; kvmkit_cpu_feature_name(i); i++)
		fprintf(f, " %s", kvmkit_cpu_feature_name(i));
	fprintf(f, "\n(arm64 only: --gic, --gic-irqs)");
#else
	fprintf(f, " pmu sve (arm64: off unless named, refused where KVM has\n"
		   "not got them; x86_64 only: --irqchip split, --testdev,\n"
		   "--virtio-mmio-cmdline)");
#endif
	fprintf(f, "\n\n%s", run_exit_text);
}

void cli_usage(FILE *f)
{
	fprintf(f,
		"usage: kvmkit [--log LEVEL] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  run [OPTIONS]          boot a guest (exit statuses: kvmkit run --help)\n"
		"  caps [--json]          KVM capabilities of this host (--json: as JSON)\n"
		"%s"
		"  version                print the version\n"
		"  help                   print usage\n"
		"\n"
		"global options:\n"
		"      --log LEVEL        error, warn, info, debug or trace (also $KVMKIT_LOG)\n"
		"  -h, --help             print usage\n"
		"\n"
		"run options:\n"
		"%s"
		"\n"
		"%s",
		ctl_text, run_options_text, ctl_exit_text);
}

void cli_ctl_usage(FILE *f)
{
	fprintf(f,
		"usage: kvmkit COMMAND SOCKET [ARGS]\n"
		"drives a VM through the control socket of `kvmkit run --api SOCKET`\n"
		"\n"
		"commands:\n"
		"%s"
		"\n"
		"options:\n"
		"  -h, --help             print usage\n"
		"\n"
		"%s",
		ctl_text, ctl_exit_text);
}

/* Long option of @opts whose short value is @val, or NULL. */
static const struct option *by_val(const struct option *opts, int val)
{
	for (; opts->name; opts++)
		if (opts->val == val)
			return opts;
	return NULL;
}

/* How many options of @opts start with the @len bytes of @name. */
static unsigned int prefix_matches(const struct option *opts, const char *name, size_t len)
{
	unsigned int n = 0;

	for (; opts->name; opts++)
		if (!strncmp(opts->name, name, len))
			n++;
	return n;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *opts,
	       const char *cmd)
{
	const char *sep = *cmd ? " " : "";
	const struct option *o;
	const char *arg;
	int c;

	/* getopt's own messages would start with argv[0] (here "run"), not
	 * "kvmkit:": print them ourselves, as one line. */
	opterr = 0;
	c = getopt_long(argc, argv, shortopts, opts, NULL);
	if (c != '?' && c != ':')
		return c;
	/* For a long option, getopt has moved optind past it. */
	arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	o = optopt ? by_val(opts, optopt) : NULL;
	fprintf(stderr, "kvmkit: %s%s", cmd, *cmd ? ": " : "");
	if (c == ':' && o) {
		fprintf(stderr, "--%s needs an argument\n", o->name);
	} else if (c == ':') {
		fprintf(stderr, "-%c needs an argument\n", optopt);
	} else if (o && !strncmp(arg, "--", 2) && strchr(arg, '=')) {
		fprintf(stderr, "--%s takes no argument\n", o->name);
	} else if (optopt) {
		fprintf(stderr, "unknown option '-%c' (see 'kvmkit %s%s--help')\n", optopt, cmd,
			sep);
	} else {
		bool is_long = !strncmp(arg, "--", 2);
		size_t len = is_long ? 2 + strcspn(arg + 2, "=") : strlen(arg);
		bool ambiguous = is_long && prefix_matches(opts, arg + 2, len - 2) > 1;

		fprintf(stderr, "%s option '%.*s' (see 'kvmkit %s%s--help')\n",
			ambiguous ? "ambiguous" : "unknown", (int)len, arg, cmd, sep);
	}
	return '?';
}
