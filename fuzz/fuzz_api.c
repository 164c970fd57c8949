// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the control socket's input side, as a client's byte
 * stream. The stream goes through the line framer in reads of varying
 * sizes (the first byte picks them); every line goes to the request parser
 * and its reply is built as the server would. A byte 0xfe followed by N and
 * C stands for C repeated N * 512 times, so that short inputs reach the
 * 64 KiB line limit and the 256 KiB skip limit (0xfe 0x00 is a literal
 * 0xfe). Traps if:
 *  - the framer's events differ from a reference splitter: lines up to
 *    KVMKIT_API_MAX_LINE bytes whole and in order, a longer one reported
 *    once and skipped, the stream cut off once a line passes
 *    KVMKIT_API_MAX_DISCARD;
 *  - the parser accepts a request that is not an object of a known
 *    command with its one string argument (non-empty, no NUL) and an id
 *    that is a string or an integer, or a canonical request rebuilt from
 *    what it accepted does not parse back to the same request;
 *  - a reply is not one line of valid UTF-8 JSON, an object whose "ok"
 *    says whether the request was accepted and whose "id" echoes the
 *    request's, or an error reply lacks kind, errno and message.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "api/api_internal.h"

#define MAX_STREAM (1u << 20)
/* Lines per input: the stream is cut after this many newlines. */
#define MAX_LINES 1024
#define MAX_EVENTS (MAX_LINES + 2)

/* The input with the 0xfe repeats expanded; *len its size. */
static char *expand(const uint8_t *p, size_t n, size_t *len)
{
	static char out[MAX_STREAM];
	size_t o = 0, lines = 0;

	for (size_t i = 0; i < n && o < MAX_STREAM; i++) {
		size_t rep;

		if (p[i] != 0xfe || i + 1 >= n) {
			out[o++] = (char)p[i];
			continue;
		}
		if (p[i + 1] == 0) {
			out[o++] = (char)0xfe;
			i++;
			continue;
		}
		if (i + 2 >= n)
			break;
		rep = (size_t)p[i + 1] * 512;
		if (rep > MAX_STREAM - o)
			rep = MAX_STREAM - o;
		memset(out + o, p[i + 2], rep);
		o += rep;
		i += 2;
	}
	/* At most MAX_LINES newlines: the events fit their arrays. */
	for (char *nl = out, *end = out + o; (nl = memchr(nl, '\n', (size_t)(end - nl)));) {
		if (++lines == MAX_LINES) {
			o = (size_t)(nl - out) + 1;
			break;
		}
		nl++;
	}
	*len = o;
	return out;
}

struct event {
	enum kvmk_api_next kind;
	size_t off, len; /* LINE: where the line is in the stream */
};

/* The reference: what a client's stream must turn into. Returns the count. */
static size_t reference(const char *s, size_t n, struct event *ev, size_t max)
{
	size_t k = 0, pos = 0;

	while (pos < n && k + 2 <= max) {
		const char *nl = memchr(s + pos, '\n', n - pos);
		size_t len = nl ? (size_t)(nl - (s + pos)) : n - pos;

		if (len <= KVMKIT_API_MAX_LINE) {
			if (!nl)
				break; /* held, waiting for its newline */
			ev[k++] = (struct event){ KVMK_LINES_LINE, pos, len };
		} else {
			ev[k++] = (struct event){ KVMK_LINES_TOO_LONG, 0, 0 };
			if (len > KVMKIT_API_MAX_DISCARD) {
				ev[k++] = (struct event){ KVMK_LINES_OVERFLOW, 0, 0 };
				break;
			}
			if (!nl)
				break;
		}
		pos += len + 1;
	}
	return k;
}

/* UTF-8 as RFC 3629 has it: no overlong forms, surrogates or code points
 * past U+10FFFF (written apart from protocol.c's cleaner). */
static bool valid_utf8(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;

	for (size_t i = 0; i < n;) {
		unsigned int c = s[i], need, cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
		if (!need || c > 0xf4 || i + need >= n)
			return false;
		cp = c & (0x3f >> need);
		for (unsigned int k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
		    (need == 3 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

/* Checks one reply line against what the request was. */
static void check_reply(char *line, size_t len, bool accepted, struct json_object *id)
{
	struct json_tokener *tok;
	struct json_object *o, *v, *e;

	CHECK(line && len >= 2 && line[len - 1] == '\n' && !line[len]);
	CHECK(!memchr(line, '\n', len - 1));
	CHECK(valid_utf8(line, len - 1));
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, line, (int)len - 1);
	CHECK(o && json_object_is_type(o, json_type_object));
	CHECK(json_object_object_get_ex(o, "ok", &v) && json_object_is_type(v, json_type_boolean));
	CHECK(json_object_get_boolean(v) == accepted);
	if (id)
		CHECK(json_object_object_get_ex(o, "id", &v) && json_object_equal(v, id));
	else
		CHECK(!json_object_object_get_ex(o, "id", &v));
	if (!accepted) {
		CHECK(json_object_object_get_ex(o, "error", &e));
		CHECK(json_object_object_get_ex(e, "kind", &v) &&
		      json_object_is_type(v, json_type_string));
		CHECK(json_object_object_get_ex(e, "errno", &v) && json_object_get_int(v) > 0);
		CHECK(json_object_object_get_ex(e, "message", &v) &&
		      json_object_get_string_len(v) > 0);
	}
	json_object_put(o);
	json_tokener_free(tok);
	free(line);
}

/* An accepted request, rebuilt canonically, parses back to itself. */
static void check_round_trip(const struct kvmk_api_request *req)
{
	struct json_object *o = json_object_new_object();
	struct kvmk_api_request again;
	const char *s;

	json_object_object_add(o, "cmd", json_object_new_string(kvmk_api_cmd_name(req->cmd)));
	if (req->id)
		json_object_object_add(o, "id", json_object_get(req->id));
	if (req->arg)
		json_object_object_add(o, kvmk_api_cmd_arg(req->cmd),
				       json_object_new_string(req->arg));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	CHECK(kvmk_api_parse(s, strlen(s), &again) == 0);
	CHECK(again.cmd == req->cmd);
	CHECK(!req->arg == !again.arg && (!req->arg || !strcmp(req->arg, again.arg)));
	CHECK(!req->id == !again.id && (!req->id || json_object_equal(req->id, again.id)));
	kvmk_api_request_release(&again);
	json_object_put(o);
}

static void check_line(const char *line, size_t len)
{
	struct kvmk_api_request req;
	struct json_object *reply;
	size_t out_len = 0;
	char *out;
	int r = kvmk_api_parse(line, len, &req);

	if (r == 1) {
		for (size_t i = 0; i < len; i++)
			CHECK(strchr(" \t\r\n", line[i]) && line[i]);
		kvmk_api_request_release(&req);
		return;
	}
	if (r == 0) {
		const char *arg = kvmk_api_cmd_arg(req.cmd);

		CHECK((unsigned int)req.cmd < KVMK_API_NR_CMDS);
		CHECK(!arg == !req.arg);
		CHECK(!req.arg || (*req.arg && len >= strlen(req.arg)));
		CHECK(!req.id || json_object_is_type(req.id, json_type_string) ||
		      json_object_is_type(req.id, json_type_int));
		CHECK(!memchr(line, '\0', len) && len <= KVMKIT_API_MAX_LINE);
		check_round_trip(&req);
		reply = kvmk_api_reply_ok(req.id);
		CHECK(reply);
		CHECK(!kvmk_api_put(reply, "state", json_object_new_string("running")));
	} else {
		CHECK(r < 0 && kvmkit_last_error()->kind != KVMKIT_ERR_NONE);
		CHECK(!req.arg);
		reply = kvmk_api_reply_error(req.id, kvmkit_last_error());
	}
	out = kvmk_api_reply_line(reply, &out_len);
	check_reply(out, out_len, r == 0, req.id);
	kvmk_api_request_release(&req);
}

/* The next read's size, from the seed: tiny or large (tiny ones only in
 * the first 8 KiB, where they keep a run of a long stream short). */
static size_t next_chunk(unsigned int *seed, size_t fed)
{
	*seed = *seed * 1103515245u + 12345u;
	return 1 + (*seed >> 8) % ((*seed & 0x10000) && fed < 8192 ? 7 : 70000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event want[MAX_EVENTS];
	static struct kvmk_api_lines l;
	size_t n, fed = 0, nwant, ngot = 0;
	bool over = false;
	unsigned int seed;
	char *s;

	if (size < 1)
		return 0;
	seed = data[0];
	s = expand(data + 1, size - 1, &n);
	nwant = reference(s, n, want, MAX_EVENTS);
	/* One framer for every run: a fresh 64 KiB buffer per run was most
	 * of the time. */
	if (!l.buf)
		CHECK(!kvmk_api_lines_init(&l));
	kvmk_api_lines_reset(&l);
	while (fed < n && !over) {
		size_t room, chunk = next_chunk(&seed, fed);
		char *p = kvmk_api_lines_space(&l, &room);
		enum kvmk_api_next e;
		const char *line;
		size_t len;

		CHECK(room > 0 && room <= KVMK_API_LINE_BUF);
		chunk = chunk < room ? chunk : room;
		chunk = chunk < n - fed ? chunk : n - fed;
		memcpy(p, s + fed, chunk);
		kvmk_api_lines_commit(&l, chunk);
		fed += chunk;
		while (!over && (e = kvmk_api_lines_next(&l, &line, &len)) != KVMK_LINES_MORE) {
			CHECK(ngot < nwant && want[ngot].kind == e);
			if (e == KVMK_LINES_LINE) {
				/* The line's bytes are the stream's, where the reference says. */
				CHECK(len == want[ngot].len &&
				      !memcmp(line, s + want[ngot].off, len));
				check_line(line, len);
			}
			over = e == KVMK_LINES_OVERFLOW;
			ngot++;
		}
	}
	CHECK(ngot == nwant);
	/* Whatever is held is an unfinished line, or the rest of a skipped one. */
	CHECK(over || kvmk_api_lines_partial(&l) == (fed > 0 && s[fed - 1] != '\n'));
	return 0;
}
