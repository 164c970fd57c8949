/* SPDX-License-Identifier: MIT */
/*
 * The live-migration stream (docs/MIGRATION.md), without sockets or KVM:
 * the source's hello, the record framing, and the target's parser, which
 * reads through a callback and hands pages and state to a sink, so that
 * the fuzz target and the unit tests drive it alone. Internal.
 *
 * Every integer is little-endian. A record is
 *     u32 type, u32 len, len bytes of payload, u32 CRC-32
 * with the CRC (CRC-32C) over type, len and payload.
 */
#ifndef KVMKIT_MIGRATION_MIG_WIRE_H
#define KVMKIT_MIGRATION_MIG_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"

#define KVMK_MIG_MAGIC "KVMKMIGR"
#define KVMK_MIG_VERSION 1u
#define KVMK_MIG_PAGE 4096u
#define KVMK_MIG_MAX_REGIONS 64u
/* Pages one PAGES record carries at most (1 MiB of data). */
#define KVMK_MIG_BATCH 256u
/* The machine state record's largest payload. */
#define KVMK_MIG_MAX_STATE (64u << 20)
/* A refusal's message, bytes at most. */
#define KVMK_MIG_MAX_MSG 480u

#define KVMK_MIG_HELLO_FIXED 48u /* up to the region table */
#define KVMK_MIG_HELLO_MAX (KVMK_MIG_HELLO_FIXED + KVMK_MIG_MAX_REGIONS * 16u + 4u)
#define KVMK_MIG_REC_HDR 8u
#define KVMK_MIG_PAGES_HDR 16u /* gpa, npages, pass */

enum kvmk_mig_rec {
	/* source -> target */
	KVMK_MIG_PAGES = 1, /* u64 gpa, u32 npages (1..BATCH), u32 pass, the pages */
	KVMK_MIG_ZERO = 2, /* u64 gpa, u64 npages: pages that are now zero */
	KVMK_MIG_PASS_END = 3, /* u32 pass, u32 0, u64 pages the pass sent */
	KVMK_MIG_PAUSED = 4, /* empty: the source VM is paused from here on */
	KVMK_MIG_STATE = 5, /* a snapshot state file (docs/SNAPSHOT.md) */
	KVMK_MIG_END = 6, /* empty: nothing follows */
	/* target -> source */
	KVMK_MIG_ACCEPT = 16, /* empty: the hello matches, send the rest */
	KVMK_MIG_REFUSE = 17, /* u32 error kind, u32 errno, the message (no NUL) */
	KVMK_MIG_DONE = 18, /* u64 downtime in us: the VM runs on the target */
};

struct kvmk_mig_region {
	uint64_t gpa, size;
};

/* The source's first bytes: what the target checks before anything else. */
struct kvmk_mig_hello {
	uint32_t version;
	uint32_t arch; /* enum kvmkit_arch */
	uint32_t vcpus;
	uint32_t irqchip; /* 0: none, else 1 + enum kvmkit_irqchip_mode */
	uint32_t machine_flags; /* KVMK_SNAP_F_* */
	uint64_t mem_size;
	uint32_t page_size;
	uint32_t nr_regions;
	struct kvmk_mig_region regions[KVMK_MIG_MAX_REGIONS];
};

/* The hello's bytes into @out (KVMK_MIG_HELLO_MAX bytes); returns the
 * length. */
size_t kvmk_mig_hello_build(const struct kvmk_mig_hello *h, uint8_t *out);

/* Reads exactly @len bytes into @buf: 0, or a negative errno with the
 * thread's error recorded (a peer that closed early included). */
typedef int (*kvmk_mig_read_fn)(void *ctx, void *buf, size_t len);

struct kvmk_mig_in {
	kvmk_mig_read_fn read;
	void *ctx;
	uint64_t bytes; /* read so far */
};

/* Reads and checks a hello: magic ("not a kvmkit migration stream"), the
 * version (before anything else, so another version is named as such),
 * length, CRC, then every field. KVMKIT_ERR_FORMAT when malformed. */
int kvmk_mig_hello_read(struct kvmk_mig_in *in, struct kvmk_mig_hello *h);

/* Where the parser puts what the records carry. Each returns 0 or a
 * negative errno with the thread's error recorded. */
struct kvmk_mig_sink {
	/* The host memory for @npages pages at @gpa (the parser reads their
	 * bytes straight into it), or NULL (error recorded) when they are not
	 * the machine's RAM. */
	void *(*pages)(void *ctx, uint64_t gpa, uint32_t npages);
	int (*zero)(void *ctx, uint64_t gpa, uint64_t npages);
	int (*paused)(void *ctx);
	int (*state)(void *ctx, const uint8_t *buf, size_t len);
	void *ctx;
};

struct kvmk_mig_rx {
	uint64_t pages, zero_pages;
	unsigned int passes;
};

/*
 * Reads records after the hello until END, handing them to @sink. Checks
 * each record's CRC (over pages already written into the sink's memory:
 * a bad record fails the whole stream, after which the target discards
 * the machine), its length against its type, and the order: pages, zero
 * runs and pass ends, then PAUSED once, pages again, STATE once, END.
 * @max_gpa bounds every page address (the RAM's end). KVMKIT_ERR_FORMAT
 * for a malformed stream.
 */
int kvmk_mig_recv(struct kvmk_mig_in *in, const struct kvmk_mig_sink *sink, uint64_t max_gpa,
		  struct kvmk_mig_rx *rx);

/* One record from the target (ACCEPT, REFUSE or DONE) read and checked:
 * *@type, and for REFUSE the message (NUL-terminated, at most
 * KVMK_MIG_MAX_MSG bytes) with its kind and errno, for DONE the downtime. */
struct kvmk_mig_reply {
	uint32_t type;
	uint32_t kind, err;
	uint64_t downtime_us;
	char msg[KVMK_MIG_MAX_MSG + 1];
};
int kvmk_mig_reply_read(struct kvmk_mig_in *in, struct kvmk_mig_reply *rep);

/* CRC-32C (Castagnoli) of @len bytes, continuing @crc (0 to begin);
 * mig_crc.c. */
uint32_t kvmk_mig_crc(uint32_t crc, const void *p, size_t len);
/* The same a byte at a time from a table (the reference the tests hold
 * the fast one to). */
uint32_t kvmk_mig_crc_bytewise(uint32_t crc, const void *p, size_t len);
static inline void kvmk_mig_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline void kvmk_mig_put64(uint8_t *p, uint64_t v)
{
	kvmk_mig_put32(p, (uint32_t)v);
	kvmk_mig_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t kvmk_mig_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t kvmk_mig_get64(const uint8_t *p)
{
	return (uint64_t)kvmk_mig_get32(p) | (uint64_t)kvmk_mig_get32(p + 4) << 32;
}

#endif
