/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk request parsing (virtio 1.x 5.2.6), pure code shared by the
 * device (blk.c), its unit test and fuzz target. A request is a chain:
 *   readable:  le32 type, le32 reserved, le64 sector, then OUT data or
 *              DISCARD/WRITE_ZEROES segments
 *   writable:  IN or GET_ID data, then the u8 status (the chain's last
 *              writable byte)
 * The parser decides everything that depends on the guest's bytes: the
 * operation, its byte range on the disk (checked against the capacity
 * without overflow) and, for a request that fails before any I/O, its
 * status. The device then only does the I/O.
 */
#ifndef KVMKIT_VIRTIO_BLK_REQ_H
#define KVMKIT_VIRTIO_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/virtqueue.h"

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_ID_BYTES 20
#define BLK_SECTOR 512u
/* One range per DISCARD / WRITE_ZEROES request, at most this many sectors
 * (the config space says both). */
#define BLK_MAX_RANGE_SECTORS (1u << 22)

enum kvmk_blk_op {
	BLK_OP_NONE, /* status decided by the parser */
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_GET_ID,
	BLK_OP_DISCARD,
	BLK_OP_ZEROES,
};

/* What the disk and the negotiation allow. */
struct kvmk_blk_limits {
	uint64_t sectors; /* capacity */
	bool read_only;
	uint64_t features; /* negotiated */
};

struct kvmk_blk_req {
	enum kvmk_blk_op op;
	uint8_t status; /* BLK_OP_NONE: the answer; else OK until the I/O says */
	uint64_t offset, len; /* bytes on the disk (READ, WRITE, DISCARD, ZEROES) */
	/* Where the data is in the chain: readable bytes from @data_off
	 * (WRITE) or writable bytes from 0 (READ, GET_ID), @len bytes
	 * (GET_ID: up to 20). */
	uint64_t data_off;
	/* The status byte: offset in the writable part. */
	uint64_t status_off;
};

/* Returns 0 with @req filled, or -1 when the chain cannot carry an answer
 * at all (no writable byte for the status): a malformed ring. */
int kvmk_blk_parse(const struct kvmk_vq_chain *c, const struct kvmk_blk_limits *lim,
		   struct kvmk_blk_req *req);
/* The iovecs of a READ or WRITE's data (at most @max); returns how many,
 * or -1 if more than @max would be needed. */
int kvmk_blk_iov(const struct kvmk_vq_chain *c, const struct kvmk_blk_req *req, struct iovec *iov,
		 int max);

#endif
