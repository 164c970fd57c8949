// SPDX-License-Identifier: MIT
/*
 * The control socket from the command line: `kvmkit run --api PATH` starts
 * the library's server (src/api), and `kvmkit query|pause|resume|stop|
 * snapshot|migrate PATH` are thin clients of it, one request each. Their
 * exit status says who failed: 1 the VM refused (the server's error on
 * stderr), 2 bad arguments, 3 nothing answered on PATH.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include <kvmkit/kvmkit.h>

#include "cli.h"

/* Long enough for a pause or stop to wait for busy vCPUs; a server that
 * has not answered by then is reported rather than waited on forever. */
#define CTL_TIMEOUT_MS 60000
/* A migration copies all of guest RAM, maybe several times: the library's
 * own time limits (30 s without progress) end a stalled one first. */
#define CTL_MIGRATE_TIMEOUT_MS (30 * 60000)

static const struct ctl_cmd {
	const char *name;
	const struct option *opts;
	const char *shortopts;
	bool dir; /* a second positional argument: DIR (snapshot) */
} ctl_cmds[] = {
	{ "query", cli_query_options, cli_query_shortopts, false },
	{ "pause", cli_ctl_options, cli_ctl_shortopts, false },
	{ "resume", cli_ctl_options, cli_ctl_shortopts, false },
	{ "stop", cli_ctl_options, cli_ctl_shortopts, false },
	{ "snapshot", cli_snapshot_options, cli_snapshot_shortopts, true },
	{ "migrate", cli_migrate_options, cli_migrate_shortopts, false },
};

static const struct ctl_cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (!strcmp(name, ctl_cmds[i].name))
			return &ctl_cmds[i];
	return NULL;
}

bool cli_is_ctl(const char *cmd)
{
	return find_cmd(cmd) != NULL;
}

int cli_api_start(struct kvmkit_machine *m, const char *path, struct kvmkit_api_server **out)
{
	const struct kvmkit_error *e;
	struct kvmkit_api_config cfg;

	kvmkit_api_config_init(&cfg);
	cfg.path = path;
	if (!kvmkit_api_server_create_machine(m, &cfg, out))
		return 0;
	e = kvmkit_last_error();
	if (e->kind == KVMKIT_ERR_SYSCALL && e->reason[0])
		fprintf(stderr, "kvmkit: --api: %s: %s\n", e->reason, strerror(e->err));
	else
		fprintf(stderr, "kvmkit: --api: %s\n", kvmkit_strerror());
	/* A path that cannot hold the socket is bad input; the rest is the host's. */
	switch (e->kind == KVMKIT_ERR_SYSCALL ? e->err : e->kind == KVMKIT_ERR_PARAM ? EINVAL : 0) {
	case EINVAL:
	case EEXIST:
	case EADDRINUSE:
	case ENOENT:
	case ENOTDIR:
	case EACCES:
	case EPERM:
	case EROFS:
	case ENAMETOOLONG:
		return CLI_EXIT_USAGE;
	default:
		return CLI_EXIT_HOST;
	}
}

/* The server resolves a relative DIR from its own working directory, not
 * the client's: send it absolute. */
static char *absolute(const char *dir)
{
	char *cwd, *out = NULL;

	if (dir[0] == '/')
		return strdup(dir);
	cwd = getcwd(NULL, 0);
	if (cwd && asprintf(&out, "%s/%s", cwd, dir) < 0)
		out = NULL;
	free(cwd);
	return out;
}

/* The request line, or NULL (out of memory). */
static char *build_request(const struct ctl_cmd *cmd, const char *dir, const char *to, bool paused)
{
	struct json_object *o = json_object_new_object();
	char *abs = NULL, *line = NULL;
	int bad = !o;

	if (o)
		bad |= json_object_object_add(o, "cmd", json_object_new_string(cmd->name));
	if (o && dir) {
		abs = absolute(dir);
		bad |= !abs || json_object_object_add(o, "dir", json_object_new_string(abs));
	}
	if (o && to)
		bad |= json_object_object_add(o, "to", json_object_new_string(to));
	if (o && paused)
		bad |= json_object_object_add(o, "resume", json_object_new_boolean(0));
	if (!bad)
		line = strdup(json_object_to_json_string_ext(
			o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	free(abs);
	return line;
}

static struct json_object *field(struct json_object *o, const char *key, enum json_type type)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

static uint64_t num(struct json_object *o, const char *key)
{
	struct json_object *v = field(o, key, json_type_int);

	return v ? json_object_get_uint64(v) : 0;
}

static void print_size(uint64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	int u = -1;

	while (u < 3 && bytes && !(bytes & 1023)) {
		bytes >>= 10;
		u++;
	}
	if (u < 0)
		printf("%llu bytes", (unsigned long long)bytes);
	else
		printf("%llu %s", (unsigned long long)bytes, units[u]);
}

static void print_query(struct json_object *r)
{
	struct json_object *vcpus = field(r, "vcpus", json_type_array);
	struct json_object *mem = field(r, "memory", json_type_object);
	struct json_object *irq = field(r, "irqchip", json_type_object);
	struct json_object *regions = mem ? field(mem, "regions", json_type_array) : NULL;
	struct json_object *gsis = irq ? field(irq, "gsis", json_type_array) : NULL;
	struct json_object *v;
	size_t n;

	v = field(r, "state", json_type_string);
	printf("state: %s\n", v ? json_object_get_string(v) : "?");
	printf("vcpus: %llu\n", (unsigned long long)num(r, "vcpu_count"));
	for (size_t i = 0; vcpus && i < json_object_array_length(vcpus); i++) {
		struct json_object *c = json_object_array_get_idx(vcpus, i);

		printf("  vcpu %llu: runs %llu, exits: io %llu, mmio %llu, hlt %llu, intr %llu, other %llu\n",
		       (unsigned long long)num(c, "id"), (unsigned long long)num(c, "runs"),
		       (unsigned long long)num(c, "exits_io"),
		       (unsigned long long)num(c, "exits_mmio"),
		       (unsigned long long)num(c, "exits_hlt"),
		       (unsigned long long)num(c, "exits_intr"),
		       (unsigned long long)num(c, "exits_other"));
	}
	n = regions ? json_object_array_length(regions) : 0;
	printf("memory: ");
	print_size(mem ? num(mem, "total") : 0);
	printf(" in %zu region%s\n", n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(regions, i);
		uint64_t gpa = num(e, "gpa"), size = num(e, "size");
		struct json_object *ro = field(e, "readonly", json_type_boolean);

		printf("  slot %llu: 0x%llx-0x%llx, ", (unsigned long long)num(e, "slot"),
		       (unsigned long long)gpa, (unsigned long long)(gpa + size - 1));
		print_size(size);
		printf("%s\n", ro && json_object_get_boolean(ro) ? ", read-only" : "");
	}
	v = irq ? field(irq, "mode", json_type_string) : NULL;
	printf("irqchip: %s\n", v ? json_object_get_string(v) : "?");
	n = gsis ? json_object_array_length(gsis) : 0;
	if (!n && v && strcmp(json_object_get_string(v), "none"))
		printf("  no GSI has been used yet\n");
	for (size_t i = 0; i < n; i++) {
		struct json_object *g = json_object_array_get_idx(gsis, i);

		printf("  gsi %llu: asserts %llu, delivered %llu, coalesced %llu, masked %llu, irqfd signals %llu\n",
		       (unsigned long long)num(g, "gsi"), (unsigned long long)num(g, "asserts"),
		       (unsigned long long)num(g, "deliveries"),
		       (unsigned long long)num(g, "coalesced"),
		       (unsigned long long)num(g, "masked"),
		       (unsigned long long)num(g, "irqfd_signals"));
	}
}

/* Prints what the reply says; returns the exit status. */
static int show_reply(const struct ctl_cmd *cmd, const char *line, bool json)
{
	struct json_object *r = json_tokener_parse(line);
	struct json_object *ok = r ? field(r, "ok", json_type_boolean) : NULL;
	struct json_object *err, *msg, *state;
	const char *text;
	int status = 0;
	size_t n;

	if (!ok) {
		fprintf(stderr, "kvmkit: %s: the server's reply is not a kvmkit reply: %.80s\n",
			cmd->name, line);
		status = CLI_EXIT_API_UNREACHABLE;
	} else if (!json_object_get_boolean(ok)) {
		err = field(r, "error", json_type_object);
		msg = err ? field(err, "message", json_type_string) : NULL;
		text = msg ? json_object_get_string(msg) : "the server refused (no message)";
		n = strlen(cmd->name);
		/* Messages start with the operation: do not name it twice. */
		if (!strncmp(text, cmd->name, n) && text[n] == ':')
			fprintf(stderr, "kvmkit: %s\n", text);
		else
			fprintf(stderr, "kvmkit: %s: %s\n", cmd->name, text);
		status = CLI_EXIT_API_REFUSED;
	} else if (json) {
		printf("%s\n", line);
	} else if (!strcmp(cmd->name, "query")) {
		print_query(r);
	} else if (!strcmp(cmd->name, "migrate")) {
		state = field(r, "to", json_type_string);
		printf("migrated to %s: downtime %llu us (%llu us seen by the source), "
		       "%llu bytes, %llu passes, %llu ms\n",
		       state ? json_object_get_string(state) : "?",
		       (unsigned long long)num(r, "downtime_us"),
		       (unsigned long long)num(r, "source_downtime_us"),
		       (unsigned long long)num(r, "bytes"), (unsigned long long)num(r, "passes"),
		       (unsigned long long)(num(r, "total_us") / 1000));
		state = field(r, "state", json_type_string);
		printf("state: %s\n", state ? json_object_get_string(state) : "?");
	} else {
		state = field(r, "state", json_type_string);
		printf("state: %s\n", state ? json_object_get_string(state) : "?");
	}
	json_object_put(r);
	return status;
}

static int usage_error(const struct ctl_cmd *cmd, const char *what, const char *arg)
{
	fprintf(stderr, "kvmkit: %s: %s%s%s%s (see 'kvmkit %s --help')\n", cmd->name, what,
		arg ? " '" : "", arg ? arg : "", arg ? "'" : "", cmd->name);
	return CLI_EXIT_USAGE;
}

int cmd_ctl(int argc, char **argv)
{
	const struct ctl_cmd *cmd = find_cmd(argv[0]);
	const char *path, *dir = NULL, *to = NULL;
	const struct kvmkit_error *e;
	bool json = false, paused = false;
	char *req, *reply = NULL;
	int c, r, status;

	optind = 0;
	while ((c = cli_getopt(argc, argv, cmd->shortopts, cmd->opts, cmd->name)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 't':
			to = optarg;
			break;
		case 'P':
			paused = true;
			break;
		case 'h':
			cli_ctl_usage(stdout);
			return 0;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error(cmd, "missing SOCKET", NULL);
	path = argv[optind++];
	if (cmd->dir && optind >= argc)
		return usage_error(cmd, "missing DIR", NULL);
	if (cmd->dir)
		dir = argv[optind++];
	if (optind < argc)
		return usage_error(cmd, "unexpected argument", argv[optind]);
	if (!strcmp(cmd->name, "migrate") && !to)
		return usage_error(cmd, "--to ADDR is required", NULL);
	if ((dir && !*dir) || (to && !*to))
		return usage_error(cmd, dir ? "empty DIR" : "empty --to", NULL);
	if (to && kvmkit_migrate_check_address(to, false)) {
		fprintf(stderr, "kvmkit: migrate: --to '%s': %s\n", to,
			kvmkit_last_error()->reason);
		return CLI_EXIT_USAGE;
	}

	req = build_request(cmd, dir, to, paused);
	if (!req) {
		fprintf(stderr, "kvmkit: %s: out of memory\n", cmd->name);
		return CLI_EXIT_HOST;
	}
	r = kvmkit_api_call(path, req, to ? CTL_MIGRATE_TIMEOUT_MS : CTL_TIMEOUT_MS, &reply);
	free(req);
	if (r) {
		e = kvmkit_last_error();
		if (!strcmp(e->op, "connect"))
			fprintf(stderr, "kvmkit: %s: cannot connect to %s: %s\n", cmd->name, path,
				strerror(e->err));
		else
			fprintf(stderr, "kvmkit: %s: %s\n", cmd->name, kvmkit_strerror());
		return r == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_API_UNREACHABLE;
	}
	status = show_reply(cmd, reply, json);
	free(reply);
	return status;
}
