// SPDX-License-Identifier: MIT
/*
 * `kvmkit run`'s exit status. The library only says why a run stopped
 * (enum kvmkit_stop_reason); the numbers are the command's. A guest status
 * passes through only where it cannot be mistaken for one of kvmkit's own
 * codes (2 and 118..125), so a script can always tell "the guest said N"
 * from "kvmkit failed". The table is in README.md and `kvmkit run --help`.
 */
#include <stdio.h>

#include <kvmkit/kvmkit.h>

#include "cli.h"

bool cli_guest_status_passes(int status)
{
	return status >= 0 && status <= CLI_EXIT_GUEST_MAX && status != CLI_EXIT_USAGE;
}

int cli_exit_status(const struct kvmkit_stop_info *info)
{
	switch (info->reason) {
	case KVMKIT_STOP_GUEST_EXIT:
		return cli_guest_status_passes(info->status) ? info->status : CLI_EXIT_GUEST_RANGE;
	case KVMKIT_STOP_REQUESTED:
		return 0; /* Ctrl-A x, or a library user's kvmkit_vm_stop() */
	case KVMKIT_STOP_MIGRATED:
		return 0; /* the guest goes on elsewhere */
	case KVMKIT_STOP_GUEST_RESET:
		return CLI_EXIT_GUEST_RESET;
	case KVMKIT_STOP_GUEST_CRASH:
		return CLI_EXIT_GUEST_CRASH;
	case KVMKIT_STOP_SHUTDOWN:
		return CLI_EXIT_SHUTDOWN;
	case KVMKIT_STOP_UNHANDLED_EXIT:
	case KVMKIT_STOP_INTERNAL_ERROR:
		return CLI_EXIT_FAULT;
	case KVMKIT_STOP_HALT:
		return CLI_EXIT_HALTED;
	case KVMKIT_STOP_TIMEOUT:
		return CLI_EXIT_TIMEOUT;
	case KVMKIT_STOP_HOST_ERROR:
	default:
		return CLI_EXIT_HOST;
	}
}

void cli_report_stop(FILE *f, const struct kvmkit_stop_info *info)
{
	switch (info->reason) {
	case KVMKIT_STOP_GUEST_EXIT:
		if (cli_guest_status_passes(info->status))
			return;
		/* The detail holds what the guest wrote (the debug-exit value
		 * or the power-off status), before any shift or truncation. */
		fprintf(f,
			"kvmkit: guest status out of range: %s (status %d, passed through only in 0..%d except %d; exit status %d)\n",
			info->detail, info->status, CLI_EXIT_GUEST_MAX, CLI_EXIT_USAGE,
			CLI_EXIT_GUEST_RANGE);
		return;
	case KVMKIT_STOP_REQUESTED:
		return;
	case KVMKIT_STOP_MIGRATED:
		fprintf(f, "kvmkit: the VM %s; it runs there now\n", info->detail);
		return;
	case KVMKIT_STOP_TIMEOUT:
		fprintf(f, "kvmkit: timeout: %s\n", info->detail);
		return;
	case KVMKIT_STOP_HOST_ERROR:
		fprintf(f, "kvmkit: host error: %s\n", info->detail);
		return;
	default:
		fprintf(f, "kvmkit: guest stopped: %s: %s\n", kvmkit_stop_reason_name(info->reason),
			info->detail);
	}
}
