// SPDX-License-Identifier: MIT
/*
 * Byte buffers for saved state: a growable writer and a bounds-checked
 * reader. Saved state comes back from files a user points kvmkit at, so
 * every read is checked against what is left and a short buffer is a
 * format error, never an overrun.
 */
#include <stdlib.h>
#include <string.h>

#define KVMK_LOG_MODULE "core"
#include "core/internal.h"

int kvmk_blob_put(struct kvmk_blob *b, const void *data, size_t len)
{
	if (b->len + len < b->len)
		return kvmk_err_resource("kvmk_blob_put", ENOMEM, "size overflow");
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p)
			return kvmk_err_resource("kvmk_blob_put", ENOMEM, "%zu bytes", cap);
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int kvmk_blob_put_u32(struct kvmk_blob *b, uint32_t v)
{
	uint8_t le[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	return kvmk_blob_put(b, le, sizeof(le));
}

void kvmk_blob_free(struct kvmk_blob *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int kvmk_reader_get(struct kvmk_reader *r, void *out, size_t len, const char *what)
{
	if (len > r->left)
		return kvmk_err_format(r->op, "%s: truncated (%zu bytes wanted, %zu left)", what,
				       len, r->left);
	memcpy(out, r->p, len);
	r->p += len;
	r->left -= len;
	return 0;
}

int kvmk_reader_u32(struct kvmk_reader *r, uint32_t *out, const char *what)
{
	uint8_t le[4];
	int e = kvmk_reader_get(r, le, sizeof(le), what);

	if (!e)
		*out = (uint32_t)le[0] | (uint32_t)le[1] << 8 | (uint32_t)le[2] << 16 |
		       (uint32_t)le[3] << 24;
	return e;
}
