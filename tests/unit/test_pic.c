// SPDX-License-Identifier: MIT
/* The userspace 8259A pair against the data sheet's initialisation,
 * priority, EOI, cascade, poll and ELCR rules (src/irq/pic.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <kvmkit/irq.h>
#include "arch/x86/pic.h"

static unsigned int kicks;
static uint16_t ended; /* IRQs reported as having left service */

static void kick(void *opaque)
{
	kicks++;
}

static void eoi(void *opaque, unsigned int irq)
{
	ended |= (uint16_t)(1u << irq);
}

static struct kvmk_pic *mk(void)
{
	struct kvmk_pic_config cfg = { .kick = kick, .eoi = eoi };
	struct kvmk_pic *pic = NULL;

	kicks = 0;
	ended = 0;
	assert_int_equal(kvmk_pic_create(&cfg, &pic), 0);
	return pic;
}

/* The handlers behind @port and the offset of @port within their range. */
static const struct kvmkit_io_ops *ops_for(uint16_t port, uint64_t *offset)
{
	if (port >= KVMK_PIC_ELCR_BASE) {
		*offset = port - KVMK_PIC_ELCR_BASE;
		return &kvmk_pic_elcr_ops;
	}
	if (port >= KVMK_PIC_SLAVE_BASE) {
		*offset = port - KVMK_PIC_SLAVE_BASE;
		return &kvmk_pic_slave_ops;
	}
	*offset = port - KVMK_PIC_MASTER_BASE;
	return &kvmk_pic_master_ops;
}

static void out(struct kvmk_pic *p, uint16_t port, uint8_t v)
{
	uint64_t off;

	ops_for(port, &off)->write(p, off, &v, 1);
}

static uint8_t in(struct kvmk_pic *p, uint16_t port)
{
	uint64_t off;
	uint8_t v = 0;

	ops_for(port, &off)->read(p, off, &v, 1);
	return v;
}

/* The sequence Linux and the irq_lab guest use: bases 0x20/0x28. */
static void init_pair(struct kvmk_pic *p, uint8_t mbase, uint8_t sbase, uint16_t mask)
{
	out(p, 0x20, 0x11);
	out(p, 0xa0, 0x11);
	out(p, 0x21, mbase);
	out(p, 0xa1, sbase);
	out(p, 0x21, 0x04);
	out(p, 0xa1, 0x02);
	out(p, 0x21, 0x01);
	out(p, 0xa1, 0x01);
	out(p, 0x21, (uint8_t)mask);
	out(p, 0xa1, (uint8_t)(mask >> 8));
}

static void test_edge_delivery_and_eoi(void **state)
{
	struct kvmk_pic *p = mk();

	init_pair(p, 0x20, 0x28, 0xfff3); /* IRQ 2 and 3 open */
	assert_false(kvmk_pic_output(p));
	assert_int_equal(kvmk_pic_set_irq(p, 3, true), 1);
	assert_true(kvmk_pic_output(p));
	assert_int_equal(kicks, 1);
	/* A second edge before the INTA coalesces. */
	assert_int_equal(kvmk_pic_set_irq(p, 3, false), 0);
	assert_int_equal(kvmk_pic_set_irq(p, 3, true), 0);
	assert_int_equal(kvmk_pic_intack(p), 0x23);
	assert_false(kvmk_pic_output(p));
	/* In service: IRR clear, ISR bit 3 (OCW3 selects the register). */
	out(p, 0x20, 0x0a);
	assert_int_equal(in(p, 0x20), 0x00);
	out(p, 0x20, 0x0b);
	assert_int_equal(in(p, 0x20), 0x08);
	/* A new edge while in service waits for the EOI. */
	kvmk_pic_set_irq(p, 3, false);
	assert_int_equal(kvmk_pic_set_irq(p, 3, true), 1);
	assert_false(kvmk_pic_output(p));
	assert_int_equal(ended, 0);
	out(p, 0x20, 0x20); /* non-specific EOI */
	assert_int_equal(ended, 1u << 3);
	assert_true(kvmk_pic_output(p));
	assert_int_equal(kvmk_pic_intack(p), 0x23);
	ended = 0;
	out(p, 0x20, 0x63); /* specific EOI, level 3 */
	assert_int_equal(ended, 1u << 3);
	out(p, 0x20, 0x63); /* nothing in service: nothing ends */
	assert_int_equal(ended, 1u << 3);
	assert_int_equal(in(p, 0x20), 0x00);
	kvmk_pic_destroy(p);
}

static void test_priority_and_masking(void **state)
{
	struct kvmk_pic *p = mk();

	init_pair(p, 0x50, 0x58, 0xffff);
	/* Masked: latched, reported as masked, delivered once unmasked. */
	assert_int_equal(kvmk_pic_set_irq(p, 5, true), KVMK_IRQ_MASKED);
	assert_false(kvmk_pic_output(p));
	assert_int_equal(kvmk_pic_set_irq(p, 1, true), KVMK_IRQ_MASKED);
	out(p, 0x21, 0x00);
	assert_true(kvmk_pic_output(p));
	/* IRQ 1 outranks IRQ 5. */
	assert_int_equal(kvmk_pic_intack(p), 0x51);
	/* IRQ 5 is lower than the in-service 1: blocked until the EOI. */
	assert_false(kvmk_pic_output(p));
	out(p, 0x20, 0x20);
	assert_int_equal(kvmk_pic_intack(p), 0x55);
	out(p, 0x20, 0x20);
	/* Nothing left: a spurious IR7, nothing put in service. */
	assert_int_equal(kvmk_pic_intack(p), 0x57);
	out(p, 0x20, 0x0b);
	assert_int_equal(in(p, 0x20), 0x00);
	/* IMR reads back. */
	out(p, 0x21, 0xa5);
	assert_int_equal(in(p, 0x21), 0xa5);
	/* Set priority: level 4 lowest, so 5 now outranks 1. */
	out(p, 0x21, 0x00);
	out(p, 0x20, 0xc4);
	kvmk_pic_set_irq(p, 1, false);
	kvmk_pic_set_irq(p, 5, false);
	kvmk_pic_set_irq(p, 1, true);
	kvmk_pic_set_irq(p, 5, true);
	assert_int_equal(kvmk_pic_intack(p), 0x55);
	kvmk_pic_destroy(p);
}

static void test_cascade(void **state)
{
	struct kvmk_pic *p = mk();

	init_pair(p, 0x20, 0x28, 0xfeff & 0xfffb); /* IRQ 8 and the cascade open */
	assert_int_equal(kvmk_pic_set_irq(p, 8, true), 1);
	assert_true(kvmk_pic_output(p));
	assert_int_equal(kvmk_pic_intack(p), 0x28);
	/* Both chips have it in service: slave IR0 and master IR2. */
	out(p, 0xa0, 0x0b);
	assert_int_equal(in(p, 0xa0), 0x01);
	out(p, 0x20, 0x0b);
	assert_int_equal(in(p, 0x20), 0x04);
	out(p, 0xa0, 0x20);
	out(p, 0x20, 0x20);
	assert_int_equal(in(p, 0x20), 0x00);
	/* The master masking the cascade masks every slave input. */
	out(p, 0x21, 0xff);
	kvmk_pic_set_irq(p, 8, false);
	assert_int_equal(kvmk_pic_set_irq(p, 8, true), KVMK_IRQ_MASKED);
	/* IRQ 2 itself is the cascade, not a device input. */
	assert_int_equal(kvmk_pic_set_irq(p, 2, true), KVMK_IRQ_MASKED);
	assert_int_equal(kvmk_pic_set_irq(p, 16, true), -EINVAL);
	kvmk_pic_destroy(p);
}

static void test_level_elcr_aeoi_poll(void **state)
{
	struct kvmk_pic *p = mk();

	init_pair(p, 0x20, 0x28, 0x0000);
	/* ELCR: IRQ 0-2 stay edge, IRQ 5 becomes level. */
	out(p, 0x4d0, 0xff);
	assert_int_equal(in(p, 0x4d0), 0xf8);
	out(p, 0x4d1, 0xff);
	assert_int_equal(in(p, 0x4d1), 0xde);
	out(p, 0x4d1, 0x00);
	out(p, 0x4d0, 0x20);
	/* A level input re-requests after the EOI while it stays high. */
	assert_int_equal(kvmk_pic_set_irq(p, 5, true), 1);
	assert_int_equal(kvmk_pic_intack(p), 0x25);
	out(p, 0x20, 0x20);
	assert_true(kvmk_pic_output(p));
	assert_int_equal(kvmk_pic_intack(p), 0x25);
	/* Dropped before the EOI: no more requests. */
	kvmk_pic_set_irq(p, 5, false);
	out(p, 0x20, 0x20);
	assert_false(kvmk_pic_output(p));
	/* Poll: acknowledges like an INTA and returns 0x80 | level. */
	kvmk_pic_set_irq(p, 6, true);
	out(p, 0x20, 0x0c);
	assert_int_equal(in(p, 0x20), 0x86);
	out(p, 0x20, 0x0c);
	assert_int_equal(in(p, 0x20), 0x00); /* in service: nothing to poll */
	out(p, 0x20, 0x20);
	/* AEOI (ICW4 bit 1): nothing stays in service. */
	out(p, 0x20, 0x11);
	out(p, 0x21, 0x40);
	out(p, 0x21, 0x04);
	out(p, 0x21, 0x03);
	out(p, 0x21, 0x00);
	kvmk_pic_set_irq(p, 4, false);
	kvmk_pic_set_irq(p, 4, true);
	ended = 0;
	assert_int_equal(kvmk_pic_intack(p), 0x44);
	assert_int_equal(ended, 1u << 4); /* AEOI: ends at the INTA */
	out(p, 0x20, 0x0b);
	assert_int_equal(in(p, 0x20), 0x00);
	kvmk_pic_destroy(p);
}

/* Rotation, special mask mode and special fully nested mode. */
static void test_rotation_smm_sfnm(void **state)
{
	struct kvmk_pic *p = mk();

	init_pair(p, 0x20, 0x28, 0x0000);
	/* Rotate on non-specific EOI: the level just served becomes lowest. */
	kvmk_pic_set_irq(p, 3, true);
	assert_int_equal(kvmk_pic_intack(p), 0x23);
	out(p, 0x20, 0xa0);
	kvmk_pic_set_irq(p, 1, true);
	kvmk_pic_set_irq(p, 4, true);
	assert_int_equal(kvmk_pic_intack(p), 0x24); /* 4 now outranks 1 */
	out(p, 0x20, 0x64); /* specific EOI 4 */
	assert_int_equal(kvmk_pic_intack(p), 0x21);
	out(p, 0x20, 0x61);
	/* Special mask mode: masking the in-service level lets lower ones in. */
	out(p, 0x20, 0xc7); /* back to the fixed order: 7 lowest */
	kvmk_pic_set_irq(p, 5, true);
	assert_int_equal(kvmk_pic_intack(p), 0x25);
	kvmk_pic_set_irq(p, 6, true);
	assert_false(kvmk_pic_output(p)); /* 6 is below 5, in service */
	out(p, 0x20, 0x68); /* OCW3: set special mask */
	out(p, 0x21, 0x20); /* mask 5 */
	assert_true(kvmk_pic_output(p));
	assert_int_equal(kvmk_pic_intack(p), 0x26);
	out(p, 0x20, 0x48); /* reset special mask */
	out(p, 0x21, 0x00);
	out(p, 0x20, 0x66);
	out(p, 0x20, 0x65);
	/* Special fully nested: with IR2 in service on the master, a higher
	 * slave request still gets through. */
	out(p, 0x20, 0x11);
	out(p, 0x21, 0x20);
	out(p, 0x21, 0x04);
	out(p, 0x21, 0x11); /* ICW4: SFNM, 8086 */
	out(p, 0x21, 0x00);
	kvmk_pic_set_irq(p, 12, true);
	assert_int_equal(kvmk_pic_intack(p), 0x2c);
	kvmk_pic_set_irq(p, 9, true);
	assert_int_equal(kvmk_pic_intack(p), 0x29);
	/* Poll on the slave: its own levels. */
	kvmk_pic_set_irq(p, 15, false);
	kvmk_pic_set_irq(p, 15, true);
	out(p, 0xa0, 0x20); /* EOI 9 */
	out(p, 0xa0, 0x20); /* EOI 12 */
	out(p, 0xa0, 0x0c);
	assert_int_equal(in(p, 0xa0), 0x87);
	kvmk_pic_destroy(p);
}

/* Hostile accesses and state round trips. */
static void test_hostile_and_restore(void **state)
{
	struct kvmk_pic *p = mk(), *q = mk();
	struct kvmk_pic_state st;
	uint8_t buf[8];
	uint32_t w = 0x11;

	memset(buf, 0x11, sizeof(buf));
	kvmk_pic_master_ops.read(p, 0, buf, 2);
	assert_memory_equal(buf, "\xff\xff\x11\x11", 4);
	kvmk_pic_master_ops.read(p, 2, buf, 1);
	assert_int_equal(buf[0], 0xff);
	kvmk_pic_elcr_ops.read(p, 5, buf, 1);
	assert_int_equal(buf[0], 0xff);
	out(p, 0x21, 0xa5);
	w = 0x5a;
	kvmk_pic_master_ops.write(p, 1, &w, 4); /* ignored: would set the IMR */
	kvmk_pic_master_ops.write(p, 7, &w, 1); /* ignored */
	w = 0x11;
	kvmk_pic_master_ops.write(p, 0, &w, 2); /* ignored: would be ICW1, IMR 0 */
	w = 0xff;
	kvmk_pic_elcr_ops.write(p, 2, &w, 1); /* ignored */
	kvmk_pic_elcr_ops.write(p, 0, &w, 2); /* ignored */
	assert_int_equal(in(p, 0x21), 0xa5);
	assert_int_equal(in(p, 0x4d0), 0x00);
	init_pair(p, 0x30, 0x38, 0xfff7);
	kvmk_pic_set_irq(p, 3, true);
	kvmk_pic_save(p, &st);
	assert_int_equal(kvmk_pic_restore(q, &st), 0);
	assert_true(kvmk_pic_output(q));
	assert_int_equal(kvmk_pic_intack(q), 0x33);
	st.chip[0].vector_base = 0x31;
	assert_int_equal(kvmk_pic_restore(q, &st), -EINVAL);
	st.chip[0].vector_base = 0x30;
	st.chip[1].elcr = 0x01; /* IRQ 8 is edge-only */
	assert_int_equal(kvmk_pic_restore(q, &st), -EINVAL);
	kvmk_pic_destroy(p);
	kvmk_pic_destroy(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edge_delivery_and_eoi),
		cmocka_unit_test(test_priority_and_masking),
		cmocka_unit_test(test_cascade),
		cmocka_unit_test(test_level_elcr_aeoi_poll),
		cmocka_unit_test(test_rotation_smm_sfnm),
		cmocka_unit_test(test_hostile_and_restore),
	};

	return cmocka_run_group_tests_name("pic", tests, NULL, NULL);
}
