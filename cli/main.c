// SPDX-License-Identifier: MIT
/* kvmkit: the command-line VMM. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvmkit/kvmkit.h>

#include "cli.h"

void cli_fail(const char *what)
{
	fprintf(stderr, "kvmkit: %s: %s\n", what, kvmkit_strerror());
}

int main(int argc, char **argv)
{
	int c, i;

	/* Keep fds 0-2 taken, so that no KVM fd ends up as "stdin". */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return CLI_EXIT_HOST;

	/* Global options stop at the command ('+'): its options are its own. */
	optind = 0;
	while ((c = cli_getopt(argc, argv, cli_global_shortopts, cli_global_options, "")) != -1) {
		enum kvmkit_log_level l;

		switch (c) {
		case 'l':
			if (kvmkit_log_parse_level(optarg, &l)) {
				fprintf(stderr,
					"kvmkit: --log: unknown level '%s' (error, warn, info, debug, trace)\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			kvmkit_log_set_level(l);
			break;
		case 'h':
			cli_usage(stdout);
			return 0;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	i = optind;
	if (i >= argc) {
		cli_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[i], "run"))
		return cmd_run(argc - i, argv + i);
	if (!strcmp(argv[i], "caps"))
		return cmd_caps(argc - i, argv + i);
	if (cli_is_ctl(argv[i]))
		return cmd_ctl(argc - i, argv + i);
	if (!strcmp(argv[i], "version")) {
		printf("kvmkit %s\n", kvmkit_version());
		return 0;
	}
	if (!strcmp(argv[i], "help")) {
		cli_usage(stdout);
		return 0;
	}
	fprintf(stderr, "kvmkit: unknown command '%s' (see 'kvmkit help')\n", argv[i]);
	return CLI_EXIT_USAGE;
}
