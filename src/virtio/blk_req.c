// SPDX-License-Identifier: MIT
/* virtio-blk request parsing: see blk_req.h. */
#include <string.h>

#include "virtio/blk_req.h"

struct blk_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

struct blk_range {
	uint64_t sector;
	uint32_t num, flags;
};

#define RANGE_F_UNMAP 1u

static bool negotiated(const struct kvmk_blk_limits *lim, unsigned int bit)
{
	return lim->features & (1ull << bit);
}

/* [sector, sector + n) inside the disk, without overflow. */
static bool in_disk(const struct kvmk_blk_limits *lim, uint64_t sector, uint64_t n)
{
	return sector <= lim->sectors && n <= lim->sectors - sector;
}

static void answer(struct kvmk_blk_req *req, uint8_t status)
{
	req->op = BLK_OP_NONE;
	req->status = status;
}

static void parse_range(const struct kvmk_vq_chain *c, const struct kvmk_blk_limits *lim,
			uint32_t type, struct kvmk_blk_req *req)
{
	bool discard = type == VIRTIO_BLK_T_DISCARD;
	struct blk_range rg;

	if (!negotiated(lim, discard ? VIRTIO_BLK_F_DISCARD : VIRTIO_BLK_F_WRITE_ZEROES))
		return answer(req, VIRTIO_BLK_S_UNSUPP);
	/* Exactly one range: max_discard_seg and max_write_zeroes_seg are 1. */
	if (c->read_len != sizeof(struct blk_hdr) + sizeof(rg))
		return answer(req, VIRTIO_BLK_S_IOERR);
	kvmk_chain_read(c, sizeof(struct blk_hdr), &rg, sizeof(rg));
	/* 5.2.6.2: unknown flags, or unmap on a discard, are unsupported. */
	if ((rg.flags & ~RANGE_F_UNMAP) || (discard && (rg.flags & RANGE_F_UNMAP)))
		return answer(req, VIRTIO_BLK_S_UNSUPP);
	if (lim->read_only || rg.num > BLK_MAX_RANGE_SECTORS || !in_disk(lim, rg.sector, rg.num))
		return answer(req, VIRTIO_BLK_S_IOERR);
	req->op = discard ? BLK_OP_DISCARD : BLK_OP_ZEROES;
	req->offset = rg.sector * BLK_SECTOR;
	req->len = (uint64_t)rg.num * BLK_SECTOR;
}

int kvmk_blk_parse(const struct kvmk_vq_chain *c, const struct kvmk_blk_limits *lim,
		   struct kvmk_blk_req *req)
{
	struct blk_hdr h;
	uint64_t data;

	memset(req, 0, sizeof(*req));
	if (c->write_len == 0)
		return -1;
	req->status_off = c->write_len - 1;
	req->status = VIRTIO_BLK_S_OK;
	if (c->read_len < sizeof(h)) {
		answer(req, VIRTIO_BLK_S_IOERR);
		return 0;
	}
	kvmk_chain_read(c, 0, &h, sizeof(h));
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		if (h.type == VIRTIO_BLK_T_IN) {
			data = c->write_len - 1;
			req->op = BLK_OP_READ;
		} else {
			data = c->read_len - sizeof(h);
			req->op = BLK_OP_WRITE;
			req->data_off = sizeof(h);
		}
		if ((data % BLK_SECTOR) || !in_disk(lim, h.sector, data / BLK_SECTOR) ||
		    (req->op == BLK_OP_WRITE && lim->read_only))
			answer(req, VIRTIO_BLK_S_IOERR);
		req->offset = h.sector * BLK_SECTOR;
		req->len = data;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (!negotiated(lim, VIRTIO_BLK_F_FLUSH))
			answer(req, VIRTIO_BLK_S_UNSUPP);
		else
			req->op = BLK_OP_FLUSH;
		break;
	case VIRTIO_BLK_T_GET_ID:
		req->op = BLK_OP_GET_ID;
		req->len = c->write_len - 1 < VIRTIO_BLK_ID_BYTES ? c->write_len - 1 :
								    VIRTIO_BLK_ID_BYTES;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		parse_range(c, lim, h.type, req);
		break;
	default:
		answer(req, VIRTIO_BLK_S_UNSUPP);
	}
	return 0;
}

int kvmk_blk_iov(const struct kvmk_vq_chain *c, const struct kvmk_blk_req *req, struct iovec *iov,
		 int max)
{
	bool write_part = req->op == BLK_OP_READ;
	uint32_t first = write_part ? c->nread : 0, last = write_part ? c->nseg : c->nread;
	uint64_t skip = req->data_off, left = req->len;
	int n = 0;

	for (uint32_t i = first; i < last && left; i++) {
		const struct kvmk_vq_seg *s = &c->seg[i];
		uint64_t take;

		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		take = s->len - skip < left ? s->len - skip : left;
		if (n == max)
			return -1;
		iov[n].iov_base = (uint8_t *)s->hva + skip;
		iov[n].iov_len = take;
		n++;
		left -= take;
		skip = 0;
	}
	return left ? -1 : n;
}
