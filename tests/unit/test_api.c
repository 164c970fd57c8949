// SPDX-License-Identifier: MIT
/*
 * The control API without KVM: the request parser, the reply builder, the
 * line framer, and the socket server (transport only) with a stand-in
 * handler, against well-behaved and hostile clients. tests/kvm/test_api.c
 * does the same against a running guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <json-c/json.h>

#include <kvmkit/kvmkit.h>
#include "api/api_internal.h"
#include "core/internal.h"
#include "api_clients.h"

/* ---- the request parser -------------------------------------------------- */

static void test_parse_valid(void **state)
{
	static const struct {
		const char *line;
		enum kvmk_api_cmd cmd;
		const char *arg;
		const char *id; /* serialised, or NULL */
	} ok[] = {
		{ "{\"cmd\":\"query\"}", KVMK_API_QUERY, NULL, NULL },
		{ "  {\"cmd\" : \"pause\"}  \r", KVMK_API_PAUSE, NULL, NULL },
		{ "{\"id\":7,\"cmd\":\"resume\"}", KVMK_API_RESUME, NULL, "7" },
		{ "{\"cmd\":\"stop\",\"id\":\"x-1\"}", KVMK_API_STOP, NULL, "\"x-1\"" },
		{ "{\"cmd\":\"stop\",\"id\":-9007199254740993}", KVMK_API_STOP, NULL,
		  "-9007199254740993" },
		{ "{\"cmd\":\"snapshot\",\"dir\":\"/tmp/s\"}", KVMK_API_SNAPSHOT, "/tmp/s", NULL },
		{ "{\"cmd\":\"snapshot\",\"dir\":\"caf\\u00e9\"}", KVMK_API_SNAPSHOT, "caf\xc3\xa9",
		  NULL },
		{ "{\"to\":\"unix:/run/x\",\"cmd\":\"migrate\",\"id\":0}", KVMK_API_MIGRATE,
		  "unix:/run/x", "0" },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct kvmk_api_request req;
		int r = kvmk_api_parse(ok[i].line, strlen(ok[i].line), &req);

		if (r)
			fail_msg("%s: %d %s", ok[i].line, r, kvmkit_strerror());
		assert_int_equal(req.cmd, ok[i].cmd);
		if (ok[i].arg)
			assert_string_equal(req.arg, ok[i].arg);
		else
			assert_null(req.arg);
		if (ok[i].id)
			assert_string_equal(json_object_to_json_string(req.id), ok[i].id);
		else
			assert_null(req.id);
		kvmk_api_request_release(&req);
	}
}

static void test_parse_blank(void **state)
{
	static const char *const blank[] = { "", " ", "\t\r", "   \r" };

	for (size_t i = 0; i < sizeof(blank) / sizeof(blank[0]); i++) {
		struct kvmk_api_request req;

		assert_int_equal(kvmk_api_parse(blank[i], strlen(blank[i]), &req), 1);
		assert_null(req.id);
		assert_null(req.arg);
		assert_int_equal(req.resume, -1);
		kvmk_api_request_release(&req);
	}
}

/* snapshot's optional "resume": a boolean, for snapshot only. */
static void test_parse_resume(void **state)
{
	static const char *const lines[] = {
		"{\"cmd\":\"snapshot\",\"dir\":\"/s\",\"resume\":false}",
		"{\"cmd\":\"snapshot\",\"resume\":true,\"dir\":\"/s\"}",
		"{\"cmd\":\"snapshot\",\"dir\":\"/s\",\"resume\":0}",
		"{\"cmd\":\"pause\",\"resume\":false}",
	};
	struct kvmk_api_request req;

	assert_int_equal(kvmk_api_parse(lines[0], strlen(lines[0]), &req), 0);
	assert_int_equal(req.resume, 0);
	kvmk_api_request_release(&req);
	assert_int_equal(kvmk_api_parse(lines[1], strlen(lines[1]), &req), 0);
	assert_int_equal(req.resume, 1);
	kvmk_api_request_release(&req);
	assert_int_equal(kvmk_api_parse(lines[2], strlen(lines[2]), &req), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "must be true or false"));
	kvmk_api_request_release(&req);
	assert_int_equal(kvmk_api_parse(lines[3], strlen(lines[3]), &req), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "unknown field"));
	kvmk_api_request_release(&req);
}

static void test_parse_errors(void **state)
{
	static const struct {
		const char *line;
		size_t len; /* 0: strlen */
		enum kvmkit_error_kind kind;
		const char *needle; /* in the formatted error */
		const char *id; /* echoed id, serialised, or NULL */
	} bad[] = {
		{ "{\"cmd\":\"query\"", 0, KVMKIT_ERR_FORMAT, "ends inside", NULL },
		{ "{cmd:\"query\"}", 0, KVMKIT_ERR_FORMAT, "malformed JSON", NULL },
		{ "{'cmd':'query'}", 0, KVMKIT_ERR_FORMAT, "malformed JSON", NULL },
		{ "{\"cmd\":\"query\",}", 0, KVMKIT_ERR_FORMAT, "malformed JSON", NULL },
		{ "[1,2]", 0, KVMKIT_ERR_FORMAT, "not a JSON object", NULL },
		{ "123", 0, KVMKIT_ERR_FORMAT, "not a JSON object", NULL },
		{ "\"query\"", 0, KVMKIT_ERR_FORMAT, "not a JSON object", NULL },
		{ "null", 0, KVMKIT_ERR_FORMAT, "not a JSON object", NULL },
		{ "{\"cmd\":\"query\"} {\"cmd\":\"stop\"}", 0, KVMKIT_ERR_FORMAT, "malformed JSON",
		  NULL },
		{ "{\"cmd\":\"query\"}x", 0, KVMKIT_ERR_FORMAT, "malformed JSON", NULL },
		{ "{\"cmd\":\"query\"}\0{\"cmd\":\"stop\"}", 30, KVMKIT_ERR_FORMAT, "NUL byte",
		  NULL },
		{ "{\"cmd\":\"\xff\"}", 0, KVMKIT_ERR_FORMAT, "malformed JSON", NULL },
		{ "{\"cmd\":\"query\",\"x\":[[[[[[[[[[1]]]]]]]]]]}", 0, KVMKIT_ERR_FORMAT,
		  "malformed JSON", NULL },
		{ "{}", 0, KVMKIT_ERR_PARAM, "invalid cmd '': missing", NULL },
		{ "{\"cmd\":1}", 0, KVMKIT_ERR_PARAM, "must be a string", NULL },
		{ "{\"cmd\":null,\"id\":5}", 0, KVMKIT_ERR_PARAM, "must be a string", "5" },
		{ "{\"cmd\":\"frob\",\"id\":7}", 0, KVMKIT_ERR_PARAM, "invalid cmd 'frob': unknown",
		  "7" },
		{ "{\"cmd\":\"QUERY\"}", 0, KVMKIT_ERR_PARAM, "unknown command", NULL },
		{ "{\"cmd\":\"query\",\"extra\":1}", 0, KVMKIT_ERR_PARAM, "field 'extra'", NULL },
		{ "{\"cmd\":\"query\",\"dir\":\"/x\"}", 0, KVMKIT_ERR_PARAM, "field 'dir'", NULL },
		{ "{\"cmd\":\"migrate\",\"dir\":\"/x\",\"id\":\"m\"}", 0, KVMKIT_ERR_PARAM,
		  "field 'dir'", "\"m\"" },
		{ "{\"cmd\":\"snapshot\"}", 0, KVMKIT_ERR_PARAM, "invalid dir '': missing", NULL },
		{ "{\"cmd\":\"snapshot\",\"dir\":5}", 0, KVMKIT_ERR_PARAM, "must be a string",
		  NULL },
		{ "{\"cmd\":\"snapshot\",\"dir\":\"\"}", 0, KVMKIT_ERR_PARAM, "is empty", NULL },
		{ "{\"cmd\":\"snapshot\",\"dir\":\"a\\u0000b\"}", 0, KVMKIT_ERR_PARAM, "NUL",
		  NULL },
		{ "{\"cmd\":\"migrate\",\"to\":[]}", 0, KVMKIT_ERR_PARAM, "must be a string",
		  NULL },
		{ "{\"cmd\":\"query\",\"id\":[1]}", 0, KVMKIT_ERR_PARAM, "string or an integer",
		  NULL },
		{ "{\"cmd\":\"query\",\"id\":1.5}", 0, KVMKIT_ERR_PARAM, "string or an integer",
		  NULL },
		{ "{\"cmd\":\"query\",\"id\":{}}", 0, KVMKIT_ERR_PARAM, "string or an integer",
		  NULL },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].line);
		struct kvmk_api_request req;
		int r = kvmk_api_parse(bad[i].line, len, &req);

		if (r >= 0)
			fail_msg("case %zu (%s) accepted", i, bad[i].line);
		if (kvmkit_last_error()->kind != bad[i].kind ||
		    !strstr(kvmkit_strerror(), bad[i].needle))
			fail_msg("case %zu (%s): got %s", i, bad[i].line, kvmkit_strerror());
		if (bad[i].id)
			assert_string_equal(json_object_to_json_string(req.id), bad[i].id);
		else
			assert_null(req.id);
		assert_null(req.arg);
		kvmk_api_request_release(&req);
	}
}

/* The limit is the line's: exactly KVMKIT_API_MAX_LINE bytes still parse. */
static void test_parse_line_limit(void **state)
{
	char *line = malloc(KVMKIT_API_MAX_LINE + 1);
	struct kvmk_api_request req;

	memset(line, ' ', KVMKIT_API_MAX_LINE + 1);
	memcpy(line, "{\"cmd\":\"query\"}", 15);
	assert_int_equal(kvmk_api_parse(line, KVMKIT_API_MAX_LINE, &req), 0);
	kvmk_api_request_release(&req);
	assert_int_equal(kvmk_api_parse(line, KVMKIT_API_MAX_LINE + 1, &req), -EMSGSIZE);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_RESOURCE);
	kvmk_api_request_release(&req);
	free(line);
}

/* ---- replies ----------------------------------------------------------- */

/* Parses a reply line strictly (valid UTF-8, one line, a JSON object). */
static struct json_object *parse_reply(const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	assert_true(len > 1 && line[len - 1] == '\n');
	assert_null(memchr(line, '\n', len - 1));
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, line, (int)len - 1);
	if (!o)
		fail_msg("reply does not parse (%s): %s",
			 json_tokener_error_desc(json_tokener_get_error(tok)), line);
	json_tokener_free(tok);
	assert_true(json_object_is_type(o, json_type_object));
	return o;
}

static const char *get_str(struct json_object *o, const char *path1, const char *path2)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, path1, &v));
	if (path2)
		assert_true(json_object_object_get_ex(v, path2, &v));
	return json_object_get_string(v);
}

static void test_reply_ok(void **state)
{
	struct json_object *id = json_object_new_int(42);
	struct json_object *o = kvmk_api_reply_ok(id);
	size_t len;
	char *line;

	assert_int_equal(kvmk_api_put(o, "state", json_object_new_string("paused")), 0);
	line = kvmk_api_reply_line(o, &len);
	assert_string_equal(line, "{\"ok\":true,\"id\":42,\"state\":\"paused\"}\n");
	assert_int_equal(len, strlen(line));
	free(line);
	json_object_put(id);
	/* No id, no "id" field. */
	line = kvmk_api_reply_line(kvmk_api_reply_ok(NULL), NULL);
	assert_string_equal(line, "{\"ok\":true}\n");
	free(line);
	/* A failed put drops the value and says so. */
	assert_int_equal(kvmk_api_put(NULL, "x", json_object_new_int(1)), -1);
	o = json_object_new_object();
	assert_int_equal(kvmk_api_put(o, "x", NULL), -1);
	json_object_put(o);
}

static void test_reply_error(void **state)
{
	struct json_object *id = json_object_new_string("a\"b\n");
	struct json_object *o, *v;
	size_t len;
	char *line;

	kvmk_err_state("vm", "paused", "running", "pause");
	line = kvmk_api_reply_line(kvmk_api_reply_error(id, kvmkit_last_error()), &len);
	o = parse_reply(line, len);
	assert_true(json_object_object_get_ex(o, "ok", &v) && !json_object_get_boolean(v));
	assert_string_equal(get_str(o, "id", NULL), "a\"b\n");
	assert_string_equal(get_str(o, "error", "kind"), "invalid-state");
	assert_string_equal(get_str(o, "error", "errno"), "16"); /* EBUSY */
	assert_string_equal(get_str(o, "error", "op"), "pause");
	assert_string_equal(get_str(o, "error", "state"), "paused");
	assert_non_null(strstr(get_str(o, "error", "message"), "vm is paused, expected running"));
	json_object_put(o);
	free(line);
	json_object_put(id);

	kvmk_err_unsupported("snapshot", ENOTSUP, "not implemented yet");
	line = kvmk_api_reply_line(kvmk_api_reply_error(NULL, kvmkit_last_error()), &len);
	o = parse_reply(line, len);
	assert_false(json_object_object_get_ex(o, "id", &v));
	assert_string_equal(get_str(o, "error", "kind"), "unsupported");
	assert_false(json_object_object_get_ex(json_object_object_get(o, "error"), "state", &v));
	json_object_put(o);
	free(line);
}

/* Error texts quote the request cut at a fixed length: the cut may fall
 * inside a character, and the reply must still be valid UTF-8. */
static void test_reply_error_utf8(void **state)
{
	char value[400] = "";
	size_t len;
	char *line;
	struct json_object *o;

	for (int i = 0; i < 150; i++)
		strcat(value, "\xc3\xa9"); /* é: the record keeps 95 bytes, half a character */
	kvmk_err_param("request", "cmd", "unknown command", "%s", value);
	assert_int_equal(strlen(kvmkit_last_error()->value) % 2, 1);
	line = kvmk_api_reply_line(kvmk_api_reply_error(NULL, kvmkit_last_error()), &len);
	o = parse_reply(line, len);
	json_object_put(o);
	free(line);
	kvmk_err_param("request", "cmd", "unknown command", "%s", "a\xff\xc0\x80\xed\xa0\x80z");
	line = kvmk_api_reply_line(kvmk_api_reply_error(NULL, kvmkit_last_error()), &len);
	o = parse_reply(line, len);
	assert_non_null(strstr(get_str(o, "error", "message"), "'a??????z'"));
	json_object_put(o);
	free(line);
}

/* ---- the line framer --------------------------------------------------- */

struct events {
	enum kvmk_api_next ev[64];
	size_t len[64];
	char first[64]; /* first byte of each line */
	unsigned int n;
};

/* Feeds @n bytes in reads of at most @chunk, taking every event after each. */
static void feed(struct kvmk_api_lines *l, const char *data, size_t n, size_t chunk,
		 struct events *out)
{
	while (n) {
		size_t room, take;
		char *p = kvmk_api_lines_space(l, &room);
		enum kvmk_api_next e;
		const char *line;
		size_t len;

		assert_true(room > 0);
		take = n < room ? n : room;
		take = take < chunk ? take : chunk;
		memcpy(p, data, take);
		kvmk_api_lines_commit(l, take);
		data += take;
		n -= take;
		while ((e = kvmk_api_lines_next(l, &line, &len)) != KVMK_LINES_MORE) {
			assert_true(out->n < 64);
			out->ev[out->n] = e;
			out->len[out->n] = e == KVMK_LINES_LINE ? len : 0;
			out->first[out->n] = e == KVMK_LINES_LINE && len ? line[0] : 0;
			out->n++;
			if (e == KVMK_LINES_OVERFLOW)
				return;
		}
	}
}

static void test_lines_split(void **state)
{
	static const size_t chunks[] = { 1, 2, 3, 7, 4096 };
	static const char in[] = "ab\n\ncdef\r\ng";

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct kvmk_api_lines l;
		struct events ev = { 0 };

		assert_int_equal(kvmk_api_lines_init(&l), 0);
		assert_false(kvmk_api_lines_partial(&l));
		feed(&l, in, sizeof(in) - 1, chunks[c], &ev);
		assert_int_equal(ev.n, 3);
		assert_int_equal(ev.ev[0], KVMK_LINES_LINE);
		assert_int_equal(ev.len[0], 2);
		assert_int_equal(ev.first[0], 'a');
		assert_int_equal(ev.len[1], 0);
		assert_int_equal(ev.len[2], 5); /* "cdef\r": the parser drops the \r */
		assert_true(kvmk_api_lines_partial(&l)); /* "g" */
		kvmk_api_lines_release(&l);
	}
}

static void test_lines_limits(void **state)
{
	size_t big = KVMKIT_API_MAX_DISCARD + 2 * KVMKIT_API_MAX_LINE;
	char *data = malloc(big);
	struct kvmk_api_lines l;
	struct events ev = { 0 };

	/* Exactly KVMKIT_API_MAX_LINE bytes: one line. */
	memset(data, 'x', big);
	data[KVMKIT_API_MAX_LINE] = '\n';
	assert_int_equal(kvmk_api_lines_init(&l), 0);
	feed(&l, data, KVMKIT_API_MAX_LINE + 1, 65536, &ev);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.ev[0], KVMK_LINES_LINE);
	assert_int_equal(ev.len[0], KVMKIT_API_MAX_LINE);
	assert_false(kvmk_api_lines_partial(&l));

	/* One byte more: reported once, skipped to its newline, then the
	 * next line is whole. */
	memset(&ev, 0, sizeof(ev));
	data[KVMKIT_API_MAX_LINE] = 'x';
	data[KVMKIT_API_MAX_LINE + 1] = '\n';
	memcpy(data + KVMKIT_API_MAX_LINE + 2, "yz\n", 3);
	feed(&l, data, KVMKIT_API_MAX_LINE + 5, 1000, &ev);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.ev[0], KVMK_LINES_TOO_LONG);
	assert_int_equal(ev.ev[1], KVMK_LINES_LINE);
	assert_int_equal(ev.len[1], 2);
	assert_int_equal(ev.first[1], 'y');

	/* A skipped line of exactly KVMKIT_API_MAX_DISCARD bytes ends in
	 * time; one byte more without a newline is the end of the client. */
	memset(&ev, 0, sizeof(ev));
	memset(data, 'x', big);
	data[KVMKIT_API_MAX_DISCARD] = '\n';
	data[KVMKIT_API_MAX_DISCARD + 1] = 'k';
	data[KVMKIT_API_MAX_DISCARD + 2] = '\n';
	feed(&l, data, KVMKIT_API_MAX_DISCARD + 3, 65536, &ev);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.ev[0], KVMK_LINES_TOO_LONG);
	assert_int_equal(ev.first[1], 'k');
	memset(&ev, 0, sizeof(ev));
	memset(data, 'x', big);
	feed(&l, data, big, 65536, &ev);
	assert_int_equal(ev.n, 2);
	assert_int_equal(ev.ev[0], KVMK_LINES_TOO_LONG);
	assert_int_equal(ev.ev[1], KVMK_LINES_OVERFLOW);
	kvmk_api_lines_release(&l);
	free(data);
}

/* ---- the server, with a stand-in handler --------------------------------- */

static unsigned long handled; /* requests the handler saw (atomic) */

/* Answers {"ok":true,"id":..,"cmd":NAME} or the parser's error reply. */
static int echo_handler(void *opaque, const char *line, size_t len, char **reply)
{
	struct kvmk_api_request req;
	struct json_object *o;
	int r = kvmk_api_parse(line, len, &req);

	*reply = NULL;
	if (r == 1)
		return 0;
	__atomic_fetch_add(&handled, 1, __ATOMIC_RELAXED);
	if (!r) {
		o = kvmk_api_reply_ok(req.id);
		kvmk_api_put(o, "cmd", json_object_new_string(kvmk_api_cmd_name(req.cmd)));
	} else {
		o = kvmk_api_reply_error(req.id, kvmkit_last_error());
	}
	kvmk_api_request_release(&req);
	*reply = kvmk_api_reply_line(o, NULL);
	return *reply ? 0 : -ENOMEM;
}

static unsigned long handled_now(void)
{
	return __atomic_load_n(&handled, __ATOMIC_RELAXED);
}

struct fixture {
	char dir[64];
	char path[128];
	struct kvmkit_api_server *srv;
	unsigned int fds; /* with the server running, before any client */
};

static int start(struct fixture *f, unsigned int max_clients)
{
	struct kvmkit_api_config cfg;

	kvmkit_api_config_init(&cfg);
	cfg.path = f->path;
	cfg.max_clients = max_clients;
	return kvmk_api_server_start(&cfg, echo_handler, NULL, &f->srv);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/kvmkit-api-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/sock", f->dir);
	if (start(f, 0))
		return -1;
	f->fds = api_fd_count();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	kvmkit_api_server_destroy(f->srv);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void assert_reply(char *line, const char *want)
{
	if (!line || !strstr(line, want))
		fail_msg("reply %s, expected one with %s", line ? line : "(none)", want);
	free(line);
}

static void test_server_socket_file(void **state)
{
	struct fixture *f = *state;
	struct kvmkit_api_server *other = (void *)1;
	struct kvmkit_api_config cfg;
	char other_path[160], buf[8] = "";
	struct stat st;
	mode_t old;
	int fd;

	/* The fixture's socket: a socket, owner only, even with umask 0. */
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(other_path, sizeof(other_path), "%s/open", f->dir);
	old = umask(0);
	kvmkit_api_config_init(&cfg);
	cfg.path = other_path;
	assert_int_equal(kvmk_api_server_start(&cfg, echo_handler, NULL, &other), 0);
	umask(old);
	assert_int_equal(lstat(other_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* A live server's socket is never taken over. */
	kvmkit_api_server_destroy(other);
	assert_int_equal(lstat(other_path, &st), -1); /* removed */
	cfg.path = f->path;
	assert_int_equal(kvmk_api_server_start(&cfg, echo_handler, NULL, &other), -EADDRINUSE);
	assert_null(other);
	assert_reply(api_request(f->path, "{\"cmd\":\"query\"}"), "\"ok\":true");

	/* Nor is anything that is not a socket: a file, a symlink, a directory. */
	cfg.path = other_path;
	fd = open(other_path, O_CREAT | O_WRONLY, 0644);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_int_equal(kvmk_api_server_start(&cfg, echo_handler, NULL, &other), -EEXIST);
	fd = open(other_path, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	close(fd);
	assert_string_equal(buf, "keep");
	unlink(other_path);
	assert_int_equal(symlink(f->path, other_path), 0);
	assert_int_equal(kvmk_api_server_start(&cfg, echo_handler, NULL, &other), -EEXIST);
	unlink(other_path);
	assert_int_equal(mkdir(other_path, 0700), 0);
	assert_int_equal(kvmk_api_server_start(&cfg, echo_handler, NULL, &other), -EEXIST);
	rmdir(other_path);

	/* A stale socket (its server died without removing it) is replaced. */
	{
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		assert_true(strlen(other_path) < sizeof(a.sun_path));
		memcpy(a.sun_path, other_path, strlen(other_path) + 1);
		assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
		close(s);
	}
	assert_int_equal(kvmk_api_server_start(&cfg, echo_handler, NULL, &other), 0);
	assert_reply(api_request(other_path, "{\"cmd\":\"stop\"}"), "\"cmd\":\"stop\"");
	/* Destroy removes only its own socket: not a file put in its place. */
	unlink(other_path);
	fd = open(other_path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	kvmkit_api_server_destroy(other);
	assert_int_equal(lstat(other_path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(other_path);

	/* Paths a unix socket cannot have. */
	memset(other_path, 'a', sizeof(other_path) - 1);
	other_path[sizeof(other_path) - 1] = '\0';
	assert_int_equal(kvmk_api_server_start(&cfg, echo_handler, NULL, &other), -EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	cfg.path = "";
	assert_int_equal(kvmk_api_server_start(&cfg, echo_handler, NULL, &other), -EINVAL);
	assert_int_equal(kvmkit_api_server_create(NULL, &cfg, &other), -EINVAL);
	assert_true(api_fds_back_to(f->fds));
}

/* Another user cannot connect (the socket is 0600 and owned by us). */
static void test_server_other_user(void **state)
{
	struct fixture *f = *state;
	pid_t pid;
	int status;

	if (geteuid() != 0)
		skip(); /* needs root to become someone else */
	/* The directory must let the other user reach the socket at all. */
	assert_int_equal(chmod(f->dir, 0755), 0);
	pid = fork();
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(2);
		_exit(api_connect(f->path) == -EACCES ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_server_requests(void **state)
{
	struct fixture *f = *state;
	static const char req[] = "{\"cmd\":\"resume\",\"id\":\"bytes\"}\n";
	struct api_conn c;
	int fd;

	assert_reply(api_request(f->path, "{\"cmd\":\"query\",\"id\":1}"),
		     "{\"ok\":true,\"id\":1,\"cmd\":\"query\"}");
	fd = api_connect(f->path);
	assert_true(fd >= 0);
	api_conn_init(&c, fd);
	/* Blank lines get no reply: the first reply is pause's. */
	assert_int_equal(api_send(fd, "\n  \r\n{\"cmd\":\"pause\"}\n", 21), 0);
	assert_reply(api_conn_line(&c), "\"cmd\":\"pause\"");
	/* A request sent one byte at a time. */
	for (size_t i = 0; i < sizeof(req) - 1; i++)
		assert_int_equal(api_send(fd, req + i, 1), 0);
	assert_reply(api_conn_line(&c), "\"id\":\"bytes\"");
	/* Bad requests get an error reply and the connection goes on. */
	assert_int_equal(api_send(fd, "{nope\n", 6), 0);
	assert_reply(api_conn_line(&c), "\"kind\":\"format\"");
	assert_int_equal(api_send(fd, "[1]\n", 4), 0);
	assert_reply(api_conn_line(&c), "not a JSON object");
	assert_int_equal(api_send(fd, "{\"cmd\":\"x\",\"id\":\"q\"}\n", 21), 0);
	assert_reply(api_conn_line(&c), "\"id\":\"q\",\"error\":{\"kind\":\"invalid-parameter\"");
	assert_int_equal(api_send(fd, "{\"cmd\":\"stop\",\"id\":2}\n", 22), 0);
	assert_reply(api_conn_line(&c), "{\"ok\":true,\"id\":2,\"cmd\":\"stop\"}");
	api_conn_close(&c);
	assert_true(api_fds_back_to(f->fds));
}

static void test_server_long_lines(void **state)
{
	struct fixture *f = *state;
	size_t big = 1 << 20;
	char *data = malloc(big + 64);
	unsigned long before;
	struct api_conn c;
	int fd;

	/* 128 KiB and a newline: one error, skipped, and the next request
	 * on the same connection is answered. */
	memset(data, 'x', 128 << 10);
	strcpy(data + (128 << 10), "\n{\"cmd\":\"query\",\"id\":2}\n");
	fd = api_connect(f->path);
	api_conn_init(&c, fd);
	assert_int_equal(api_send(fd, data, strlen(data)), 0);
	assert_reply(api_conn_line(&c), "\"errno\":90,"); /* EMSGSIZE */
	assert_reply(api_conn_line(&c), "{\"ok\":true,\"id\":2,");
	/* A request of exactly the longest length. */
	memset(data, ' ', KVMKIT_API_MAX_LINE);
	memcpy(data, "{\"cmd\":\"query\",\"id\":3}", 22);
	data[KVMKIT_API_MAX_LINE] = '\n';
	assert_int_equal(api_send(fd, data, KVMKIT_API_MAX_LINE + 1), 0);
	assert_reply(api_conn_line(&c), "{\"ok\":true,\"id\":3,");
	api_conn_close(&c);

	/* 1 MiB without a newline: one error reply, then the server hangs
	 * up (the send may see EPIPE once it has). The handler never sees it. */
	before = handled_now();
	memset(data, 'x', big);
	fd = api_connect(f->path);
	api_conn_init(&c, fd);
	api_send(fd, data, big);
	assert_reply(api_conn_line(&c), "longer than 65536 bytes");
	assert_true(api_conn_wait_closed(&c));
	api_conn_close(&c);
	assert_int_equal(handled_now(), before);
	assert_reply(api_request(f->path, "{\"cmd\":\"query\"}"), "\"ok\":true");
	assert_true(api_fds_back_to(f->fds));
	free(data);
}

#define PIPELINED 10000

static char *many_requests(size_t *len)
{
	char *reqs = malloc(PIPELINED * 40);

	*len = 0;
	for (int i = 0; i < PIPELINED; i++)
		*len += (size_t)sprintf(reqs + *len, "{\"cmd\":\"query\",\"id\":%d}\n", i);
	return reqs;
}

static void test_server_pipelined(void **state)
{
	struct fixture *f = *state;
	unsigned long before = handled_now();
	size_t len;
	char *reqs = many_requests(&len);
	char *replies = api_pipeline(f->path, reqs, len, PIPELINED);
	char *p = replies;

	assert_non_null(replies);
	/* Every reply, in order. */
	for (int i = 0; i < PIPELINED; i++) {
		char want[64];
		int n = snprintf(want, sizeof(want), "{\"ok\":true,\"id\":%d,\"cmd\":\"query\"}\n",
				 i);

		if (strncmp(p, want, (size_t)n))
			fail_msg("reply %d: %.60s", i, p);
		p += n;
	}
	assert_int_equal(*p, '\0');
	assert_int_equal(handled_now() - before, PIPELINED);
	free(replies);
	free(reqs);
	assert_true(api_fds_back_to(f->fds));
}

static void test_server_disconnects(void **state)
{
	struct fixture *f = *state;
	unsigned long before = handled_now();
	struct api_conn c;
	size_t len, sent = 0;
	char *reqs;
	int fd;

	/* Mid-request: the half request is never run. */
	fd = api_connect(f->path);
	assert_int_equal(api_send(fd, "{\"cmd\":\"pause\"", 14), 0);
	close(fd);
	assert_true(api_fds_back_to(f->fds));
	assert_int_equal(handled_now(), before);

	/* Mid-reply: 10,000 requests, and gone before reading any reply. */
	reqs = many_requests(&len);
	fd = api_connect(f->path);
	while (sent < len) {
		ssize_t n = send(fd, reqs + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n <= 0)
			break; /* the server reads no more until we read */
		sent += (size_t)n;
	}
	assert_true(sent > 0);
	close(fd);
	assert_true(api_fds_back_to(f->fds));
	free(reqs);

	/* Half-closed: everything sent before the shutdown is answered, then
	 * the server ends the connection. */
	fd = api_connect(f->path);
	api_conn_init(&c, fd);
	assert_int_equal(
		api_send(fd, "{\"cmd\":\"query\",\"id\":1}\n{\"cmd\":\"pause\",\"id\":2}\n{\"cmd\"",
			 52),
		0);
	shutdown(fd, SHUT_WR);
	assert_reply(api_conn_line(&c), "\"id\":1,");
	assert_reply(api_conn_line(&c), "\"id\":2,");
	assert_true(api_conn_wait_closed(&c));
	api_conn_close(&c);

	assert_reply(api_request(f->path, "{\"cmd\":\"query\",\"id\":\"after\"}"),
		     "\"id\":\"after\"");
	assert_true(api_fds_back_to(f->fds));
}

#define CONCURRENT 50

static void test_server_many_clients(void **state)
{
	struct fixture *f = *state;
	struct api_conn c[CONCURRENT];

	/* All connected at once, each asks, each gets its own answer. */
	for (int i = 0; i < CONCURRENT; i++) {
		int fd = api_connect(f->path);

		assert_true(fd >= 0);
		api_conn_init(&c[i], fd);
	}
	for (int i = 0; i < CONCURRENT; i++) {
		char req[64];
		int n = snprintf(req, sizeof(req), "{\"cmd\":\"query\",\"id\":%d}\n", i);

		assert_int_equal(api_send(c[i].fd, req, (size_t)n), 0);
	}
	for (int i = CONCURRENT - 1; i >= 0; i--) {
		char want[32];

		snprintf(want, sizeof(want), "\"id\":%d,", i);
		assert_reply(api_conn_line(&c[i]), want);
		api_conn_close(&c[i]);
	}
	assert_true(api_fds_back_to(f->fds));
}

static void test_server_client_limit(void **state)
{
	struct fixture *f = *state;
	struct fixture g = { 0 };
	struct api_conn c[5];
	int64_t deadline;
	char *reply = NULL;

	snprintf(g.path, sizeof(g.path), "%s/small", f->dir);
	assert_int_equal(start(&g, 4), 0);
	for (int i = 0; i < 4; i++) {
		api_conn_init(&c[i], api_connect(g.path));
		assert_int_equal(api_send(c[i].fd, "{\"cmd\":\"query\"}\n", 16), 0);
		assert_reply(api_conn_line(&c[i]), "\"ok\":true");
	}
	/* One too many: told so, and closed. */
	api_conn_init(&c[4], api_connect(g.path));
	assert_reply(api_conn_line(&c[4]), "too many clients");
	assert_true(api_conn_wait_closed(&c[4]));
	api_conn_close(&c[4]);
	/* A client leaves: the next one is served (once the server has seen
	 * it leave). */
	api_conn_close(&c[0]);
	deadline = api_now_ms() + API_WAIT_MS;
	do {
		free(reply);
		reply = api_request(g.path, "{\"cmd\":\"query\",\"id\":9}");
	} while (reply && strstr(reply, "too many") && api_now_ms() < deadline);
	assert_reply(reply, "\"id\":9,");
	for (int i = 1; i < 4; i++)
		api_conn_close(&c[i]);
	kvmkit_api_server_destroy(g.srv);
	assert_true(api_fds_back_to(f->fds));
}

/* The client call: errors a caller can act on. */
static void test_client_errors(void **state)
{
	struct fixture *f = *state;
	char path[160], *reply = (char *)1;

	snprintf(path, sizeof(path), "%s/none", f->dir);
	assert_int_equal(kvmkit_api_call(path, "{\"cmd\":\"query\"}", 1000, &reply), -ENOENT);
	assert_null(reply);
	assert_int_equal(kvmkit_api_call(f->path, "{\"cmd\":\"query\"}\n", 1000, &reply), -EINVAL);
	assert_int_equal(kvmkit_api_call(f->path, "{\"cmd\":\"stop\",\"id\":4}", 5000, &reply), 0);
	assert_string_equal(reply, "{\"ok\":true,\"id\":4,\"cmd\":\"stop\"}");
	free(reply);
	/* A blank request gets no reply: the call waits, then times out. */
	assert_int_equal(kvmkit_api_call(f->path, " ", 50, &reply), -ETIMEDOUT);
	assert_null(reply);
	assert_true(api_fds_back_to(f->fds));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_blank),
		cmocka_unit_test(test_parse_resume),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_line_limit),
		cmocka_unit_test(test_reply_ok),
		cmocka_unit_test(test_reply_error),
		cmocka_unit_test(test_reply_error_utf8),
		cmocka_unit_test(test_lines_split),
		cmocka_unit_test(test_lines_limits),
		cmocka_unit_test_setup_teardown(test_server_socket_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_other_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_long_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_disconnects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_many_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_client_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_errors, setup, teardown),
	};

	return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
