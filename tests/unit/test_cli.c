// SPDX-License-Identifier: MIT
/* The command line without KVM: value parsers, the exit-status table and
 * its stderr line, and the usage texts against the option tables. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <kvmkit/kvmkit.h>
#include "cli.h"

static void test_sizes(void **state)
{
	uint64_t v;

	assert_int_equal(cli_parse_size("256M", &v), 0);
	assert_int_equal(v, 256ull << 20);
	assert_int_equal(cli_parse_size("1G", &v), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(cli_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(cli_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(cli_parse_size("64k", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(cli_parse_size("512B", &v), 0);
	assert_int_equal(v, 512);
	assert_int_equal(cli_parse_size("16777215T", &v), 0);
	assert_int_equal(v, 16777215ull << 40);
	assert_int_equal(cli_parse_size("18446744073709551615", &v), 0);
	assert_int_equal(v, UINT64_MAX);
	assert_int_equal(cli_parse_size("", &v), -EINVAL);
	assert_int_equal(cli_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(cli_parse_size("-1M", &v), -EINVAL);
	assert_int_equal(cli_parse_size("12Q", &v), -EINVAL);
	assert_int_equal(cli_parse_size("M", &v), -EINVAL);
	assert_int_equal(cli_parse_size("1iB", &v), -EINVAL);
	assert_int_equal(cli_parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(cli_parse_size("18446744073709551616", &v), -EINVAL);
	assert_int_equal(cli_parse_size("20000000T", &v), -EINVAL);
	assert_int_equal(cli_parse_size("16777216T", &v), -EINVAL);
}

/* strtoull skips blanks and takes a sign: "-1" would be 2^64 - 1 bytes. */
static void test_sizes_sign_and_blanks(void **state)
{
	static const char *const bad[] = {
		" -1", "\t-1", "\n-1",	  "+-1",   "+1",   "-1",
		" 1",  "1 ",   "1G junk", " 256M", "0x10", "1 G",
	};
	uint64_t v = 42;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (cli_parse_size(bad[i], &v) != -EINVAL)
			fail_msg("cli_parse_size(\"%s\") accepted: %llu", bad[i],
				 (unsigned long long)v);
	}
	assert_int_equal(v, 42); /* untouched on failure */
}

static void test_uints(void **state)
{
	static const char *const bad[] = {
		"0", "9", "2x", "", " 2", "+2", " -1", "\t-1", "-1", "2 "
	};
	unsigned int u = 42;

	assert_int_equal(cli_parse_uint("2", 1, 8, &u), 0);
	assert_int_equal(u, 2);
	assert_int_equal(cli_parse_uint("4294967295", 0, UINT_MAX, &u), 0);
	assert_int_equal(u, UINT_MAX);
	assert_int_equal(cli_parse_uint("4294967296", 0, UINT_MAX, &u), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cli_parse_uint(bad[i], 1, 8, &u) != -EINVAL)
			fail_msg("cli_parse_uint(\"%s\", 1, 8) accepted: %u", bad[i], u);
	/* A negative count must not wrap into a large one that a wide range
	 * accepts. */
	assert_int_equal(cli_parse_uint(" -1", 0, UINT_MAX, &u), -EINVAL);
	assert_int_equal(cli_parse_uint(NULL, 0, 1, &u), -EINVAL);
}

static int exit_of(enum kvmkit_stop_reason reason, int status)
{
	struct kvmkit_stop_info info = { .reason = reason, .status = status, .vcpu = -1 };

	return cli_exit_status(&info);
}

static void test_exit_status_table(void **state)
{
	/* Guest statuses that cannot be mistaken for kvmkit's pass through. */
	static const int pass[] = { 0, 1, 3, 4, 67, 100, CLI_EXIT_GUEST_MAX };
	/* The rest become one code: kvmkit's own (2, 118..125), the shell's
	 * (126, 127, 128 + signal), beyond a byte (256 used to exit 0) and
	 * negative (a debug-exit write of 0x80000000 or more). */
	static const int out[] = { 2,	118, 119,  120,	    121,     122,    123,   124, 125,
				   126, 127, 128,  0xe6,    255,     256,    257,   512, 65536,
				   -1,	-2,  -255, INT_MIN, INT_MAX, 0x7fff, 0x8001 };
	static const struct {
		enum kvmkit_stop_reason reason;
		int code;
	} own[] = {
		{ KVMKIT_STOP_REQUESTED, 0 },
		{ KVMKIT_STOP_GUEST_RESET, CLI_EXIT_GUEST_RESET },
		{ KVMKIT_STOP_GUEST_CRASH, CLI_EXIT_GUEST_CRASH },
		{ KVMKIT_STOP_HOST_ERROR, CLI_EXIT_HOST },
		{ KVMKIT_STOP_NONE, CLI_EXIT_HOST },
		{ KVMKIT_STOP_SHUTDOWN, CLI_EXIT_SHUTDOWN },
		{ KVMKIT_STOP_UNHANDLED_EXIT, CLI_EXIT_FAULT },
		{ KVMKIT_STOP_INTERNAL_ERROR, CLI_EXIT_FAULT },
		{ KVMKIT_STOP_HALT, CLI_EXIT_HALTED },
		{ KVMKIT_STOP_TIMEOUT, CLI_EXIT_TIMEOUT },
	};
	static const int codes[] = { CLI_EXIT_USAGE,  CLI_EXIT_GUEST_RESET, CLI_EXIT_GUEST_CRASH,
				     CLI_EXIT_HOST,   CLI_EXIT_SHUTDOWN,    CLI_EXIT_FAULT,
				     CLI_EXIT_HALTED, CLI_EXIT_TIMEOUT,	    CLI_EXIT_GUEST_RANGE };

	for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++)
		assert_int_equal(exit_of(KVMKIT_STOP_GUEST_EXIT, pass[i]), pass[i]);
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		if (exit_of(KVMKIT_STOP_GUEST_EXIT, out[i]) != CLI_EXIT_GUEST_RANGE)
			fail_msg("guest status %d exits %d, expected %d", out[i],
				 exit_of(KVMKIT_STOP_GUEST_EXIT, out[i]), CLI_EXIT_GUEST_RANGE);
	/* isa-debug-exit's (V << 1) | 1 goes through the same table. */
	assert_int_equal(exit_of(KVMKIT_STOP_GUEST_EXIT, (33 << 1) | 1), 67);
	assert_int_equal(exit_of(KVMKIT_STOP_GUEST_EXIT, (int)((0x80u << 1) | 1)),
			 CLI_EXIT_GUEST_RANGE);
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		assert_int_equal(exit_of(own[i].reason, 77), own[i].code);

	/* kvmkit's codes are distinct, fit in a byte below the shell's 126,
	 * and no guest status passes through as one of them. */
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_true(codes[i] > 0 && codes[i] < 126);
		assert_false(cli_guest_status_passes(codes[i]));
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(codes[i], codes[j]);
	}
}

/* What cli_report_stop() writes for @info (at most 1 KiB). */
static char *report_of(enum kvmkit_stop_reason reason, int status, const char *detail)
{
	struct kvmkit_stop_info info = { .reason = reason, .status = status, .vcpu = -1 };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	snprintf(info.detail, sizeof(info.detail), "%s", detail);
	cli_report_stop(f, &info);
	fclose(f);
	return buf;
}

static unsigned int lines_of(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_exit_status_report(void **state)
{
	char *s;

	/* A status that passes through: nothing to say. */
	s = report_of(KVMKIT_STOP_GUEST_EXIT, 0, "guest power-off, status 0");
	assert_string_equal(s, "");
	free(s);
	s = report_of(KVMKIT_STOP_REQUESTED, 0, "kvmkit_vm_stop");
	assert_string_equal(s, "");
	free(s);

	/* One that does not: one line with what the guest reported. */
	s = report_of(KVMKIT_STOP_GUEST_EXIT, 256, "guest power-off, status 256");
	assert_int_equal(lines_of(s), 1);
	assert_true(!strncmp(s, "kvmkit: ", 8));
	assert_non_null(strstr(s, "out of range"));
	assert_non_null(strstr(s, "guest power-off, status 256"));
	assert_non_null(strstr(s, "exit status 125"));
	free(s);
	s = report_of(KVMKIT_STOP_GUEST_EXIT, 2, "guest power-off, status 2");
	assert_int_equal(lines_of(s), 1);
	assert_non_null(strstr(s, "status 2"));
	free(s);

	s = report_of(KVMKIT_STOP_GUEST_RESET, 0, "vCPU 0: system event: reset");
	assert_int_equal(lines_of(s), 1);
	assert_non_null(strstr(s, "guest reset"));
	free(s);
	s = report_of(KVMKIT_STOP_GUEST_CRASH, 0, "vCPU 1: system event: crash");
	assert_int_equal(lines_of(s), 1);
	assert_non_null(strstr(s, "guest crash"));
	assert_non_null(strstr(s, "vCPU 1"));
	free(s);
	s = report_of(KVMKIT_STOP_HOST_ERROR, 0, "console: EPIPE");
	assert_string_equal(s, "kvmkit: host error: console: EPIPE\n");
	free(s);
}

/* ---- usage texts against the option tables ------------------------------ */

static char *text_of(void (*usage)(FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	usage(f);
	fclose(f);
	return buf;
}

/* True if "--@name" occurs in @text as a whole option name. */
static bool mentions(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(text, "--"); p; p = strstr(p + 1, "--"))
		if (!strncmp(p + 2, name, n) &&
		    !(isalnum((unsigned char)p[2 + n]) || p[2 + n] == '-'))
			return true;
	return false;
}

static bool in_table(const struct option *opts, const char *name, size_t len)
{
	for (; opts->name; opts++)
		if (strlen(opts->name) == len && !strncmp(opts->name, name, len))
			return true;
	return false;
}

/* Every option of @opts is in @text, its short form as "-x, --name". */
static void check_listed(const char *text, const struct option *opts, const char *shortopts,
			 const char *what)
{
	for (; opts->name; opts++) {
		char pair[64];

		if (!mentions(text, opts->name))
			fail_msg("%s does not list --%s", what, opts->name);
		if (opts->val > 0 && opts->val < 128 && strchr(shortopts, opts->val) &&
		    opts->val != ':' && opts->val != '+') {
			snprintf(pair, sizeof(pair), "-%c, --%s", opts->val, opts->name);
			if (!strstr(text, pair))
				fail_msg("%s does not list \"%s\"", what, pair);
		}
	}
}

/* Every "--name" and "-x," in @text is an option of one of @tables. */
static void check_known(const char *text, const struct option *const *tables,
			const char *const *shorts, const char *what)
{
	for (const char *p = text; (p = strchr(p, '-')); p++) {
		bool known = false;

		if (p[1] == '-' && isalpha((unsigned char)p[2]) && (p == text || p[-1] != '-')) {
			size_t len = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");

			for (unsigned int t = 0; tables[t]; t++)
				known |= in_table(tables[t], p + 2, len);
			if (!known)
				fail_msg("%s lists --%.*s, which no option table has", what,
					 (int)len, p + 2);
			p++;
		} else if (isalpha((unsigned char)p[1]) && p[2] == ',' &&
			   (p == text || p[-1] == ' ')) {
			for (unsigned int t = 0; shorts[t]; t++)
				known |= strchr(shorts[t], p[1]) != NULL;
			if (!known)
				fail_msg("%s lists -%c, which no option string has", what, p[1]);
		}
	}
}

static void test_usage_lists_every_option(void **state)
{
	char *run = text_of(cli_run_usage);
	char *top = text_of(cli_usage);
	char *ctl = text_of(cli_ctl_usage);
	const struct option *run_only[] = { cli_run_options, NULL };
	const struct option *all[] = { cli_global_options,   cli_run_options,
				       cli_caps_options,     cli_ctl_options,
				       cli_snapshot_options, cli_query_options,
				       cli_migrate_options,  NULL };
	const struct option *ctl_only[] = { cli_ctl_options, cli_snapshot_options,
					    cli_query_options, cli_migrate_options, NULL };
	const char *run_short[] = { cli_run_shortopts, NULL };
	const char *all_short[] = { cli_global_shortopts,   cli_run_shortopts,
				    cli_caps_shortopts,	    cli_ctl_shortopts,
				    cli_snapshot_shortopts, cli_query_shortopts,
				    cli_migrate_shortopts,  NULL };
	const char *ctl_short[] = { cli_ctl_shortopts, cli_snapshot_shortopts, cli_query_shortopts,
				    cli_migrate_shortopts, NULL };

	check_listed(run, cli_run_options, cli_run_shortopts, "kvmkit run --help");
	check_listed(top, cli_run_options, cli_run_shortopts, "kvmkit --help");
	check_listed(top, cli_global_options, cli_global_shortopts, "kvmkit --help");
	check_listed(top, cli_caps_options, cli_caps_shortopts, "kvmkit --help");
	check_known(run, run_only, run_short, "kvmkit run --help");
	check_known(top, all, all_short, "kvmkit --help");
	/* The control clients: in `kvmkit --help` and in their own. */
	for (unsigned int t = 0; ctl_only[t]; t++) {
		check_listed(top, ctl_only[t], ctl_short[t], "kvmkit --help");
		check_listed(ctl, ctl_only[t], ctl_short[t], "kvmkit query|pause|... --help");
	}
	check_known(ctl, all, all_short, "kvmkit query|pause|... --help");
	for (unsigned int i = 0; i < 6; i++) {
		static const char *const cmds[] = {
			"query SOCKET", "pause SOCKET",	       "resume SOCKET",
			"stop SOCKET",	"snapshot SOCKET DIR", "migrate SOCKET --to ADDR"
		};

		if (!strstr(top, cmds[i]) || !strstr(ctl, cmds[i]))
			fail_msg("usage does not list \"%s\"", cmds[i]);
	}
	assert_true(mentions(top, "api") && mentions(run, "api"));
	/* --testdev is listed (the option of the test-device work). */
	assert_true(mentions(top, "testdev") && mentions(run, "testdev"));
	/* The exit statuses are documented where the user looks. */
	assert_non_null(strstr(run, "125"));
	assert_non_null(strstr(run, "118"));
	assert_non_null(strstr(run, "119"));
	free(run);
	free(top);
	free(ctl);
}

/* The checks above must be able to fail: a text missing an option and a
 * text with an unknown one are both caught. */
static void test_usage_check_can_fail(void **state)
{
	assert_false(mentions("  --kernel FILE\n  --mem-x SIZE\n", "mem"));
	assert_true(mentions("  --kernel FILE\n  --mem SIZE\n", "mem"));
	assert_false(in_table(cli_run_options, "frob", 4));
	assert_true(in_table(cli_run_options, "irq-stats", 9));
	assert_false(in_table(cli_run_options, "irq", 3));
}

/* --net tap=NAME[,vhost] and --vsock cid=N. */
static void test_net_vsock(void **state)
{
	char a[] = "tap=tap0,vhost", b[] = "vhost,tap=t1", c[] = "tap=", d[] = "tap=x,fast",
	     e[] = "vhost", f[] = "tap=a,tap=b";
	const char *tap, *bad;
	uint64_t cid = 0;
	bool vhost;

	assert_int_equal(cli_parse_net(a, &tap, &vhost, &bad), 0);
	assert_string_equal(tap, "tap0");
	assert_true(vhost);
	assert_int_equal(cli_parse_net(b, &tap, &vhost, &bad), 0);
	assert_string_equal(tap, "t1");
	assert_int_equal(cli_parse_net(c, &tap, &vhost, &bad), -EINVAL);
	assert_string_equal(bad, "tap=");
	assert_int_equal(cli_parse_net(d, &tap, &vhost, &bad), -EINVAL);
	assert_string_equal(bad, "fast");
	assert_int_equal(cli_parse_net(e, &tap, &vhost, &bad), -EINVAL);
	assert_null(bad);
	assert_int_equal(cli_parse_net(f, &tap, &vhost, &bad), -EINVAL);
	assert_int_equal(cli_parse_vsock("cid=3", &cid), 0);
	assert_int_equal(cid, 3);
	assert_int_equal(cli_parse_vsock("cid=4294967294", &cid), 0);
	assert_int_equal(cid, 4294967294u);
	assert_int_equal(cli_parse_vsock("cid=2", &cid), -EINVAL);
	assert_int_equal(cli_parse_vsock("cid=4294967295", &cid), -EINVAL);
	assert_int_equal(cli_parse_vsock("cid=", &cid), -EINVAL);
	assert_int_equal(cli_parse_vsock("3", &cid), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_vsock),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_sizes_sign_and_blanks),
		cmocka_unit_test(test_uints),
		cmocka_unit_test(test_exit_status_table),
		cmocka_unit_test(test_exit_status_report),
		cmocka_unit_test(test_usage_lists_every_option),
		cmocka_unit_test(test_usage_check_can_fail),
	};

	return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
