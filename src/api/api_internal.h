/* SPDX-License-Identifier: MIT */
/*
 * The control API's parts, each usable without a VM or a socket (unit tests
 * and the fuzz-api target drive them directly): the request parser and
 * reply builder (protocol.c), the line framer (lines.c), the commands on a
 * VM (commands.c) and the socket server, transport only (server.c).
 */
#ifndef KVMKIT_API_INTERNAL_H
#define KVMKIT_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include <kvmkit/api.h>
#include <kvmkit/error.h>

/* ---- requests and replies (protocol.c) ---------------------------------- */

enum kvmk_api_cmd {
	KVMK_API_QUERY = 0,
	KVMK_API_PAUSE,
	KVMK_API_RESUME,
	KVMK_API_STOP,
	KVMK_API_SNAPSHOT,
	KVMK_API_MIGRATE,
	KVMK_API_NR_CMDS,
};

/* Nesting the parser accepts; a request needs 2 (an object of scalars). */
#define KVMK_API_MAX_DEPTH 8

struct kvmk_api_request {
	enum kvmk_api_cmd cmd;
	struct json_object *id; /* a reference of its own (string or integer), or NULL */
	char *arg; /* the command's string argument, or NULL */
	int resume; /* snapshot's optional "resume": -1 absent, else 0 or 1 */
};

const char *kvmk_api_cmd_name(enum kvmk_api_cmd cmd);
/* The field holding @cmd's one string argument ("dir", "to"), or NULL. */
const char *kvmk_api_cmd_arg(enum kvmk_api_cmd cmd);

/*
 * Parses one request line (@len bytes, no newline). Returns 0 with *@req
 * filled, 1 for a blank line (no request, no reply), or a negative errno
 * with the thread's error recorded; req->id is then set if the request got
 * that far, so that the error reply can echo it. Release *@req every time.
 */
int kvmk_api_parse(const char *line, size_t len, struct kvmk_api_request *req);
void kvmk_api_request_release(struct kvmk_api_request *req);

/* {"ok":true,"id":...} (no "id" when @id is NULL), to which a command adds
 * its fields; NULL when memory runs out. */
struct json_object *kvmk_api_reply_ok(struct json_object *id);
/* {"ok":false,"id":...,"error":{"kind","errno","message","op"[,"state"]}}
 * from @e; NULL when memory runs out. */
struct json_object *kvmk_api_reply_error(struct json_object *id, const struct kvmkit_error *e);
/* Serialises @obj as one line ending in '\n' (malloc'ed; *@len without the
 * terminating NUL, may be NULL) and drops the reference. NULL when memory
 * runs out. */
char *kvmk_api_reply_line(struct json_object *obj, size_t *len);
/* Puts @v under @key in @o: 0, or -1 (and @v dropped) if either is missing
 * or the add fails, so builders can OR the results and check once. */
int kvmk_api_put(struct json_object *o, const char *key, struct json_object *v);

/* ---- line framing (lines.c) --------------------------------------------- */

/* Bytes one client's input buffer holds: the longest line and its newline. */
#define KVMK_API_LINE_BUF (KVMKIT_API_MAX_LINE + 1)

struct kvmk_api_lines {
	char *buf; /* KVMK_API_LINE_BUF bytes */
	size_t start; /* unconsumed input is buf[start, end) */
	size_t end;
	size_t scanned; /* bytes from start known to hold no newline */
	bool skipping; /* inside a too-long line, dropping it */
	size_t skipped; /* bytes of that line so far */
};

enum kvmk_api_next {
	KVMK_LINES_MORE = 0, /* no whole line held: read more */
	KVMK_LINES_LINE, /* a line: answer it */
	KVMK_LINES_TOO_LONG, /* a line passed KVMKIT_API_MAX_LINE: answer an error, it is skipped */
	KVMK_LINES_OVERFLOW, /* a skipped line passed KVMKIT_API_MAX_DISCARD: disconnect */
};

int kvmk_api_lines_init(struct kvmk_api_lines *l);
void kvmk_api_lines_release(struct kvmk_api_lines *l);
/* Empties @l, keeping its buffer (a fuzz run per input). */
void kvmk_api_lines_reset(struct kvmk_api_lines *l);
/* Where the next read goes and how much fits (moves held bytes to the
 * front: a line from kvmk_api_lines_next() is invalid afterwards). 0 only
 * while a whole line is held; kvmk_api_lines_next() frees room. */
char *kvmk_api_lines_space(struct kvmk_api_lines *l, size_t *room);
void kvmk_api_lines_commit(struct kvmk_api_lines *l, size_t n);
/* The next event; a LINE is *@line, *@len bytes without the newline, valid
 * until the next call to kvmk_api_lines_space(). */
enum kvmk_api_next kvmk_api_lines_next(struct kvmk_api_lines *l, const char **line, size_t *len);
/* True while part of a line (not yet ended) is held or being skipped. */
bool kvmk_api_lines_partial(const struct kvmk_api_lines *l);

/* ---- commands (commands.c) ---------------------------------------------- */

/* Runs @req on @vm, adding its fields to @reply; or a negative errno with
 * the thread's error recorded. */
int kvmk_api_execute(struct kvmkit_vm *vm, const struct kvmk_api_request *req,
		     struct json_object *reply);
/* The same with the machine @vm belongs to (NULL: none, snapshot is then
 * unsupported); kvmkit_api_handle() is this with @m NULL. */
int kvmk_api_execute_machine(struct kvmkit_vm *vm, struct kvmkit_machine *m,
			     const struct kvmk_api_request *req, struct json_object *reply);
int kvmk_api_handle(struct kvmkit_vm *vm, struct kvmkit_machine *m, const char *line, size_t len,
		    char **reply);

/* ---- the socket server (server.c) --------------------------------------- */

/* What the server does with each request line: a malloc'ed reply line
 * ending in '\n' in *@reply (NULL: no reply), 0 or -ENOMEM. Runs on the
 * server's thread. */
typedef int (*kvmk_api_handler)(void *opaque, const char *line, size_t len, char **reply);

/* The server without the VM: what kvmkit_api_server_create() runs with
 * kvmkit_api_handle() as @fn; tests hand it their own. */
int kvmk_api_server_start(const struct kvmkit_api_config *cfg, kvmk_api_handler fn, void *opaque,
			  struct kvmkit_api_server **out);

#endif
