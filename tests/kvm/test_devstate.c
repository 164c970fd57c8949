// SPDX-License-Identifier: MIT
/*
 * The devices' saved state (kvmkit_machine_save/restore_devices): what a
 * guest programmed into the UART, fw_cfg, the report device and the test
 * device comes back in a second machine, read through its buses as the
 * guest would; truncated or foreign blobs are refused.
 */
#include <stdlib.h>
#include <string.h>

#include "kvm_test.h"

static struct kvmkit_machine *new_machine(void)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;

	guest_config(&cfg, "hello", 1, 16 << 20);
	cfg.testdev = KVMKIT_TESTDEV_ON;
	m = machine_from(&cfg);
	return m;
}

static void out8(struct kvmkit_machine *m, uint16_t port, uint8_t v)
{
	assert_true(
		kvmkit_bus_dispatch(kvmkit_vm_pio_bus(kvmkit_machine_vm(m)), port, &v, 1, true));
}

static uint8_t in8(struct kvmkit_machine *m, uint16_t port)
{
	uint8_t v = 0;

	assert_true(
		kvmkit_bus_dispatch(kvmkit_vm_pio_bus(kvmkit_machine_vm(m)), port, &v, 1, false));
	return v;
}

static void io32(struct kvmkit_machine *m, uint16_t port, uint32_t *v, bool write)
{
	assert_true(
		kvmkit_bus_dispatch(kvmkit_vm_pio_bus(kvmkit_machine_vm(m)), port, v, 4, write));
}

static void io16(struct kvmkit_machine *m, uint16_t port, uint16_t v)
{
	assert_true(
		kvmkit_bus_dispatch(kvmkit_vm_pio_bus(kvmkit_machine_vm(m)), port, &v, 2, true));
}

#define COM1 KVMKIT_UART_COM1

static void test_devices_round_trip(void **state)
{
	struct kvmkit_machine *a = new_machine(), *b = new_machine();
	uint32_t scratch = 0xc0ffee11, rep = 0x77;
	uint64_t vals[2];
	void *buf, *buf2;
	size_t len, len2;

	/* UART: divisor 0x1234, 8N1, IER RDA|RLS, MCR DTR|RTS|OUT2, SCR,
	 * three received bytes. */
	out8(a, COM1 + 3, 0x80);
	out8(a, COM1 + 0, 0x34);
	out8(a, COM1 + 1, 0x12);
	out8(a, COM1 + 3, 0x03);
	out8(a, COM1 + 1, 0x05);
	out8(a, COM1 + 4, 0x0b);
	out8(a, COM1 + 7, 0x5a);
	assert_int_equal(kvmkit_uart_feed(kvmkit_machine_uart(a), "abc", 3), 3);
	/* fw_cfg: the signature selected, two bytes read ("QE"). */
	io16(a, KVMKIT_FWCFG_PORT, KVMKIT_FWCFG_SIGNATURE);
	assert_int_equal(in8(a, KVMKIT_FWCFG_PORT + 1), 'Q');
	assert_int_equal(in8(a, KVMKIT_FWCFG_PORT + 1), 'E');
	/* Test device scratch register and a report value. */
	io32(a, KVMKIT_TESTDEV_SCRATCH1, &scratch, true);
	io32(a, KVMKIT_REPORT_PORT, &rep, true);

	assert_int_equal(kvmkit_machine_save_devices(a, &buf, &len), 0);
	assert_int_equal(kvmkit_machine_restore_devices(b, buf, len), 0);
	assert_int_equal(kvmkit_machine_save_devices(b, &buf2, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(buf2, buf, len);

	/* What a guest of b reads. */
	assert_int_equal(in8(b, COM1 + 7), 0x5a);
	assert_int_equal(in8(b, COM1 + 1), 0x05);
	assert_int_equal(in8(b, COM1 + 4), 0x0b);
	assert_int_equal(in8(b, COM1 + 5) & 0x01, 0x01); /* data ready */
	assert_int_equal(in8(b, COM1 + 0), 'a');
	assert_int_equal(in8(b, COM1 + 0), 'b');
	assert_int_equal(in8(b, COM1 + 0), 'c');
	out8(b, COM1 + 3, 0x83);
	assert_int_equal(in8(b, COM1 + 0), 0x34);
	assert_int_equal(in8(b, COM1 + 1), 0x12);
	out8(b, COM1 + 3, 0x03);
	assert_int_equal(in8(b, KVMKIT_FWCFG_PORT + 1), 'M');
	scratch = 0;
	io32(b, KVMKIT_TESTDEV_SCRATCH1, &scratch, false);
	assert_int_equal(scratch, 0xc0ffee11);
	assert_int_equal(kvmkit_report_values(kvmkit_machine_report(b), vals, 2), 1);
	assert_int_equal(vals[0], 0x77);
	free(buf);
	free(buf2);
	kvmkit_machine_destroy(a);
	kvmkit_machine_destroy(b);
}

/* Every truncation, a flipped magic, a renamed device and a bad register are
 * refused; the UART of the target is untouched by them. */
static void test_devices_hostile(void **state)
{
	struct kvmkit_machine *a = new_machine(), *b = new_machine();
	uint8_t *bad;
	void *buf;
	size_t len;

	out8(a, COM1 + 7, 0x42);
	out8(b, COM1 + 7, 0x99);
	assert_int_equal(kvmkit_machine_save_devices(a, &buf, &len), 0);
	for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 997))
		assert_int_equal(kvmkit_machine_restore_devices(b, buf, cut), -ENOEXEC);
	bad = malloc(len);
	memcpy(bad, buf, len);
	bad[0] ^= 0xff;
	assert_int_equal(kvmkit_machine_restore_devices(b, bad, len), -ENOEXEC);
	memcpy(bad, buf, len);
	bad[16] = 'X'; /* "uart16550" -> "Xart16550" */
	assert_int_equal(kvmkit_machine_restore_devices(b, bad, len), -ENOEXEC);
	memcpy(bad, buf, len);
	bad[12 + 4 + 9 + 4 + 4] = 0xf0; /* the UART's IER with reserved bits */
	assert_int_equal(kvmkit_machine_restore_devices(b, bad, len), -ENOEXEC);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_FORMAT);
	assert_int_equal(in8(b, COM1 + 7), 0x99);
	assert_int_equal(kvmkit_machine_restore_devices(b, buf, len), 0);
	assert_int_equal(in8(b, COM1 + 7), 0x42);
	free(bad);
	free(buf);
	kvmkit_machine_destroy(a);
	kvmkit_machine_destroy(b);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_devices_round_trip),
		cmocka_unit_test(test_devices_hostile),
	};

	test_args(argc, argv);
	require_kvm();
	return cmocka_run_group_tests_name("devstate", tests, NULL, NULL);
}
