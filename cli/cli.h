/* SPDX-License-Identifier: MIT */
/* The kvmkit command line: shared helpers of the sub-commands. */
#ifndef KVMKIT_CLI_H
#define KVMKIT_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int cmd_run(int argc, char **argv);
int cmd_caps(int argc, char **argv);
/* The control-socket clients (cmd_ctl.c): argv[0] is the command. */
bool cli_is_ctl(const char *cmd);
int cmd_ctl(int argc, char **argv);
struct kvmkit_vm;
struct kvmkit_api_server;
/* `run --api PATH`: starts the server, or prints one line and returns the
 * exit status. */
struct kvmkit_machine;
int cli_api_start(struct kvmkit_machine *m, const char *path, struct kvmkit_api_server **out);

/* ---- exit statuses (exit_status.c) -------------------------------------
 * kvmkit's own codes are 2 and 118..125; a guest status passes through
 * unchanged only in 0..CLI_EXIT_GUEST_MAX without 2, any other becomes
 * CLI_EXIT_GUEST_RANGE. README.md and `kvmkit run --help` list them. */
#define CLI_EXIT_USAGE 2 /* bad input: flags, files, sizes */
#define CLI_EXIT_GUEST_MAX 117 /* highest guest status passed through */
#define CLI_EXIT_GUEST_RESET 118 /* KVM_SYSTEM_EVENT_RESET */
#define CLI_EXIT_GUEST_CRASH 119 /* KVM_SYSTEM_EVENT_CRASH */
#define CLI_EXIT_HOST 120 /* KVM or the host failed */
#define CLI_EXIT_SHUTDOWN 121 /* triple fault */
#define CLI_EXIT_FAULT 122 /* unhandled exit / KVM internal error */
#define CLI_EXIT_HALTED 123 /* every vCPU halted for good */
#define CLI_EXIT_TIMEOUT 124 /* --timeout expired */
#define CLI_EXIT_GUEST_RANGE 125 /* the guest's status cannot pass through */
/* The control clients' own: 0 done, 2 bad arguments, and */
#define CLI_EXIT_API_REFUSED 1 /* the server answered with an error */
#define CLI_EXIT_API_UNREACHABLE 3 /* no server, or no valid reply */

struct kvmkit_stop_info;
/* True if `kvmkit run` exits with the guest's @status unchanged. */
bool cli_guest_status_passes(int status);
/* Maps how a run ended to `kvmkit run`'s exit status. */
int cli_exit_status(const struct kvmkit_stop_info *info);
/* Writes what the user must know about how the run ended (at most one line;
 * nothing for a clean exit) to @f. */
void cli_report_stop(FILE *f, const struct kvmkit_stop_info *info);

/* ---- options and usage (options.c) ------------------------------------- */
extern const struct option cli_global_options[];
extern const char cli_global_shortopts[];
extern const struct option cli_run_options[];
extern const char cli_run_shortopts[];
extern const struct option cli_caps_options[];
extern const char cli_caps_shortopts[];
extern const struct option cli_ctl_options[];
extern const char cli_ctl_shortopts[];
extern const struct option cli_snapshot_options[];
extern const char cli_snapshot_shortopts[];
extern const struct option cli_query_options[];
extern const char cli_query_shortopts[];
extern const struct option cli_migrate_options[];
extern const char cli_migrate_shortopts[];
void cli_usage(FILE *f); /* kvmkit --help: every command and option */
void cli_run_usage(FILE *f); /* kvmkit run --help */
void cli_ctl_usage(FILE *f); /* kvmkit query|pause|... --help */
/* getopt_long() that reports a bad option as one "kvmkit: CMD: ..." line
 * on stderr (CMD "" for the global options) and then returns '?'. Set
 * optind = 0 before the first call for a new argv. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *opts,
	       const char *cmd);

/* ---- values (parse.c) --------------------------------------------------- */
/* Parses "256M", "1G", "4096K", "65536" into bytes: digits first (no sign,
 * no blanks), an optional K/M/G/T suffix (binary, "iB"/"B" allowed);
 * -EINVAL on anything else or on overflow. */
int cli_parse_size(const char *s, uint64_t *out);
/* Parses a decimal unsigned int in [min, max], digits only. */
int cli_parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out);
/* --disk PATH[,ro]: cuts @arg at the first comma (PATH has none) and
 * reads the options after it. -EINVAL for an empty path or an unknown
 * option (then *bad points at it). */
int cli_parse_disk(char *arg, bool *read_only, const char **bad);
/* --net tap=NAME[,vhost]: *tap points into @arg (cut at the commas).
 * -EINVAL without a tap or with an unknown option (then *bad names it). */
int cli_parse_net(char *arg, const char **tap, bool *vhost, const char **bad);
/* --vsock cid=N, N in 3 .. 2^32-2. */
int cli_parse_vsock(const char *arg, uint64_t *cid);

struct console;
/* Feeds stdin to @m's UART (raw terminal while running): Ctrl-A x stops
 * the VM, Ctrl-A s snapshots it into @snapshot_dir (NULL: refused with a
 * line on stderr), Ctrl-A Ctrl-A sends one Ctrl-A. NULL on failure. */
struct console *console_start(struct kvmkit_machine *m, const char *snapshot_dir);
void console_stop(struct console *c);

/* Prints "kvmkit: <what>: <kvmkit_strerror()>" to stderr. */
void cli_fail(const char *what);

#endif
