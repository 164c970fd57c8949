// SPDX-License-Identifier: MIT
/*
 * The control socket: a unix stream socket served by one thread with a
 * poll loop over the listening fd, a wake eventfd and every client. The
 * transport knows nothing of commands: each request line goes to a handler
 * (kvmkit_api_handle() for a VM) and its reply is queued for the client.
 *
 * A client can neither stall the server nor make it grow without bound:
 * sockets are non-blocking and written with MSG_NOSIGNAL, input goes
 * through a fixed line buffer (lines.c), and a client whose unread replies
 * pass OUT_HIGH is not read from (its requests wait in the kernel) until
 * it reads them. Clients take turns, at most TURN_LINES requests each per
 * pass of the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <kvmkit/machine.h>

#include "api/api_internal.h"
#include "core/internal.h"

#define KVMK_LOG_MODULE "api"

/* Unread reply bytes past which a client's requests are left unread. */
#define OUT_HIGH (64 * 1024)
/* Requests one client gets answered per pass before the next client. */
#define TURN_LINES 64

struct client {
	int fd;
	struct kvmk_api_lines in;
	bool eof; /* the peer sent all it will send */
	bool blocked; /* a whole request is held, waiting for room to reply */
	char *out; /* replies not yet sent: out[out_off, out_len) */
	size_t out_off, out_len, out_cap;
};

struct kvmkit_api_server {
	char *path;
	dev_t dev; /* the socket file we bound, removed only if still ours */
	ino_t ino;
	int listen_fd;
	int wake_fd;
	kvmk_api_handler fn;
	void *opaque;
	pthread_t thread;
	bool stopping; /* atomic */
	bool accept_paused; /* out of fds: retry after a client leaves */
	unsigned int max_clients, nr_clients;
	struct client *clients; /* max_clients entries, fd -1 when free */
	struct pollfd *pfds; /* wake, listen, then one per client slot */
};

void kvmkit_api_config_init(struct kvmkit_api_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_clients = KVMKIT_API_MAX_CLIENTS;
}

const char *kvmkit_api_server_path(const struct kvmkit_api_server *srv)
{
	return srv->path;
}

/* ---- clients ------------------------------------------------------------ */

static size_t backlog(const struct client *c)
{
	return c->out_len - c->out_off;
}

static void drop_client(struct kvmkit_api_server *srv, struct client *c)
{
	close(c->fd);
	c->fd = -1;
	kvmk_api_lines_release(&c->in);
	free(c->out);
	c->out = NULL;
	c->out_off = c->out_len = c->out_cap = 0;
	c->eof = c->blocked = false;
	srv->nr_clients--;
	srv->accept_paused = false;
}

/* Appends @n bytes of reply to the client's queue; -ENOMEM if it cannot. */
static int queue(struct client *c, const char *s, size_t n)
{
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		/* Sent bytes go first: the queue then holds less than
		 * OUT_HIGH plus the reply being added. */
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, backlog(c));
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (cap < c->out_len + n)
			cap *= 2;
		if (cap != c->out_cap) {
			p = realloc(c->out, cap);
			if (!p)
				return -ENOMEM;
			c->out = p;
			c->out_cap = cap;
		}
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
	return 0;
}

/* Sends what the socket takes now. -1 when the client is gone. */
static int flush(struct client *c)
{
	while (backlog(c)) {
		ssize_t n =
			send(c->fd, c->out + c->out_off, backlog(c), MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1; /* EPIPE, ECONNRESET: it left mid-reply */
		c->out_off += (size_t)n;
	}
	return 0;
}

/* The handler's reply, or a fixed one when memory runs out. */
static int answer(struct kvmkit_api_server *srv, struct client *c, const char *line, size_t len)
{
	static const char oom[] =
		"{\"ok\":false,\"error\":{\"kind\":\"resource\",\"errno\":12,\"message\":\"out of memory\",\"op\":\"api\"}}\n";
	char *reply = NULL;
	int r;

	r = srv->fn(srv->opaque, line, len, &reply);
	if (r)
		return queue(c, oom, sizeof(oom) - 1);
	if (!reply)
		return 0;
	r = queue(c, reply, strlen(reply));
	free(reply);
	return r;
}

static int answer_too_long(struct client *c)
{
	struct kvmkit_error saved;
	struct json_object *o;
	char *line;
	int r;

	kvmk_err_save(&saved);
	kvmk_err_resource("request", EMSGSIZE,
			  "request line longer than %d bytes: skipped up to its newline",
			  KVMKIT_API_MAX_LINE);
	o = kvmk_api_reply_error(NULL, kvmkit_last_error());
	kvmk_err_restore(&saved);
	line = kvmk_api_reply_line(o, NULL);
	if (!line)
		return -ENOMEM;
	r = queue(c, line, strlen(line));
	free(line);
	return r;
}

/* Answers the requests the client has sent, up to its turn and as long as
 * its unread replies stay below OUT_HIGH. -1: drop the client. */
static int serve_lines(struct kvmkit_api_server *srv, struct client *c)
{
	const char *line;
	size_t len;

	c->blocked = false;
	for (unsigned int n = 0;; n++) {
		if (backlog(c) >= OUT_HIGH || n == TURN_LINES) {
			c->blocked = true;
			return 0;
		}
		switch (kvmk_api_lines_next(&c->in, &line, &len)) {
		case KVMK_LINES_MORE:
			return 0;
		case KVMK_LINES_LINE:
			if (answer(srv, c, line, len))
				return -1;
			break;
		case KVMK_LINES_TOO_LONG:
			if (answer_too_long(c))
				return -1;
			break;
		case KVMK_LINES_OVERFLOW:
			kvmk_debug("client fd %d: no newline within %d bytes: disconnected", c->fd,
				   KVMKIT_API_MAX_DISCARD);
			flush(c); /* the line's error reply, if the socket takes it */
			return -1;
		}
	}
}

/* Reads what the client sent. -1: drop it. */
static int read_client(struct client *c)
{
	size_t room;
	char *p = kvmk_api_lines_space(&c->in, &room);
	ssize_t n;

	if (!room)
		return 0; /* a whole request is held: serve it first */
	n = recv(c->fd, p, room, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	if (n == 0)
		c->eof = true;
	else
		kvmk_api_lines_commit(&c->in, (size_t)n);
	return 0;
}

/* One client's turn: read, answer, send. -1 when it is done with. */
static int service(struct kvmkit_api_server *srv, struct client *c, short revents)
{
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && !c->eof && !c->blocked && read_client(c))
		return -1;
	if (serve_lines(srv, c) || flush(c))
		return -1;
	/* The peer will send nothing more: once every whole request has
	 * been answered and sent, the connection ends. A request cut off by
	 * the disconnect is dropped unanswered. */
	if (c->eof && !c->blocked && !backlog(c))
		return -1;
	if ((revents & (POLLHUP | POLLERR)) && !(revents & POLLIN) && backlog(c))
		return -1; /* gone, with replies it will never read */
	return 0;
}

/* ---- accepting ---------------------------------------------------------- */

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == geteuid() || cred.uid == 0;
}

static void refuse(int fd, const char *why)
{
	char line[256];
	int n = snprintf(
		line, sizeof(line),
		"{\"ok\":false,\"error\":{\"kind\":\"resource\",\"errno\":%d,\"message\":\"%s\",\"op\":\"accept\"}}\n",
		EBUSY, why);
	ssize_t w = send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)w; /* best effort: the connection ends either way */
	close(fd);
}

static void accept_clients(struct kvmkit_api_server *srv)
{
	for (;;) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *c = NULL;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				kvmk_warn("accept: %s: waiting for a client to leave",
					  strerror(errno));
				srv->accept_paused = true;
			}
			return; /* EAGAIN, or a connection that went away meanwhile */
		}
		if (!peer_allowed(fd)) {
			close(fd);
			continue;
		}
		for (unsigned int i = 0; i < srv->max_clients && !c; i++)
			if (srv->clients[i].fd < 0)
				c = &srv->clients[i];
		if (!c) {
			refuse(fd, "too many clients");
			continue;
		}
		if (kvmk_api_lines_init(&c->in)) {
			refuse(fd, "out of memory");
			continue;
		}
		c->fd = fd;
		srv->nr_clients++;
	}
}

/* ---- the thread --------------------------------------------------------- */

static void *server_thread(void *arg)
{
	struct kvmkit_api_server *srv = arg;
	unsigned int n = srv->max_clients;

	while (!__atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE)) {
		bool pending = false;
		int r;

		srv->pfds[0] = (struct pollfd){ .fd = srv->wake_fd, .events = POLLIN };
		srv->pfds[1] = (struct pollfd){ .fd = srv->accept_paused ? -1 : srv->listen_fd,
						.events = POLLIN };
		for (unsigned int i = 0; i < n; i++) {
			struct client *c = &srv->clients[i];
			short ev = 0;

			if (c->fd >= 0 && !c->eof && !c->blocked)
				ev |= POLLIN;
			if (c->fd >= 0 && backlog(c))
				ev |= POLLOUT;
			/* Requests held back by the turn limit need no event. */
			pending |= c->fd >= 0 && c->blocked && backlog(c) < OUT_HIGH;
			srv->pfds[2 + i] = (struct pollfd){ .fd = c->fd, .events = ev };
		}
		r = poll(srv->pfds, 2 + n, pending ? 0 : srv->accept_paused ? 100 : -1);
		if (r < 0 && errno != EINTR) {
			kvmk_error("poll: %s", strerror(errno));
			break;
		}
		if (r < 0)
			continue;
		if (srv->pfds[1].revents & POLLIN)
			accept_clients(srv);
		for (unsigned int i = 0; i < n; i++) {
			struct client *c = &srv->clients[i];
			short rev = srv->pfds[2 + i].revents;

			/* A client accepted in this pass has no event yet. */
			if (c->fd < 0 || srv->pfds[2 + i].fd != c->fd)
				continue;
			if ((rev || (c->blocked && backlog(c) < OUT_HIGH)) && service(srv, c, rev))
				drop_client(srv, c);
		}
	}
	return NULL;
}

/* ---- the socket file ---------------------------------------------------- */

/* Whether a server answers at @addr (a socket file found there). */
static int probe_live(const struct sockaddr_un *addr, bool *live)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int r = 0;

	if (fd < 0)
		return kvmk_err_sys("socket", errno, "AF_UNIX");
	/* Non-blocking: a server whose backlog is full answers EAGAIN. */
	*live = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 || errno == EAGAIN;
	if (!*live && errno != ECONNREFUSED)
		r = kvmk_err_sys("connect", errno, "%s: probing the existing socket",
				 addr->sun_path);
	close(fd);
	return r;
}

static int bind_socket(struct kvmkit_api_server *srv)
{
	const char *op = "kvmkit_api_server_create";
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	bool live;
	int r;

	memcpy(addr.sun_path, srv->path, strlen(srv->path) + 1);
	if (lstat(srv->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return kvmk_err_sys(op, EEXIST, "%s: exists and is not a socket",
					    srv->path);
		r = probe_live(&addr, &live);
		if (r)
			return r;
		if (live)
			return kvmk_err_sys(op, EADDRINUSE, "%s: a server is listening there",
					    srv->path);
		/* A socket nobody serves any more (a server that died). */
		if (unlink(srv->path) < 0 && errno != ENOENT)
			return kvmk_err_sys("unlink", errno, "stale socket %s", srv->path);
	} else if (errno != ENOENT) {
		return kvmk_err_sys("lstat", errno, "%s", srv->path);
	}
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0)
		return kvmk_err_sys("socket", errno, "AF_UNIX");
	/* Linux creates the socket file with the socket inode's mode less the
	 * umask: setting it first means the file is never more open than
	 * 0600, not even between bind() and a chmod(). */
	if (fchmod(srv->listen_fd, S_IRUSR | S_IWUSR) < 0)
		return kvmk_err_sys("fchmod", errno, "socket for %s", srv->path);
	if (bind(srv->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return kvmk_err_sys("bind", errno, "%s", srv->path);
	if (lstat(srv->path, &st) < 0)
		return kvmk_err_sys("lstat", errno, "%s", srv->path);
	srv->dev = st.st_dev;
	srv->ino = st.st_ino;
	/* Kernels that ignore the inode's mode: close the file right away. */
	if ((st.st_mode & 0077) && chmod(srv->path, S_IRUSR | S_IWUSR) < 0)
		return kvmk_err_sys("chmod", errno, "%s", srv->path);
	if (listen(srv->listen_fd, SOMAXCONN) < 0)
		return kvmk_err_sys("listen", errno, "%s", srv->path);
	return 0;
}

/* Removes the socket file if it is still the one this server bound. */
static void unlink_ours(struct kvmkit_api_server *srv)
{
	struct stat st;

	if (srv->ino && lstat(srv->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == srv->dev && st.st_ino == srv->ino)
		unlink(srv->path);
}

/* ---- create and destroy ------------------------------------------------- */

static void free_server(struct kvmkit_api_server *srv)
{
	for (unsigned int i = 0; srv->clients && i < srv->max_clients; i++)
		if (srv->clients[i].fd >= 0)
			drop_client(srv, &srv->clients[i]);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	unlink_ours(srv);
	if (srv->wake_fd >= 0)
		close(srv->wake_fd);
	free(srv->clients);
	free(srv->pfds);
	free(srv->path);
	free(srv);
}

static int start_thread(struct kvmkit_api_server *srv)
{
	sigset_t all, old;
	int e;

	/* The thread inherits the mask: every asynchronous signal stays
	 * with the process's other threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&srv->thread, NULL, server_thread, srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		return kvmk_err_sys("pthread_create", e, "API server thread");
	pthread_setname_np(srv->thread, "kvmkit-api");
	return 0;
}

int kvmk_api_server_start(const struct kvmkit_api_config *cfg, kvmk_api_handler fn, void *opaque,
			  struct kvmkit_api_server **out)
{
	const char *op = "kvmkit_api_server_create";
	struct kvmkit_api_server *srv;
	struct kvmkit_error saved;
	int r;

	*out = NULL;
	if (!cfg || !cfg->path || !*cfg->path)
		return kvmk_err_param(op, "path", "is missing", "%s", "");
	if (strlen(cfg->path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return kvmk_err_param(op, "path",
				      "longer than a unix socket path can be (107 bytes)", "%s",
				      cfg->path);
	if (cfg->max_clients > 4096)
		return kvmk_err_param(op, "max_clients", "at most 4096", "%u", cfg->max_clients);
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return kvmk_err_resource(op, ENOMEM, "server");
	srv->listen_fd = srv->wake_fd = -1;
	srv->fn = fn;
	srv->opaque = opaque;
	srv->max_clients = cfg->max_clients ? cfg->max_clients : KVMKIT_API_MAX_CLIENTS;
	srv->path = strdup(cfg->path);
	srv->clients = calloc(srv->max_clients, sizeof(*srv->clients));
	srv->pfds = calloc(2 + srv->max_clients, sizeof(*srv->pfds));
	if (!srv->path || !srv->clients || !srv->pfds) {
		r = kvmk_err_resource(op, ENOMEM, "server");
		goto fail;
	}
	for (unsigned int i = 0; i < srv->max_clients; i++)
		srv->clients[i].fd = -1;
	srv->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (srv->wake_fd < 0) {
		r = kvmk_err_sys("eventfd", errno, "API server wake-up");
		goto fail;
	}
	r = bind_socket(srv);
	if (!r)
		r = start_thread(srv);
	if (r)
		goto fail;
	kvmk_debug("listening on %s", srv->path);
	*out = srv;
	return 0;
fail:
	kvmk_err_save(&saved);
	free_server(srv);
	kvmk_err_restore(&saved);
	return r;
}

static int handle_vm(void *opaque, const char *line, size_t len, char **reply)
{
	return kvmkit_api_handle(opaque, line, len, reply);
}

int kvmkit_api_server_create(struct kvmkit_vm *vm, const struct kvmkit_api_config *cfg,
			     struct kvmkit_api_server **out)
{
	if (!out)
		return kvmk_err_param("kvmkit_api_server_create", "out", "is NULL", "%s", "NULL");
	*out = NULL;
	if (!vm)
		return kvmk_err_param("kvmkit_api_server_create", "vm", "is NULL", "%s", "NULL");
	return kvmk_api_server_start(cfg, handle_vm, vm, out);
}

static int handle_machine(void *opaque, const char *line, size_t len, char **reply)
{
	return kvmk_api_handle(kvmkit_machine_vm(opaque), opaque, line, len, reply);
}

int kvmkit_api_server_create_machine(struct kvmkit_machine *m, const struct kvmkit_api_config *cfg,
				     struct kvmkit_api_server **out)
{
	if (!out)
		return kvmk_err_param("kvmkit_api_server_create", "out", "is NULL", "%s", "NULL");
	*out = NULL;
	if (!m)
		return kvmk_err_param("kvmkit_api_server_create", "m", "is NULL", "%s", "NULL");
	return kvmk_api_server_start(cfg, handle_machine, m, out);
}

void kvmkit_api_server_destroy(struct kvmkit_api_server *srv)
{
	uint64_t one = 1;
	ssize_t w;

	if (!srv)
		return;
	__atomic_store_n(&srv->stopping, true, __ATOMIC_RELEASE);
	w = write(srv->wake_fd, &one, sizeof(one));
	(void)w; /* an eventfd write of 1 only fails at 2^64 - 1 */
	pthread_join(srv->thread, NULL);
	free_server(srv);
}
