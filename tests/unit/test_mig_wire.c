// SPDX-License-Identifier: MIT
/*
 * The live-migration stream without KVM or sockets (src/migration/
 * mig_wire.c, mig_crc.c, mig_net.c's address parser): the checksum against
 * its definition, addresses, and a whole stream built the way the source
 * builds it, parsed into a fake RAM; then every truncation and every bit
 * flip of it refused, and records out of order, of wrong lengths or
 * outside RAM refused before anything reaches the sink.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "migration/mig_net.h"
#include "migration/mig_wire.h"

#define RAM (64u * 4096u)

static uint8_t ram[RAM];

static void test_crc(void **state)
{
	static uint8_t buf[3 * 1024 * 5 + 77];

	/* The CRC-32C check value. */
	assert_int_equal(kvmk_mig_crc(0, "123456789", 9), 0xe3069283u);
	assert_int_equal(kvmk_mig_crc_bytewise(0, "123456789", 9), 0xe3069283u);
	srand(1);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	/* The three-stream path (blocks of 3 KiB), any alignment and length,
	 * and chaining, against the table. */
	for (int t = 0; t < 400; t++) {
		size_t off = (size_t)rand() % 64, len = (size_t)rand() % (sizeof(buf) - 64);
		size_t cut = len ? (size_t)rand() % len : 0;
		uint32_t seed = (uint32_t)rand();
		uint32_t want = kvmk_mig_crc_bytewise(seed, buf + off, len);

		assert_int_equal(kvmk_mig_crc(seed, buf + off, len), want);
		assert_int_equal(kvmk_mig_crc(kvmk_mig_crc(seed, buf + off, cut), buf + off + cut,
					      len - cut),
				 want);
	}
}

static void test_addresses(void **state)
{
	static const char *const bad[] = {
		NULL,	      "",	    "unix:",	  "tcp:",	 "tcp:h",    "tcp::1",
		"tcp:h:",     "tcp:h:0",    "tcp:h:+1",	  "tcp:h:65536", "tcp:h:1x", "tcp:h:123456",
		"tcp:a:b:1",  "tcp:[::1]1", "tcp:[::1:1", "tcp:h st:1",	 "udp:h:1",  "/tmp/s",
		"UNIX:/tmp/s"
	};
	struct kvmk_mig_addr a;
	char longpath[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(kvmk_mig_addr_parse(bad[i], false, "t", &a), -EINVAL);
		assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_PARAM);
	}
	memset(longpath, 'a', sizeof(longpath));
	memcpy(longpath, "unix:/", 6);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(kvmk_mig_addr_parse(longpath, false, "t", &a), -EINVAL);
	assert_int_equal(kvmk_mig_addr_parse("tcp:h:0", true, "t", &a), 0);
	assert_int_equal(kvmk_mig_addr_parse("unix:/run/x.sock", false, "t", &a), 0);
	assert_true(a.is_unix);
	assert_string_equal(a.path, "/run/x.sock");
	assert_int_equal(kvmk_mig_addr_parse("tcp:127.0.0.1:4444", false, "t", &a), 0);
	assert_false(a.is_unix);
	assert_string_equal(a.host, "127.0.0.1");
	assert_string_equal(a.port, "4444");
	assert_int_equal(kvmk_mig_addr_parse("tcp:[fe80::1%eth0]:65535", false, "t", &a), 0);
	assert_string_equal(a.host, "fe80::1%eth0");
	assert_int_equal(kvmk_mig_addr_parse("tcp:my-host.example:1", false, "t", &a), 0);
}

/* ---- a stream, as the source sends one ------------------------------------ */

struct stream {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct stream *s, const void *p, size_t len)
{
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->p = realloc(s->p, s->cap);
		assert_non_null(s->p);
	}
	if (len) /* records without a body pass NULL */
		memcpy(s->p + s->len, p, len);
	s->len += len;
}

static void rec(struct stream *s, uint32_t type, const void *a, size_t alen, const void *b,
		size_t blen)
{
	uint8_t h[8], t[4];

	kvmk_mig_put32(h, type);
	kvmk_mig_put32(h + 4, (uint32_t)(alen + blen));
	kvmk_mig_put32(t, kvmk_mig_crc(kvmk_mig_crc(kvmk_mig_crc(0, h, 8), a, alen), b, blen));
	put(s, h, 8);
	put(s, a, alen);
	put(s, b, blen);
	put(s, t, 4);
}

static void pages(struct stream *s, uint64_t gpa, uint32_t n, uint8_t fill)
{
	uint8_t h[16], *data = malloc((size_t)n * 4096);

	assert_non_null(data);
	memset(data, fill, (size_t)n * 4096);
	kvmk_mig_put64(h, gpa);
	kvmk_mig_put32(h + 8, n);
	kvmk_mig_put32(h + 12, 1);
	rec(s, KVMK_MIG_PAGES, h, 16, data, (size_t)n * 4096);
	free(data);
}

static void zero(struct stream *s, uint64_t gpa, uint64_t n)
{
	uint8_t h[16];

	kvmk_mig_put64(h, gpa);
	kvmk_mig_put64(h + 8, n);
	rec(s, KVMK_MIG_ZERO, h, 16, NULL, 0);
}

static const uint8_t state_blob[] = "a state file stands here";

/* Hello, pages, a zero run, a pass end, the pause, more pages, the state,
 * the end. */
static struct stream good_stream(size_t *records_at)
{
	struct kvmk_mig_hello h = { .version = KVMK_MIG_VERSION,
				    .arch = 1,
				    .vcpus = 2,
				    .irqchip = 2,
				    .mem_size = RAM,
				    .page_size = 4096,
				    .nr_regions = 1,
				    .regions = { { 0, RAM } } };
	struct stream s = { 0 };
	uint8_t b[KVMK_MIG_HELLO_MAX], pe[16] = { 1 };

	put(&s, b, kvmk_mig_hello_build(&h, b));
	*records_at = s.len;
	pages(&s, 0, 3, 0x11);
	pages(&s, 8 * 4096, 1, 0x22);
	zero(&s, 4096, 1);
	rec(&s, KVMK_MIG_PASS_END, pe, 16, NULL, 0);
	rec(&s, KVMK_MIG_PAUSED, NULL, 0, NULL, 0);
	pages(&s, 63 * 4096, 1, 0x33);
	rec(&s, KVMK_MIG_PASS_END, pe, 16, NULL, 0);
	rec(&s, KVMK_MIG_STATE, state_blob, sizeof(state_blob), NULL, 0);
	rec(&s, KVMK_MIG_END, NULL, 0, NULL, 0);
	return s;
}

struct src {
	const uint8_t *p;
	size_t left;
};

static int src_read(void *ctx, void *buf, size_t len)
{
	struct src *s = ctx;

	if (len > s->left) {
		s->left = 0;
		errno = EPIPE;
		return -EPIPE;
	}
	memcpy(buf, s->p, len);
	s->p += len;
	s->left -= len;
	return 0;
}

static unsigned int states, pauses;

static void *sink_pages(void *ctx, uint64_t gpa, uint32_t n)
{
	return ram + gpa;
}

static int sink_zero(void *ctx, uint64_t gpa, uint64_t n)
{
	memset(ram + gpa, 0, n * 4096);
	return 0;
}

static int sink_paused(void *ctx)
{
	pauses++;
	return 0;
}

static int sink_state(void *ctx, const uint8_t *b, size_t len)
{
	assert_int_equal(len, sizeof(state_blob));
	assert_memory_equal(b, state_blob, len);
	states++;
	return 0;
}

/* Parses @len bytes of @p: 0 or the error. */
static int parse(const uint8_t *p, size_t len, struct kvmk_mig_rx *rx)
{
	static const struct kvmk_mig_sink sink = { sink_pages, sink_zero, sink_paused, sink_state,
						   NULL };
	struct src s = { p, len };
	struct kvmk_mig_in in = { src_read, &s, 0 };
	struct kvmk_mig_hello h;
	int r;

	memset(ram, 0xee, sizeof(ram));
	states = pauses = 0;
	memset(rx, 0, sizeof(*rx));
	r = kvmk_mig_hello_read(&in, &h);
	return r ? r : kvmk_mig_recv(&in, &sink, RAM, rx);
}

static void test_stream(void **state)
{
	size_t at;
	struct stream s = good_stream(&at);
	struct kvmk_mig_rx rx;

	assert_int_equal(parse(s.p, s.len, &rx), 0);
	assert_int_equal(rx.pages, 5);
	assert_int_equal(rx.zero_pages, 1);
	assert_int_equal(rx.passes, 2);
	assert_int_equal(pauses, 1);
	assert_int_equal(states, 1);
	assert_int_equal(ram[0], 0x11);
	assert_int_equal(ram[4096], 0); /* the zero run over the second page */
	assert_int_equal(ram[2 * 4096 + 4095], 0x11);
	assert_int_equal(ram[8 * 4096], 0x22);
	assert_int_equal(ram[63 * 4096 + 4095], 0x33);
	assert_int_equal(ram[5 * 4096], 0xee); /* never sent */
	free(s.p);
}

static void test_truncated_and_flipped(void **state)
{
	size_t at;
	struct stream s = good_stream(&at);
	struct kvmk_mig_rx rx;
	uint8_t *copy = malloc(s.len);

	assert_non_null(copy);
	/* Every length short of the whole: the read fails, never a success. */
	for (size_t n = 0; n < s.len; n += n < at + 64 ? 1 : 509)
		assert_int_equal(parse(s.p, n, &rx), -EPIPE);
	/* A flipped bit anywhere: refused (CRC, magic, version, length,
	 * type), never accepted. Outside the page data every byte. */
	for (size_t i = 0; i < s.len; i += (i < at + 32 || i > s.len - 256) ? 1 : 4093) {
		memcpy(copy, s.p, s.len);
		copy[i] ^= 0x04;
		assert_true(parse(copy, s.len, &rx) < 0);
	}
	free(copy);
	free(s.p);
}

/* The hello, then @body (records), must be refused with @needle. */
static void refused(struct stream *body, const char *needle)
{
	size_t at;
	struct stream s = good_stream(&at);
	struct kvmk_mig_rx rx;

	s.len = at;
	put(&s, body->p, body->len);
	assert_true(parse(s.p, s.len, &rx) < 0);
	if (!strstr(kvmkit_strerror(), needle))
		fail_msg("wanted '%s', got: %s", needle, kvmkit_strerror());
	free(s.p);
	free(body->p);
	*body = (struct stream){ 0 };
}

static void test_bad_records(void **state)
{
	struct stream b = { 0 };
	uint8_t h[16] = { 0 };

	rec(&b, KVMK_MIG_STATE, state_blob, sizeof(state_blob), NULL, 0);
	refused(&b, "before the pause: out of order");
	rec(&b, KVMK_MIG_END, NULL, 0, NULL, 0);
	refused(&b, "out of order");
	rec(&b, KVMK_MIG_PAUSED, NULL, 0, NULL, 0);
	rec(&b, KVMK_MIG_PAUSED, NULL, 0, NULL, 0);
	refused(&b, "after the pause: out of order");
	rec(&b, KVMK_MIG_PAUSED, NULL, 0, NULL, 0);
	rec(&b, KVMK_MIG_STATE, state_blob, sizeof(state_blob), NULL, 0);
	pages(&b, 0, 1, 1);
	refused(&b, "after the state: out of order");
	pages(&b, RAM, 1, 1);
	refused(&b, "outside RAM");
	pages(&b, RAM - 4096, 2, 1);
	refused(&b, "outside RAM");
	kvmk_mig_put64(h, 100); /* unaligned */
	kvmk_mig_put32(h + 8, 1);
	rec(&b, KVMK_MIG_PAGES, h, 16, ram, 4096);
	refused(&b, "outside RAM");
	kvmk_mig_put64(h, 0);
	kvmk_mig_put32(h + 8, KVMK_MIG_BATCH + 1);
	rec(&b, KVMK_MIG_PAGES, h, 16, ram, 4096);
	refused(&b, "1..256 pages");
	zero(&b, 0, RAM / 4096 + 1);
	refused(&b, "outside RAM");
	zero(&b, 0, 0);
	refused(&b, "outside RAM");
	rec(&b, KVMK_MIG_PASS_END, h, 8, NULL, 0);
	refused(&b, "must be 16");
	rec(&b, KVMK_MIG_ACCEPT, NULL, 0, NULL, 0);
	refused(&b, "unknown record type 16");
	/* A huge length is refused before anything is read or allocated. */
	rec(&b, KVMK_MIG_PAUSED, NULL, 0, NULL, 0);
	kvmk_mig_put32(h, KVMK_MIG_STATE);
	kvmk_mig_put32(h + 4, 0xffffffffu);
	put(&b, h, 8);
	refused(&b, "state record of 4294967295 bytes");
}

static void test_hello(void **state)
{
	struct kvmk_mig_hello h = { .version = 2,
				    .arch = 1,
				    .vcpus = 1,
				    .mem_size = RAM,
				    .page_size = 4096,
				    .nr_regions = 1,
				    .regions = { { 0, RAM } } };
	uint8_t b[KVMK_MIG_HELLO_MAX];
	struct kvmk_mig_rx rx;
	size_t n = kvmk_mig_hello_build(&h, b);

	/* Another version: named, whatever the rest says. */
	b[20] = 0;
	assert_int_equal(parse(b, n, &rx), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "version 2, this kvmkit reads 1"));
	/* Fields out of bounds, with a right CRC. */
	h.version = 1;
	h.vcpus = 0;
	n = kvmk_mig_hello_build(&h, b);
	assert_int_equal(parse(b, n, &rx), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "0 vCPUs"));
	h.vcpus = 1;
	h.page_size = 65536;
	n = kvmk_mig_hello_build(&h, b);
	assert_int_equal(parse(b, n, &rx), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "page size 65536"));
	h.page_size = 4096;
	h.nr_regions = 2;
	h.regions[1] = (struct kvmk_mig_region){ 4096, 4096 }; /* overlaps the first */
	n = kvmk_mig_hello_build(&h, b);
	assert_int_equal(parse(b, n, &rx), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "memory region 1"));
	/* A length field that does not match the region count. */
	h.nr_regions = 1;
	n = kvmk_mig_hello_build(&h, b);
	kvmk_mig_put32(b + 44, 2);
	kvmk_mig_put32(b + n - 4, kvmk_mig_crc(0, b, n - 4));
	assert_int_equal(parse(b, n, &rx), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "2 memory regions in 68 bytes"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc),	    cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_stream),	    cmocka_unit_test(test_truncated_and_flipped),
		cmocka_unit_test(test_bad_records), cmocka_unit_test(test_hello),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
