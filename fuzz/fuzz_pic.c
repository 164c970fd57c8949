// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: guest port accesses to the userspace 8259A pair and its
 * ELCR (any size and offset), IRQ input levels, INTA cycles and
 * save/restore. Traps if:
 *  - an access touches bytes past its size, or an undefined one reads
 *    other than all ones;
 *  - INTR went from low to high without a kick;
 *  - an INTA returns a vector outside both chips' vector bases;
 *  - set_irq returns a status outside {1, 0, masked} for a valid irq, or
 *    the EOI notifier (which re-enters the model) hears of an IRQ > 15;
 *  - a saved state does not restore into a fresh model, or the restored
 *    model saves differently or disagrees on INTR.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include <kvmkit/irq.h>
#include "arch/x86/pic.h"

static unsigned int kicks;
static struct kvmk_pic *cur;

static void kick(void *opaque)
{
	kicks++;
}

/* Re-enters the model as the driver's resampler does: must not deadlock. */
static void eoi(void *opaque, unsigned int irq)
{
	CHECK(irq < KVMK_PIC_IRQS);
	if (cur && (irq & 1))
		kvmk_pic_set_irq(cur, irq, false);
}

static void access(struct kvmk_pic *pic, const uint8_t *in)
{
	static const struct kvmkit_io_ops *const ops[3] = {
		&kvmk_pic_master_ops,
		&kvmk_pic_slave_ops,
		&kvmk_pic_elcr_ops,
	};
	unsigned int which = in[0] % 3;
	unsigned int size = (in[0] & 0x40) ? 1u + (in[0] >> 3 & 7) : 1;
	uint64_t off = (in[0] >> 2) & 3;
	uint8_t buf[16];

	memset(buf, 0x5a, sizeof(buf));
	if (in[0] & 0x80) {
		memcpy(buf, in + 1, 8);
		ops[which]->write(pic, off, buf, size);
		return;
	}
	ops[which]->read(pic, off, buf, size);
	for (unsigned int i = size; i < sizeof(buf); i++)
		CHECK(buf[i] == 0x5a);
	if (size != 1 || off >= 2)
		for (unsigned int i = 0; i < size; i++)
			CHECK(buf[i] == 0xff);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmk_pic_config cfg = { .kick = kick, .eoi = eoi };
	struct kvmk_pic *pic, *copy;
	struct kvmk_pic_state a, b;

	if (kvmk_pic_create(&cfg, &pic))
		return 0;
	cur = pic;
	kicks = 0;
	while (size >= 10) { /* op, 9 argument bytes */
		bool before = kvmk_pic_output(pic);
		unsigned int k = kicks;
		int r;

		switch (data[0] & 3) {
		case 0:
			access(pic, data + 1);
			break;
		case 1:
			r = kvmk_pic_set_irq(pic, data[1] & 15, data[2] & 1);
			CHECK(r == 0 || r == 1 || r == KVMK_IRQ_MASKED);
			break;
		case 2: {
			uint8_t v = kvmk_pic_intack(pic);

			kvmk_pic_save(pic, &a);
			CHECK((v & 0xf8) == a.chip[0].vector_base ||
			      (v & 0xf8) == a.chip[1].vector_base);
			break;
		}
		default:
			kvmk_pic_save(pic, &a);
			if (kvmk_pic_create(&cfg, &copy))
				break;
			CHECK(kvmk_pic_restore(copy, &a) == 0);
			kvmk_pic_save(copy, &b);
			CHECK(memcmp(&a, &b, sizeof(a)) == 0);
			CHECK(kvmk_pic_output(copy) == kvmk_pic_output(pic));
			kvmk_pic_destroy(copy);
			k = kicks; /* the copy's own kick does not count */
			break;
		}
		if (!before && kvmk_pic_output(pic))
			CHECK(kicks > k);
		data += 10;
		size -= 10;
	}
	CHECK(kvmk_pic_set_irq(pic, 16, true) == -EINVAL);
	cur = NULL;
	kvmk_pic_destroy(pic);
	return 0;
}
