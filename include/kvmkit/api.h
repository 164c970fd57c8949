/* SPDX-License-Identifier: MIT */
/*
 * The control API: a VM driven from outside the process over a unix socket,
 * one JSON request per line and one JSON reply per line (docs/API.md has
 * every command, field, error and limit).
 *
 * Commands: query, pause, resume, stop, snapshot and migrate; the last two
 * need the machine (a server on a VM alone answers "unsupported").
 *
 * Threads. kvmkit_api_server_create() starts one thread of its own that
 * accepts clients and runs every request, one at a time, in the order the
 * requests arrive. A pause or stop therefore never runs on a vCPU thread;
 * it returns once the vCPUs are parked (pause) or joined (stop), and the
 * server answers other clients again after that. The server thread blocks
 * every asynchronous signal, so the process's signals go to other threads.
 *
 * Lifetimes. Create the server once the VM's vCPUs and irqchip exist
 * (for a machine: after kvmkit_machine_create()): queries read them
 * without the VM's creation-time locks. The server uses @vm until
 * kvmkit_api_server_destroy() returns: destroy the server before the VM
 * (or a machine holding it), and from a thread other than the server's. The caller may
 * run, wait for, pause or stop the VM meanwhile as usual; a stop request
 * from a client ends with the VM STOPPED, and kvmkit_vm_wait() returns as
 * for any other kvmkit_vm_stop(). The socket file exists from create to
 * destroy; destroy removes it if it is still the one the server bound.
 */
#ifndef KVMKIT_API_H
#define KVMKIT_API_H

#include <stddef.h>

#include <kvmkit/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The protocol's version, in every query reply ("protocol"). */
#define KVMKIT_API_PROTOCOL 1
/* Longest request line, without its newline. A longer one gets one error
 * reply and is skipped up to its newline; a client whose line passes
 * KVMKIT_API_MAX_DISCARD bytes without a newline is disconnected. */
#define KVMKIT_API_MAX_LINE 65536
#define KVMKIT_API_MAX_DISCARD (4 * KVMKIT_API_MAX_LINE)
/* Clients served at once by default; one more is told so and closed. */
#define KVMKIT_API_MAX_CLIENTS 64

struct kvmkit_api_server;

struct kvmkit_api_config {
	const char *path; /* the unix socket to create (shorter than 108 bytes) */
	unsigned int max_clients; /* 0: KVMKIT_API_MAX_CLIENTS */
};

void kvmkit_api_config_init(struct kvmkit_api_config *cfg);

/*
 * Listens on cfg->path and serves @vm from a thread of its own. The socket
 * is created with mode 0600 (owner only) and only clients of the same user
 * (or root) are served. An existing file at the path is never replaced,
 * except a socket nobody listens on any more (a stale one): -EEXIST for
 * any other file, -EADDRINUSE when a server answers there.
 */
int kvmkit_api_server_create(struct kvmkit_vm *vm, const struct kvmkit_api_config *cfg,
			     struct kvmkit_api_server **out);
/* The same for a machine (machine.h): its VM, and "snapshot" and "migrate"
 * too (kvmkit_machine_snapshot() into the request's directory,
 * kvmkit_machine_migrate() to its address, on the server's thread; for a
 * VM alone both are "unsupported"). @m must outlive the server. */
struct kvmkit_machine;
int kvmkit_api_server_create_machine(struct kvmkit_machine *m, const struct kvmkit_api_config *cfg,
				     struct kvmkit_api_server **out);
/* Stops the thread (after the request it is running, if any), closes every
 * client and removes the socket file. NULL is a no-op. */
void kvmkit_api_server_destroy(struct kvmkit_api_server *srv);
const char *kvmkit_api_server_path(const struct kvmkit_api_server *srv);

/*
 * One request for @vm, for embedders with a transport of their own: @line
 * is one request without its newline (@len bytes, NUL bytes refused).
 * *@reply gets a malloc'ed reply line ending in '\n' (an error reply for a
 * bad request), or NULL for a blank line, which needs none. Returns 0, or
 * -ENOMEM with nothing to send. Not on a vCPU thread: pause and stop wait
 * for the vCPUs (they are refused there with an invalid-state reply).
 */
int kvmkit_api_handle(struct kvmkit_vm *vm, const char *line, size_t len, char **reply);

/*
 * A client: connects to @path, sends @request (one JSON line, without a
 * newline) and returns the reply line, malloc'ed and without its newline,
 * in *@reply. Waits at most @timeout_ms (-1: no limit) in all. Errors:
 * the socket's (-ENOENT, -ECONNREFUSED, ...), -ETIMEDOUT, -EPROTO when the
 * connection closes before a whole reply or the reply is longer than
 * 16 MiB. The reply itself may be an error reply ({"ok":false,...}).
 */
int kvmkit_api_call(const char *path, const char *request, int timeout_ms, char **reply);

#ifdef __cplusplus
}
#endif
#endif
