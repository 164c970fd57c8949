// SPDX-License-Identifier: MIT
/*
 * The control protocol's requests and replies: one JSON object per line
 * each way (docs/API.md). The parser trusts nothing: every request is
 * checked whole (strict JSON, valid UTF-8, no NUL, an object of known
 * fields with the right types) before a command sees it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/internal.h"

#define KVMK_LOG_MODULE "api"

static const struct {
	const char *name;
	const char *arg; /* the one string argument, or NULL */
} cmds[KVMK_API_NR_CMDS] = {
	[KVMK_API_QUERY] = { "query", NULL },	     [KVMK_API_PAUSE] = { "pause", NULL },
	[KVMK_API_RESUME] = { "resume", NULL },	     [KVMK_API_STOP] = { "stop", NULL },
	[KVMK_API_SNAPSHOT] = { "snapshot", "dir" }, [KVMK_API_MIGRATE] = { "migrate", "to" },
};

const char *kvmk_api_cmd_name(enum kvmk_api_cmd cmd)
{
	return (unsigned int)cmd < KVMK_API_NR_CMDS ? cmds[cmd].name : "?";
}

const char *kvmk_api_cmd_arg(enum kvmk_api_cmd cmd)
{
	return (unsigned int)cmd < KVMK_API_NR_CMDS ? cmds[cmd].arg : NULL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The parsed JSON value of the line, or NULL with the error recorded. */
static struct json_object *parse_json(const char *line, size_t len)
{
	const char *op = "request";
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	if (memchr(line, '\0', len)) {
		kvmk_err_format(op, "NUL byte in the request line");
		return NULL;
	}
	if (len > KVMKIT_API_MAX_LINE) {
		kvmk_err_resource(op, EMSGSIZE, "request line longer than %d bytes",
				  KVMKIT_API_MAX_LINE);
		return NULL;
	}
	tok = json_tokener_new_ex(KVMK_API_MAX_DEPTH);
	if (!tok) {
		kvmk_err_resource(op, ENOMEM, "JSON parser");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	/* A number at the end of the line may go on: the end of the line ends it. */
	if (jerr == json_tokener_continue) {
		obj = json_tokener_parse_ex(tok, " ", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	if (jerr == json_tokener_continue) {
		kvmk_err_format(op, "malformed JSON: the line ends inside a value");
	} else if (jerr != json_tokener_success) {
		kvmk_err_format(op, "malformed JSON: %s (near byte %zu)",
				json_tokener_error_desc(jerr), end);
	} else {
		/* Strict mode refuses most trailing data itself; this is the
		 * rule whatever the json-c version. */
		while (end < len && is_space(line[end]))
			end++;
		if (end < len) {
			kvmk_err_format(op, "malformed JSON: data after the value at byte %zu",
					end);
		} else {
			json_tokener_free(tok);
			if (!json_object_is_type(obj, json_type_object)) {
				kvmk_err_format(op, "the request is not a JSON object");
				json_object_put(obj);
				return NULL;
			}
			return obj;
		}
	}
	json_object_put(obj);
	json_tokener_free(tok);
	return NULL;
}

/* A string field's value with no NUL inside, or NULL with the error recorded. */
static const char *string_field(struct json_object *v, const char *op, const char *name)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string)) {
		kvmk_err_param(op, name, "must be a string", "%s",
			       json_type_to_name(json_object_get_type(v)));
		return NULL;
	}
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v)) {
		kvmk_err_param(op, name, "contains a NUL character", "%s", s);
		return NULL;
	}
	if (!*s) {
		kvmk_err_param(op, name, "is empty", "%s", s);
		return NULL;
	}
	return s;
}

/* Fills req->cmd from the "cmd" field; records the error otherwise. */
static int parse_cmd(struct json_object *obj, struct kvmk_api_request *req)
{
	struct json_object *v;
	const char *name;

	if (!json_object_object_get_ex(obj, "cmd", &v))
		return kvmk_err_param("request", "cmd", "missing", "%s", "");
	name = string_field(v, "request", "cmd");
	if (!name)
		return -EINVAL;
	for (unsigned int i = 0; i < KVMK_API_NR_CMDS; i++) {
		if (!strcmp(name, cmds[i].name)) {
			req->cmd = (enum kvmk_api_cmd)i;
			return 0;
		}
	}
	return kvmk_err_param("request", "cmd",
			      "unknown command (query, pause, resume, stop, snapshot, migrate)",
			      "%s", name);
}

int kvmk_api_parse(const char *line, size_t len, struct kvmk_api_request *req)
{
	struct json_object *obj, *v;
	const char *arg_name, *s;
	size_t i;
	int r;

	memset(req, 0, sizeof(*req));
	req->resume = -1;
	for (i = 0; i < len && is_space(line[i]); i++)
		;
	if (i == len)
		return 1;
	obj = parse_json(line, len);
	if (!obj)
		return kvmkit_last_error()->err ? -kvmkit_last_error()->err : -EINVAL;

	/* The id first, so that every later error can echo it. */
	if (json_object_object_get_ex(obj, "id", &v)) {
		if (!json_object_is_type(v, json_type_string) &&
		    !json_object_is_type(v, json_type_int)) {
			r = kvmk_err_param("request", "id", "must be a string or an integer", "%s",
					   json_type_to_name(json_object_get_type(v)));
			goto out;
		}
		req->id = json_object_get(v);
	}
	r = parse_cmd(obj, req);
	if (r)
		goto out;
	arg_name = cmds[req->cmd].arg;
	json_object_object_foreach(obj, key, val)
	{
		if (req->cmd == KVMK_API_SNAPSHOT && !strcmp(key, "resume")) {
			if (!json_object_is_type(val, json_type_boolean)) {
				r = kvmk_err_param("snapshot", "resume", "must be true or false",
						   "%s",
						   json_type_to_name(json_object_get_type(val)));
				goto out;
			}
			req->resume = json_object_get_boolean(val) ? 1 : 0;
			continue;
		}
		if (strcmp(key, "cmd") && strcmp(key, "id") &&
		    (!arg_name || strcmp(key, arg_name))) {
			r = kvmk_err_param(cmds[req->cmd].name, "field", "unknown field", "%s",
					   key);
			goto out;
		}
	}
	if (arg_name) {
		if (!json_object_object_get_ex(obj, arg_name, &v)) {
			r = kvmk_err_param(cmds[req->cmd].name, arg_name, "missing", "%s", "");
			goto out;
		}
		s = string_field(v, cmds[req->cmd].name, arg_name);
		if (!s) {
			r = -EINVAL;
			goto out;
		}
		req->arg = strdup(s);
		if (!req->arg)
			r = kvmk_err_resource("request", ENOMEM, "copying %s", arg_name);
	}
out:
	json_object_put(obj);
	return r;
}

void kvmk_api_request_release(struct kvmk_api_request *req)
{
	json_object_put(req->id);
	free(req->arg);
	memset(req, 0, sizeof(*req));
	req->resume = -1;
}

int kvmk_api_put(struct json_object *o, const char *key, struct json_object *v)
{
	if (!o || !v || json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

struct json_object *kvmk_api_reply_ok(struct json_object *id)
{
	struct json_object *o = json_object_new_object();
	int bad = kvmk_api_put(o, "ok", json_object_new_boolean(1));

	if (id)
		bad |= kvmk_api_put(o, "id", json_object_get(id));
	if (bad) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Length of the valid UTF-8 sequence at @s (at most @n bytes), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* No overlong forms, surrogates or code points past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Error texts quote request bytes cut at a fixed length, possibly inside a
 * character: replies carry valid UTF-8 only, so such bytes become '?'. */
static void utf8_clean(char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq((const unsigned char *)s + i, n - i);

		if (!l) {
			s[i++] = '?';
			continue;
		}
		i += l;
	}
}

struct json_object *kvmk_api_reply_error(struct json_object *id, const struct kvmkit_error *e)
{
	struct json_object *o = json_object_new_object();
	struct json_object *err = json_object_new_object();
	char msg[512], op[sizeof(e->op)], state[sizeof(e->value)];
	int bad;

	/* A format error's errno is kvmkit's marker for bad input (ENOEXEC):
	 * its strerror() text would only confuse a client. */
	if (e->kind == KVMKIT_ERR_FORMAT)
		snprintf(msg, sizeof(msg), "%s: %s", e->op, e->reason);
	else
		kvmkit_error_format(e, msg, sizeof(msg));
	utf8_clean(msg);
	snprintf(op, sizeof(op), "%s", e->op);
	utf8_clean(op);
	bad = kvmk_api_put(err, "kind", json_object_new_string(kvmkit_error_kind_name(e->kind)));
	bad |= kvmk_api_put(err, "errno", json_object_new_int(e->err));
	bad |= kvmk_api_put(err, "message", json_object_new_string(msg));
	bad |= kvmk_api_put(err, "op", json_object_new_string(op));
	if (e->kind == KVMKIT_ERR_STATE) {
		snprintf(state, sizeof(state), "%s", e->value);
		utf8_clean(state);
		bad |= kvmk_api_put(err, "state", json_object_new_string(state));
	}
	bad |= kvmk_api_put(o, "ok", json_object_new_boolean(0));
	if (id)
		bad |= kvmk_api_put(o, "id", json_object_get(id));
	bad |= kvmk_api_put(o, "error", err);
	if (bad) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

char *kvmk_api_reply_line(struct json_object *obj, size_t *len)
{
	const char *s;
	size_t n = 0;
	char *line = NULL;

	if (!obj)
		return NULL;
	s = json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	if (s)
		line = malloc(n + 2);
	if (line) {
		memcpy(line, s, n);
		line[n] = '\n';
		line[n + 1] = '\0';
		if (len)
			*len = n + 1;
	}
	json_object_put(obj);
	return line;
}
