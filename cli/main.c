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

static void usage(FILE *f)
{
	fprintf(f, "usage: kvmkit [--log LEVEL] COMMAND [ARGS]\n"
		   "\n"
		   "commands:\n"
		   "  run [--kernel FILE] [--mem SIZE] [--vcpus N] [--timeout SEC]\n"
		   "        boot an ELF64 guest (default: the embedded demo guest)\n"
		   "  caps [--json]   KVM capabilities of this host\n"
		   "  version         print the version\n"
		   "\n"
		   "LEVEL is error, warn, info, debug or trace (also $KVMKIT_LOG).\n");
}

void cli_fail(const char *what)
{
	fprintf(stderr, "kvmkit: %s: %s\n", what, kvmkit_strerror());
}

int main(int argc, char **argv)
{
	int i = 1;

	/* Keep fds 0-2 taken, so that no KVM fd ends up as "stdin". */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return 120;

	while (i < argc && argv[i][0] == '-') {
		if (!strcmp(argv[i], "--log") && i + 1 < argc) {
			enum kvmkit_log_level l;

			if (kvmkit_log_parse_level(argv[i + 1], &l)) {
				fprintf(stderr, "kvmkit: --log: unknown level '%s' (error, warn, info, debug, trace)\n",
					argv[i + 1]);
				return 2;
			}
			kvmkit_log_set_level(l);
			i += 2;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "kvmkit: unknown option '%s' (see 'kvmkit help')\n", argv[i]);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[i], "run"))
		return cmd_run(argc - i, argv + i);
	if (!strcmp(argv[i], "caps"))
		return cmd_caps(argc - i, argv + i);
	if (!strcmp(argv[i], "version")) {
		printf("kvmkit %s\n", kvmkit_version());
		return 0;
	}
	if (!strcmp(argv[i], "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "kvmkit: unknown command '%s' (see 'kvmkit help')\n", argv[i]);
	return 2;
}
