/* SPDX-License-Identifier: MIT */
/* The kvmkit command line: shared helpers of the sub-commands. */
#ifndef KVMKIT_CLI_H
#define KVMKIT_CLI_H

#include <stdint.h>

int cmd_run(int argc, char **argv);
int cmd_caps(int argc, char **argv);

/* Parses "256M", "1G", "4096K", "65536" into bytes; -EINVAL on junk or
 * overflow. */
int cli_parse_size(const char *s, uint64_t *out);
/* Parses a decimal unsigned int in [min, max]. */
int cli_parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out);
struct console;
struct kvmkit_vm;
struct kvmkit_uart;
/* Feeds stdin to the UART (raw terminal while running); NULL on failure. */
struct console *console_start(struct kvmkit_vm *vm, struct kvmkit_uart *uart);
void console_stop(struct console *c);

/* Prints "kvmkit: <what>: <kvmkit_strerror()>" to stderr. */
void cli_fail(const char *what);

#endif
