// SPDX-License-Identifier: MIT
/*
 * virtio-blk (virtio 1.x 5.2) over a raw image. One request queue.
 * Requests are parsed by blk_req.c; reads and writes go to io_uring where
 * the host allows it (completions come back on the device thread through
 * the ring's eventfd), else preadv/pwritev on the device thread with the
 * transport's lock released. An image on a memory file system (tmpfs)
 * always takes the synchronous path: io_uring could only pass its requests
 * to worker threads there. Flush, discard and write-zeroes run on the
 * device thread the same way. Every request started is counted in
 * t->inflight until it completes, so a reset waits for its data to land.
 * At most QueueNumMax requests are in flight: past that the queue is left
 * alone until one completes (a guest reusing heads cannot grow memory).
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#ifdef KVMKIT_HAVE_LIBURING
#include <liburing.h>
#endif

#define KVMK_LOG_MODULE "virtio"
#include "virtio/blk_req.h"
#include "virtio/virtio_internal.h"

#define BUDGET 256
/* statfs(2) f_type of the memory file systems (linux/magic.h). */
#define FS_TMPFS 0x01021994
#define FS_RAMFS 0x858458f6
#define FS_HUGETLBFS 0x958458f6
/* Segments per request the driver may use (config seg_max + header and
 * status), bounded by the queue size: 256 lets Linux send a 1 MiB request
 * of scattered pages as one request (seg_max 254, as QEMU's with a
 * 256-entry queue), not three. */
#define SEG_CAP 256

struct blk_rq {
	struct kvmk_vq_chain c;
	struct kvmk_blk_req req;
	struct iovec *iov;
	int niov;
	struct blk_rq *next; /* free list */
};

struct blk {
	int fd;
	bool ro;
	uint64_t sectors;
	char serial[VIRTIO_BLK_ID_BYTES];
	uint32_t seg_cap;
	unsigned int nrq;
	struct blk_rq *rqs, *free;
	struct kvmk_vq_seg *segs;
	struct iovec *iovs;
	bool starved; /* the queue waits for a free request */
	bool in_memory; /* the image is on tmpfs, ramfs or hugetlbfs */
	unsigned int test_delay_ms; /* tests: the next blocking I/O waits first */
	bool uring;
#ifdef KVMKIT_HAVE_LIBURING
	struct io_uring ring;
	int ring_efd;
	unsigned int ring_busy; /* submitted, not reaped */
#endif
};

static void finish(struct kvmk_virtio *t, struct blk_rq *rq, uint8_t status)
{
	struct blk *b = t->priv;
	uint32_t written = 1;

	if (status == VIRTIO_BLK_S_OK && (rq->req.op == BLK_OP_READ || rq->req.op == BLK_OP_GET_ID))
		written += (uint32_t)rq->req.len;
	kvmk_chain_write(&rq->c, &t->mem, rq->req.status_off, &status, 1);
	if (kvmk_vq_push(&t->q[0].vq, &rq->c, written)) {
		t->st.chains++;
		kvmk_virtio_used(t, 0);
	}
	rq->next = b->free;
	b->free = rq;
	if (b->starved) {
		b->starved = false;
		kvmk_virtio_kick(t);
	}
}

/* A READ wrote guest memory behind KVM's back: tell the dirty log. */
static void mark_read(struct kvmk_virtio *t, const struct blk_rq *rq)
{
	for (uint32_t i = rq->c.nread; i < rq->c.nseg; i++)
		if (rq->c.seg[i].len)
			kvmkit_vm_mark_dirty(t->vm, rq->c.seg[i].gpa, rq->c.seg[i].len);
}

static int zero_range(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536];

	if (!fallocate(fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) ||
	    !fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
		return 0;
	while (len) {
		size_t n = len < sizeof(zeros) ? len : sizeof(zeros);
		ssize_t w = pwrite(fd, zeros, n, (off_t)off);

		if (w <= 0)
			return -1;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/* Blocking work, run with t->lock released. */
static uint8_t do_sync(struct blk *b, struct blk_rq *rq)
{
	const struct kvmk_blk_req *r = &rq->req;
	unsigned int delay = __atomic_exchange_n(&b->test_delay_ms, 0, __ATOMIC_RELAXED);
	ssize_t n;

	if (delay)
		usleep(delay * 1000);

	switch (r->op) {
	case BLK_OP_READ:
		n = preadv(b->fd, rq->iov, rq->niov, (off_t)r->offset);
		return n == (ssize_t)r->len ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	case BLK_OP_WRITE:
		n = pwritev(b->fd, rq->iov, rq->niov, (off_t)r->offset);
		return n == (ssize_t)r->len ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	case BLK_OP_FLUSH:
		return fdatasync(b->fd) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	case BLK_OP_DISCARD:
		/* A hint: a file system without holes still did its part. */
		fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)r->offset,
			  (off_t)r->len);
		return VIRTIO_BLK_S_OK;
	case BLK_OP_ZEROES:
		return zero_range(b->fd, r->offset, r->len) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	default:
		return VIRTIO_BLK_S_IOERR;
	}
}

#ifdef KVMKIT_HAVE_LIBURING
static bool submit_uring(struct blk *b, struct blk_rq *rq)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

	if (!sqe)
		return false;
	if (rq->req.op == BLK_OP_READ)
		io_uring_prep_readv(sqe, b->fd, rq->iov, (unsigned int)rq->niov, rq->req.offset);
	else
		io_uring_prep_writev(sqe, b->fd, rq->iov, (unsigned int)rq->niov, rq->req.offset);
	io_uring_sqe_set_data(sqe, rq);
	if (io_uring_submit(&b->ring) != 1)
		return false;
	b->ring_busy++;
	return true;
}
#endif

static void start(struct kvmk_virtio *t, struct blk_rq *rq)
{
	struct blk *b = t->priv;
	uint8_t status;

	switch (rq->req.op) {
	case BLK_OP_NONE:
		finish(t, rq, rq->req.status);
		return;
	case BLK_OP_GET_ID:
		kvmk_chain_write(&rq->c, &t->mem, 0, b->serial, rq->req.len);
		finish(t, rq, VIRTIO_BLK_S_OK);
		return;
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		rq->niov = kvmk_blk_iov(&rq->c, &rq->req, rq->iov, (int)b->seg_cap);
		if (rq->niov < 0) {
			finish(t, rq, VIRTIO_BLK_S_IOERR);
			return;
		}
#ifdef KVMKIT_HAVE_LIBURING
		if (b->uring && rq->req.len &&
		    !__atomic_load_n(&b->test_delay_ms, __ATOMIC_RELAXED) && submit_uring(b, rq)) {
			kvmk_virtio_inflight_get(t);
			return;
		}
#endif
		break;
	default:
		break;
	}
	kvmk_virtio_inflight_get(t);
	pthread_mutex_unlock(&t->lock);
	status = do_sync(b, rq);
	pthread_mutex_lock(&t->lock);
	if (status == VIRTIO_BLK_S_OK && rq->req.op == BLK_OP_READ)
		mark_read(t, rq);
	finish(t, rq, status);
	kvmk_virtio_inflight_put(t);
}

static void blk_queue(struct kvmk_virtio *t, unsigned int q)
{
	struct blk *b = t->priv;
	struct kvmk_vq *vq = &t->q[q].vq;
	struct kvmk_blk_limits lim = { b->sectors, b->ro, t->driver_features };
	unsigned int n = 0;

	/* Live again after every unlocked stretch: a reset may have come. */
	while (n < BUDGET && kvmk_virtio_queue_live(t, q)) {
		struct blk_rq *rq = b->free;
		int r;

		if (!rq) {
			b->starved = true;
			return;
		}
		r = kvmk_vq_pop(vq, &rq->c);
		if (r < 0) {
			kvmk_virtio_broken(t, q);
			return;
		}
		if (r == 0) {
			if (kvmk_vq_rearm(vq))
				continue;
			return;
		}
		b->free = rq->next;
		n++;
		if (kvmk_blk_parse(&rq->c, &lim, &rq->req)) {
			snprintf(vq->why, sizeof(vq->why), "request %u without a status byte",
				 rq->c.head);
			vq->broken = true;
			rq->next = b->free;
			b->free = rq;
			kvmk_virtio_broken(t, q);
			return;
		}
		start(t, rq);
	}
	if (n == BUDGET)
		kvmk_virtio_kick(t);
}

#ifdef KVMKIT_HAVE_LIBURING
static int blk_poll_fd(struct kvmk_virtio *t)
{
	struct blk *b = t->priv;

	return b->uring ? b->ring_efd : -1;
}

/* io_uring completions (device thread, without the lock). */
static void blk_poll(struct kvmk_virtio *t)
{
	struct blk *b = t->priv;
	struct io_uring_cqe *cqe;
	eventfd_t v;

	eventfd_read(b->ring_efd, &v);
	pthread_mutex_lock(&t->lock);
	while (b->ring_busy && !io_uring_peek_cqe(&b->ring, &cqe)) {
		struct blk_rq *rq = io_uring_cqe_get_data(cqe);
		bool ok = cqe->res >= 0 && (uint64_t)cqe->res == rq->req.len;

		io_uring_cqe_seen(&b->ring, cqe);
		b->ring_busy--;
		if (ok && rq->req.op == BLK_OP_READ)
			mark_read(t, rq);
		finish(t, rq, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR);
		kvmk_virtio_inflight_put(t);
	}
	pthread_mutex_unlock(&t->lock);
}

static void uring_init(struct blk *b, unsigned int entries)
{
	b->ring_efd = -1;
	if (io_uring_queue_init(entries, &b->ring, 0) < 0) {
		kvmk_info("virtio-blk: no io_uring here: synchronous I/O");
		return;
	}
	b->ring_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->ring_efd < 0 || io_uring_register_eventfd(&b->ring, b->ring_efd) < 0) {
		kvmk_info("virtio-blk: io_uring without an eventfd: synchronous I/O");
		if (b->ring_efd >= 0)
			close(b->ring_efd);
		b->ring_efd = -1;
		io_uring_queue_exit(&b->ring);
		return;
	}
	b->uring = true;
}
#endif

static void free_blk(struct blk *b)
{
	if (!b)
		return;
#ifdef KVMKIT_HAVE_LIBURING
	if (b->uring) {
		struct io_uring_cqe *cqe;

		/* The thread is gone: wait out what the kernel still does
		 * (it writes guest memory and reads our iovecs). */
		while (b->ring_busy && !io_uring_wait_cqe(&b->ring, &cqe)) {
			io_uring_cqe_seen(&b->ring, cqe);
			b->ring_busy--;
		}
		io_uring_queue_exit(&b->ring);
		close(b->ring_efd);
	}
#endif
	if (b->fd >= 0)
		close(b->fd);
	free(b->rqs);
	free(b->segs);
	free(b->iovs);
	free(b);
}

static void blk_destroy(struct kvmk_virtio *t)
{
	free_blk(t->priv);
}

#define BLK_FEATURES                                                        \
	((1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) | \
	 (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_DISCARD) |    \
	 (1ull << VIRTIO_BLK_F_WRITE_ZEROES))

#ifdef KVMKIT_HAVE_LIBURING
#define BLK_POLL .poll_fd = blk_poll_fd, .poll = blk_poll,
#else
#define BLK_POLL
#endif

static const struct kvmk_virtio_ops blk_ops = { .name = "virtio-blk",
						.device_id = KVMKIT_VIRTIO_ID_BLOCK,
						.features = BLK_FEATURES,
						.nqueues = 1,
						.queue = blk_queue,
						.destroy = blk_destroy,
						BLK_POLL };

static const struct kvmk_virtio_ops blk_ops_ro = { .name = "virtio-blk",
						   .device_id = KVMKIT_VIRTIO_ID_BLOCK,
						   .features =
							   BLK_FEATURES | (1ull << VIRTIO_BLK_F_RO),
						   .nqueues = 1,
						   .queue = blk_queue,
						   .destroy = blk_destroy,
						   BLK_POLL };

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* The configuration space (5.2.4), little-endian. */
static void fill_config(struct kvmk_virtio *t, const struct blk *b)
{
	uint8_t *c = t->config;

	memset(c, 0, KVMK_VIRTIO_CONFIG_MAX);
	memcpy(c, &b->sectors, 8); /* capacity */
	put32(c + 12, b->seg_cap - 2); /* seg_max */
	put32(c + 20, BLK_SECTOR); /* blk_size */
	put32(c + 36, BLK_MAX_RANGE_SECTORS); /* max_discard_sectors */
	put32(c + 40, 1); /* max_discard_seg */
	put32(c + 44, 1); /* discard_sector_alignment */
	put32(c + 48, BLK_MAX_RANGE_SECTORS); /* max_write_zeroes_sectors */
	put32(c + 52, 1); /* max_write_zeroes_seg; write_zeroes_may_unmap 0 */
	t->config_len = 60;
}

static int open_image(const struct kvmkit_virtio_blk_config *bc, struct blk *b)
{
	const char *op = "kvmkit_virtio_blk_create";
	struct statfs fs;
	struct stat st;
	uint64_t size;

	b->fd = open(bc->path, (bc->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0) {
		int e = errno;

		if (!bc->read_only && (e == EACCES || e == EROFS || e == EPERM) &&
		    !access(bc->path, R_OK))
			return kvmk_err_sys(op, e, "%s: cannot be opened for writing (add ,ro)",
					    bc->path);
		return kvmk_err_sys(op, e, "%s", bc->path);
	}
	if (fstat(b->fd, &st) < 0)
		return kvmk_err_sys(op, errno, "%s: fstat", bc->path);
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &size) < 0)
			return kvmk_err_sys(op, errno, "%s: BLKGETSIZE64", bc->path);
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		return kvmk_err_param(op, "path", "a regular file or block device", "%s", bc->path);
	}
	if (S_ISREG(st.st_mode) && !fstatfs(b->fd, &fs) &&
	    (fs.f_type == FS_TMPFS || fs.f_type == FS_RAMFS || fs.f_type == FS_HUGETLBFS))
		b->in_memory = true;
	b->sectors = size / BLK_SECTOR;
	if (!b->sectors)
		return kvmk_err_param(op, "path", "an image of at least 512 bytes",
				      "%s (%llu bytes)", bc->path, (unsigned long long)size);
	return 0;
}

static int alloc_pool(struct blk *b, unsigned int qmax)
{
	b->seg_cap = qmax < SEG_CAP ? qmax : SEG_CAP;
	if (b->seg_cap < 3)
		return kvmk_err_param("kvmkit_virtio_blk_create", "queue_size",
				      "at least 4 for virtio-blk", "%u", qmax);
	b->nrq = qmax;
	b->rqs = calloc(b->nrq, sizeof(*b->rqs));
	b->segs = calloc((size_t)b->nrq * b->seg_cap, sizeof(*b->segs));
	b->iovs = calloc((size_t)b->nrq * b->seg_cap, sizeof(*b->iovs));
	if (!b->rqs || !b->segs || !b->iovs)
		return kvmk_err_resource("kvmkit_virtio_blk_create", ENOMEM, "%u requests", b->nrq);
	for (unsigned int i = 0; i < b->nrq; i++) {
		b->rqs[i].c.seg = &b->segs[(size_t)i * b->seg_cap];
		b->rqs[i].c.cap = b->seg_cap;
		b->rqs[i].iov = &b->iovs[(size_t)i * b->seg_cap];
		b->rqs[i].next = b->free;
		b->free = &b->rqs[i];
	}
	return 0;
}

int kvmkit_virtio_blk_create(struct kvmkit_vm *vm, const struct kvmkit_virtio_mmio_config *cfg,
			     const struct kvmkit_virtio_blk_config *bc, struct kvmkit_virtio **out)
{
	const char *op = "kvmkit_virtio_blk_create";
	unsigned int qmax = cfg && cfg->queue_size ? cfg->queue_size : KVMK_VIRTIO_DEFAULT_QSIZE;
	struct kvmk_virtio *t = NULL;
	struct blk *b;
	int r;

	if (!bc || !bc->path)
		return kvmk_err_param(op, "path", "an image file", "(none)");
	if (bc->serial && strlen(bc->serial) > VIRTIO_BLK_ID_BYTES)
		return kvmk_err_param(op, "serial", "at most 20 bytes", "%s", bc->serial);
	if (qmax > KVMK_VQ_MAX_SIZE)
		return kvmk_err_param(op, "queue_size", "a power of two up to 32768", "%u", qmax);
	b = calloc(1, sizeof(*b));
	if (!b)
		return kvmk_err_resource(op, ENOMEM, NULL);
	b->fd = -1;
	b->ro = bc->read_only;
	if (bc->serial)
		memcpy(b->serial, bc->serial, strlen(bc->serial));
	r = open_image(bc, b);
	if (!r)
		r = alloc_pool(b, qmax);
	if (r) {
		free_blk(b);
		return r;
	}
#ifdef KVMKIT_HAVE_LIBURING
	/* A file in memory never waits for a device, and its file system
	 * cannot read or write without blocking (no RWF_NOWAIT), so io_uring
	 * would hand every request to a worker thread: two context switches
	 * and an eventfd round trip more than the copy done here. */
	if (!bc->sync_io && !b->in_memory)
		uring_init(b, qmax);
	else if (b->in_memory)
		kvmk_debug("virtio-blk: %s is in memory (tmpfs): synchronous I/O", bc->path);
#endif
	r = kvmk_virtio_create(vm, cfg, b->ro ? &blk_ops_ro : &blk_ops, b, &t);
	if (r) {
		if (t)
			kvmkit_virtio_destroy(kvmk_virtio_dev(t));
		else
			free_blk(b);
		return r;
	}
	pthread_mutex_lock(&t->lock);
	fill_config(t, b);
	t->uring = b->uring;
	pthread_mutex_unlock(&t->lock);
	*out = kvmk_virtio_dev(t);
	return 0;
}

void kvmk_virtio_blk_test_delay(struct kvmkit_virtio *dev, unsigned int ms)
{
	struct blk *b = dev->t.priv;

	__atomic_store_n(&b->test_delay_ms, ms, __ATOMIC_RELAXED);
}
