// SPDX-License-Identifier: MIT
/*
 * virtio-console (virtio 1.x 5.3) with one port, no feature bits: queue 0
 * (receiveq) carries input to the guest, queue 1 (transmitq) its output.
 *
 * Output: the device thread copies each transmit chain into a bounded
 * buffer and gives the chain back once all of it is copied; a writer thread
 * of the device's own drains the buffer into out_fd. While the buffer is
 * full the transmit queue waits (the guest's driver waits for its buffers,
 * nothing is lost), and a vCPU never calls write() nor waits for one: a
 * console nobody reads stalls only the guest's console output. At destroy
 * the writer gets up to 1 s to drain, then a write() stuck on out_fd is
 * interrupted with the VM's kick signal, as the UART does.
 *
 * Input: kvmkit_virtio_console_feed() queues bytes (up to 4 KiB) that fill
 * the receive buffers the guest made available.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "virtio"
#include "virtio/virtio_internal.h"

#define TX_CAP 16384
#define RX_CAP 4096
#define KEEP_CAP 65536
#define WRITE_MAX 4096
#define BUDGET 256
#define DRAIN_MS 1000

struct vcon {
	int out_fd;
	int kick_signal;
	/* Under t->lock. */
	uint8_t tx[TX_CAP];
	size_t tx_head, tx_len;
	uint8_t rx[RX_CAP];
	size_t rx_head, rx_len;
	char kept[KEEP_CAP]; /* what the guest sent, for kvmkit_virtio_console_output */
	size_t kept_len;
	struct kvmk_vq_chain txc; /* the transmit chain being copied */
	bool tx_held, tx_starved;
	uint64_t tx_off;
	/* The writer thread. */
	pthread_t writer;
	pthread_cond_t tx_cond, done_cond;
	bool have_writer, stopping, writer_done;
	int out_error;
	uint32_t cap;
	struct kvmk_vq_seg seg[];
};

static void rx_queue(struct kvmk_virtio *t, struct vcon *v)
{
	struct kvmk_vq *vq = &t->q[0].vq;
	struct kvmk_vq_chain c = { .seg = v->seg, .cap = v->cap };
	bool pushed = false;

	while (v->rx_len) {
		uint64_t done = 0;
		int r = kvmk_vq_pop(vq, &c);

		if (r < 0) {
			kvmk_virtio_broken(t, 0);
			break;
		}
		if (r == 0) {
			if (kvmk_vq_rearm(vq))
				continue;
			break;
		}
		while (v->rx_len && done < c.write_len) {
			size_t n =
				RX_CAP - v->rx_head < v->rx_len ? RX_CAP - v->rx_head : v->rx_len;

			if (n > c.write_len - done)
				n = c.write_len - done;
			kvmk_chain_write(&c, &t->mem, done, v->rx + v->rx_head, n);
			v->rx_head = (v->rx_head + n) % RX_CAP;
			v->rx_len -= n;
			done += n;
		}
		if (kvmk_vq_push(vq, &c, (uint32_t)done)) {
			t->st.chains++;
			pushed = true;
		}
	}
	if (pushed)
		kvmk_virtio_used(t, 0);
}

/* Copies what fits of the held chain; true once all of it is copied. */
static bool tx_copy(struct vcon *v)
{
	while (v->tx_off < v->txc.read_len) {
		size_t tail = (v->tx_head + v->tx_len) % TX_CAP, room = TX_CAP - v->tx_len, n;

		if (v->out_fd < 0)
			room = TX_CAP, tail = 0; /* no writer: only kept */
		if (!room)
			return false;
		n = TX_CAP - tail < room ? TX_CAP - tail : room;
		if (n > v->txc.read_len - v->tx_off)
			n = v->txc.read_len - v->tx_off;
		n = kvmk_chain_read(&v->txc, v->tx_off, v->tx + tail, n);
		if (v->kept_len < KEEP_CAP) {
			size_t k = n < KEEP_CAP - v->kept_len ? n : KEEP_CAP - v->kept_len;

			memcpy(v->kept + v->kept_len, v->tx + tail, k);
			v->kept_len += k;
		}
		if (v->out_fd >= 0 && !v->out_error) {
			v->tx_len += n;
			pthread_cond_signal(&v->tx_cond);
		}
		v->tx_off += n;
	}
	return true;
}

static void tx_queue(struct kvmk_virtio *t, struct vcon *v)
{
	struct kvmk_vq *vq = &t->q[1].vq;
	unsigned int n = 0;
	bool pushed = false;

	while (n < BUDGET) {
		if (!v->tx_held) {
			int r = kvmk_vq_pop(vq, &v->txc);

			if (r < 0) {
				kvmk_virtio_broken(t, 1);
				break;
			}
			if (r == 0) {
				if (kvmk_vq_rearm(vq))
					continue;
				break;
			}
			v->tx_held = true;
			v->tx_off = 0;
		}
		if (!tx_copy(v)) {
			v->tx_starved = true; /* the writer kicks us when it drained */
			break;
		}
		v->tx_held = false;
		if (kvmk_vq_push(vq, &v->txc, 0)) {
			t->st.chains++;
			pushed = true;
		}
		n++;
	}
	if (n == BUDGET)
		kvmk_virtio_kick(t);
	if (pushed)
		kvmk_virtio_used(t, 1);
}

static void con_queue(struct kvmk_virtio *t, unsigned int q)
{
	if (q == 0)
		rx_queue(t, t->priv);
	else
		tx_queue(t, t->priv);
}

static void con_reset(struct kvmk_virtio *t)
{
	struct vcon *v = t->priv;

	/* The chain being copied belonged to the old queue. */
	v->tx_held = false;
	v->tx_starved = false;
}

static void *writer_main(void *arg)
{
	struct kvmk_virtio *t = arg;
	struct vcon *v = t->priv;
	sigset_t set;

	/* Created with every signal blocked; only the kick may interrupt a
	 * write (so a closed reader is EPIPE, never SIGPIPE). */
	sigemptyset(&set);
	sigaddset(&set, v->kick_signal);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	pthread_mutex_lock(&t->lock);
	while (!v->stopping) {
		size_t n = v->tx_len < TX_CAP - v->tx_head ? v->tx_len : TX_CAP - v->tx_head;
		const uint8_t *start = v->tx + v->tx_head;
		ssize_t w;
		int err;

		if (!n) {
			pthread_cond_broadcast(&v->done_cond);
			pthread_cond_wait(&v->tx_cond, &t->lock);
			continue;
		}
		if (n > WRITE_MAX)
			n = WRITE_MAX;
		/* The device thread only appends behind these bytes. */
		pthread_mutex_unlock(&t->lock);
		w = write(v->out_fd, start, n);
		err = w < 0 ? errno : 0;
		if (err == EAGAIN || err == EWOULDBLOCK) {
			/* A non-blocking out_fd (not ours to change): wait
			 * until it takes bytes, a while at most, so that a
			 * stop is seen. */
			struct pollfd p = { .fd = v->out_fd, .events = POLLOUT };

			poll(&p, 1, 100);
		}
		pthread_mutex_lock(&t->lock);
		if (w > 0) {
			v->tx_head = (v->tx_head + (size_t)w) % TX_CAP;
			v->tx_len -= (size_t)w;
			if (v->tx_starved) {
				v->tx_starved = false;
				kvmk_virtio_kick(t);
			}
			continue;
		}
		if (err == EINTR || err == EAGAIN || err == EWOULDBLOCK)
			continue;
		/* Output is gone for good: the guest's output is kept in memory
		 * only from now on, and nothing waits for the writer. */
		v->out_error = w == 0 ? EIO : err;
		v->tx_len = 0;
		kvmk_warn("virtio-console: output ended: %s", strerror(v->out_error));
		if (v->tx_starved) {
			v->tx_starved = false;
			kvmk_virtio_kick(t);
		}
		break;
	}
	v->writer_done = true;
	pthread_cond_broadcast(&v->done_cond);
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static void deadline_ms(struct timespec *ts, unsigned int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Lets the writer drain for up to DRAIN_MS, then stops it wherever it is;
 * the signal repeats because one sent just before write() would be lost. */
static void stop_writer(struct kvmk_virtio *t, struct vcon *v)
{
	struct timespec ts;

	pthread_mutex_lock(&t->lock);
	deadline_ms(&ts, DRAIN_MS);
	while (v->tx_len && !v->writer_done &&
	       pthread_cond_timedwait(&v->done_cond, &t->lock, &ts) != ETIMEDOUT)
		;
	v->stopping = true;
	pthread_cond_signal(&v->tx_cond);
	while (!v->writer_done) {
		pthread_kill(v->writer, v->kick_signal);
		deadline_ms(&ts, 10);
		pthread_cond_timedwait(&v->done_cond, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	pthread_join(v->writer, NULL);
}

static void con_destroy(struct kvmk_virtio *t)
{
	struct vcon *v = t->priv;

	if (!v)
		return;
	if (v->have_writer)
		stop_writer(t, v);
	pthread_cond_destroy(&v->tx_cond);
	pthread_cond_destroy(&v->done_cond);
	free(v);
}

static void con_destroy_unattached(struct vcon *v)
{
	pthread_cond_destroy(&v->tx_cond);
	pthread_cond_destroy(&v->done_cond);
	free(v);
}

static const struct kvmk_virtio_ops con_ops = {
	.name = "virtio-console",
	.device_id = KVMKIT_VIRTIO_ID_CONSOLE,
	.nqueues = 2,
	.queue = con_queue,
	.reset = con_reset,
	.destroy = con_destroy,
};

static int start_writer(struct kvmk_virtio *t, struct vcon *v)
{
	struct sigaction sa;
	sigset_t all, old;
	int r;

	/* The kick interrupts a blocked write() only through a handler that
	 * does not restart it (the VM installs one for its vCPUs). */
	if (sigaction(v->kick_signal, NULL, &sa) || (sa.sa_flags & SA_RESTART) ||
	    (!(sa.sa_flags & SA_SIGINFO) && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)))
		return kvmk_err_param("kvmkit_virtio_console_create", "kick signal",
				      "needs a handler installed without SA_RESTART", "%d",
				      v->kick_signal);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&v->writer, NULL, writer_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return kvmk_err_resource("kvmkit_virtio_console_create", r, "writer thread");
	v->have_writer = true;
	return 0;
}

int kvmkit_virtio_console_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
				 int out_fd, struct kvmkit_virtio **out)
{
	uint32_t cap = cfg && cfg->queue_size ? cfg->queue_size : KVMK_VIRTIO_DEFAULT_QSIZE;
	struct kvmk_virtio *t = NULL;
	struct vcon *v;
	int r;

	if (out_fd >= 0 && fcntl(out_fd, F_GETFL) < 0)
		return kvmk_err_param("kvmkit_virtio_console_create", "out_fd",
				      "an open file descriptor", "%d", out_fd);
	if (cap > KVMK_VQ_MAX_SIZE)
		cap = KVMK_VQ_MAX_SIZE; /* refused by the transport anyway */
	v = calloc(1, sizeof(*v) + cap * sizeof(v->seg[0]) * 2);
	if (!v)
		return kvmk_err_resource("kvmkit_virtio_console_create", ENOMEM, NULL);
	v->out_fd = out_fd;
	v->cap = cap;
	/* The transmit chain has its own segments: it is held across calls. */
	v->txc.seg = v->seg + cap;
	v->txc.cap = cap;
	v->kick_signal = kvmkit_vm_config(vm)->pause_signal;
	kvmk_cond_init_monotonic(&v->tx_cond);
	kvmk_cond_init_monotonic(&v->done_cond);
	r = kvmk_virtio_create(vm, cfg, &con_ops, v, &t);
	if (!r) {
		pthread_mutex_lock(&t->lock);
		t->config_len = 12; /* cols, rows, max_nr_ports, emerg_wr: none offered */
		pthread_mutex_unlock(&t->lock);
		if (out_fd >= 0)
			r = start_writer(t, v);
	}
	if (r) {
		if (t)
			kvmkit_virtio_destroy(kvmk_virtio_dev(t));
		else
			con_destroy_unattached(v);
		return r;
	}
	*out = kvmk_virtio_dev(t);
	return 0;
}

size_t kvmkit_virtio_console_feed(struct kvmkit_virtio *dev, const void *buf, size_t len)
{
	struct kvmk_virtio *t = &dev->t;
	struct vcon *v = t->priv;
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	while (n < len && v->rx_len < RX_CAP) {
		v->rx[(v->rx_head + v->rx_len) % RX_CAP] = ((const uint8_t *)buf)[n++];
		v->rx_len++;
	}
	pthread_mutex_unlock(&t->lock);
	if (n)
		kvmk_virtio_kick(t);
	return n;
}

size_t kvmkit_virtio_console_output(struct kvmkit_virtio *dev, char *buf, size_t len)
{
	struct kvmk_virtio *t = &dev->t;
	struct vcon *v = t->priv;
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = v->kept_len < len ? v->kept_len : len;
	memcpy(buf, v->kept, n);
	pthread_mutex_unlock(&t->lock);
	return n;
}
