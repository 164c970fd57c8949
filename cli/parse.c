// SPDX-License-Identifier: MIT
/* Parsers for command-line values (sizes, counts). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* strtoull/strtoul skip leading blanks and accept a sign ("-1" is
 * ULLONG_MAX, not an error): a value must start with a digit instead. */
static int starts_with_digit(const char *s)
{
	return s && *s >= '0' && *s <= '9';
}

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	if (!starts_with_digit(s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' && shift)
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int cli_parse_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	char *end;
	unsigned long v;

	if (!starts_with_digit(s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

int cli_parse_disk(char *arg, bool *read_only, const char **bad)
{
	char *opt = strchr(arg, ',');

	*read_only = false;
	*bad = NULL;
	if (opt)
		*opt++ = 0;
	while (opt) {
		char *next = strchr(opt, ',');

		if (next)
			*next++ = 0;
		if (strcmp(opt, "ro")) {
			*bad = opt;
			return -EINVAL;
		}
		*read_only = true;
		opt = next;
	}
	return *arg ? 0 : -EINVAL;
}

int cli_parse_net(char *arg, const char **tap, bool *vhost, const char **bad)
{
	char *opt = arg;

	*tap = NULL;
	*vhost = false;
	*bad = NULL;
	while (opt) {
		char *next = strchr(opt, ',');

		if (next)
			*next++ = 0;
		if (!strncmp(opt, "tap=", 4) && opt[4] && !*tap) {
			*tap = opt + 4;
		} else if (!strcmp(opt, "vhost")) {
			*vhost = true;
		} else {
			*bad = opt;
			return -EINVAL;
		}
		opt = next;
	}
	return *tap ? 0 : -EINVAL;
}

int cli_parse_vsock(const char *arg, uint64_t *cid)
{
	unsigned int v;

	/* 0-2 are the hypervisor, local and host; 2^32-1 is "any". */
	if (strncmp(arg, "cid=", 4) || cli_parse_uint(arg + 4, 3, 0xfffffffeu, &v))
		return -EINVAL;
	*cid = v;
	return 0;
}
