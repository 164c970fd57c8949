// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: guest port accesses to the userspace 8254 (0x40-0x43
 * and port B at any size and offset), clock steps and timer expiries.
 * Traps if:
 *  - an access touches bytes past its size, or one the model leaves
 *    unclaimed reads other than all ones;
 *  - the timer is armed for a deadline before the moment it was armed at
 *    minus one PIT period (it may be due at once, never long overdue), or
 *    an expiry reports an interrupt sooner than 200 us after the last one;
 *  - a loaded counter's count is impossible for its mode: odd in mode 3
 *    (it counts down by two), or outside 1..reload in mode 2;
 *  - a saved state does not restore into a second model on the same clock,
 *    or that model saves it differently.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "arch/x86/pit.h"

struct fz {
	uint64_t ns;
	uint64_t deadline;
	uint64_t last_irq;
};

static uint64_t fz_now(void *opaque)
{
	return ((struct fz *)opaque)->ns;
}

static void fz_arm(void *opaque, uint64_t deadline)
{
	struct fz *f = opaque;

	/* A 65536-clock period is 55 ms: nothing may be due earlier than
	 * that before now. */
	CHECK(!deadline || deadline + 60000000ull >= f->ns);
	f->deadline = deadline;
}

static void access(struct kvmk_pit *pit, const uint8_t *in, bool portb)
{
	uint8_t buf[16];
	unsigned int size = 1u << (in[0] & 3); /* 1, 2, 4, 8 */
	uint64_t off = (in[0] >> 2) & 7;
	bool write = in[0] & 0x20;
	bool claimed = size == 1 && (portb ? off == 0 : off < 4);

	if (in[0] & 0x40)
		size = (in[0] & 0x80) ? 3 : 5; /* odd sizes a broken bus might pass */
	memset(buf, 0x5a, sizeof(buf));
	if (write) {
		memcpy(buf, in + 1, 8);
		if (portb)
			kvmk_pit_portb_write(pit, off, buf, size);
		else
			kvmk_pit_pio_write(pit, off, buf, size);
		return;
	}
	if (portb)
		kvmk_pit_portb_read(pit, off, buf, size);
	else
		kvmk_pit_pio_read(pit, off, buf, size);
	for (unsigned int i = size; i < sizeof(buf); i++)
		CHECK(buf[i] == 0x5a);
	if (!claimed || (!portb && off == 3))
		for (unsigned int i = 0; i < size; i++)
			CHECK(buf[i] == 0xff);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { .ns = 1000000000ull };
	struct kvmk_pit_config cfg = { .now_ns = fz_now, .arm = fz_arm, .opaque = &f };
	struct kvmk_pit *pit;

	if (kvmk_pit_create(&cfg, &pit))
		return 0;
	while (size >= 10) { /* op, access byte, 8 data bytes */
		uint8_t op = data[0];
		struct kvmk_pit_state st;
		uint32_t count;
		bool out;

		switch (op & 3) {
		case 0:
			access(pit, data + 1, false);
			break;
		case 1:
			access(pit, data + 1, true);
			break;
		case 2:
			/* Clock step: up to ~4 s, sometimes straight to the deadline. */
			if ((op & 4) && f.deadline > f.ns)
				f.ns = f.deadline;
			else
				f.ns += (uint64_t)data[1] << 24 | (uint64_t)data[2] << 16 | data[3];
			break;
		default:
			if (op & 8) {
				struct kvmk_pit *copy;
				struct kvmk_pit_state a, b;

				kvmk_pit_save(pit, &a);
				if (kvmk_pit_create(&cfg, &copy))
					break;
				CHECK(kvmk_pit_restore(copy, &a) == 0);
				kvmk_pit_save(copy, &b);
				CHECK(memcmp(&a, &b, sizeof(a)) == 0);
				kvmk_pit_destroy(copy);
				/* The copy's arm replaced the deadline: re-arm ours. */
				kvmk_pit_timer(pit);
				break;
			}
			if (kvmk_pit_timer(pit)) {
				CHECK(!f.last_irq || f.ns >= f.last_irq + 200000ull);
				f.last_irq = f.ns;
			}
			break;
		}
		kvmk_pit_save(pit, &st);
		for (unsigned int c = 0; c < 3; c++) {
			const struct kvmk_pit_counter_state *s = &st.c[c];

			CHECK(kvmk_pit_peek(pit, c, &count, &out) == 0);
			if (!(s->flags & KVMK_PIT_F_LOADED))
				continue;
			if (s->mode == 3)
				CHECK(!(count & 1));
			if (s->mode == 2 && s->count < 65536)
				CHECK(count >= 1 && count <= s->count);
		}
		data += 10;
		size -= 10;
	}
	kvmk_pit_destroy(pit);
	return 0;
}
