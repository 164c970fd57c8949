// SPDX-License-Identifier: MIT
/*
 * The generic interrupt layer (src/irq/) against a fake back end, without
 * KVM: staging and commit, rollback after a refused commit, the allocator,
 * the route-before-irqfd ordering rules, statistics, line and MSI handles.
 * The fake records what reached it, so each test asserts what the
 * controller was actually given.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/internal.h"
#include "irq/irq_backend.h"

#define FAKE_PINS 8
#define FAKE_CAPACITY 64

struct fake {
	/* What the controller has: the last table it accepted. */
	struct kvm_irq_routing_entry table[FAKE_CAPACITY];
	unsigned int ntable;
	unsigned int commits;
	bool fail_commit;
	/* Line levels and calls. */
	bool level[KVMKIT_MAX_GSI];
	unsigned int line_calls;
	int next_status; /* raw status of the next assertion */
	bool fail_line;
	bool fail_bind;
	bool kvm_deassign; /* unbind succeeds for any pair, as KVM's does */
	/* Bound irqfds. */
	struct {
		bool used, kernel;
		uint32_t gsi;
		int fd;
	} irqfd[16];
	unsigned int msis;
	unsigned int direct_signals; /* irqfd signals the back end served itself */
	bool destroyed;
};

static struct fake fk;
/* The fake's device-line range starts here (FAKE_PINS: no line range,
 * every pin is a platform pin). */
static uint32_t fake_line_lo = 4;
/* Like arm64's vGIC: no platform pins, alloc_pin hands out device lines. */
static bool fake_pins_are_lines;

static bool in_table(uint32_t gsi)
{
	for (unsigned int i = 0; i < fk.ntable; i++)
		if (fk.table[i].gsi == gsi)
			return true;
	return false;
}

static int fake_create(struct kvmkit_irqchip *chip, const struct kvmkit_irqchip_config *cfg)
{
	chip->priv = &fk;
	chip->pins = FAKE_PINS;
	chip->line_lo = fake_line_lo;
	chip->line_hi = FAKE_PINS;
	chip->msi_lo = FAKE_PINS;
	chip->pins_are_lines = fake_pins_are_lines;
	return 0;
}

static void fake_destroy(struct kvmkit_irqchip *chip)
{
	fk.destroyed = true;
}

static void fake_default_routes(struct kvmkit_irqchip *chip, struct kvm_irq_routing_entry *tab,
				unsigned int *n)
{
	*n = 0;
	for (uint32_t g = 0; g < FAKE_PINS; g++) {
		memset(&tab[*n], 0, sizeof(tab[*n]));
		tab[*n].gsi = g;
		tab[*n].type = KVM_IRQ_ROUTING_IRQCHIP;
		tab[*n].u.irqchip.pin = g;
		(*n)++;
	}
	/* The controller starts with the same table. */
	memcpy(fk.table, tab, *n * sizeof(*tab));
	fk.ntable = *n;
}

static int fake_check_route(struct kvmkit_irqchip *chip, uint32_t irqchip, uint32_t pin)
{
	if (irqchip != 0 || pin >= FAKE_PINS)
		return kvmk_err_param("route", "pin", "fake has chip 0, pins 0-7", "%u/%u", irqchip,
				      pin);
	return 0;
}

static int fake_commit(struct kvmkit_irqchip *chip, const struct kvm_irq_routing_entry *tab,
		       unsigned int n)
{
	fk.commits++;
	if (fk.fail_commit)
		return kvmk_err_ioctl("FAKE_SET_ROUTING", EINVAL, "refused");
	/* The ordering rule: no irqfd may be bound to a GSI the new table
	 * drops (kvmkit must have refused the removal). */
	for (unsigned int i = 0; i < 16; i++) {
		bool kept = false;

		for (unsigned int j = 0; fk.irqfd[i].used && j < n; j++)
			kept |= tab[j].gsi == fk.irqfd[i].gsi;
		assert_true(!fk.irqfd[i].used || kept);
	}
	memcpy(fk.table, tab, n * sizeof(*tab));
	fk.ntable = n;
	return 0;
}

static int fake_set_line(struct kvmkit_irqchip *chip, uint32_t gsi, bool level, bool *failed)
{
	fk.line_calls++;
	if (fk.fail_line) {
		*failed = true;
		return kvmk_err_ioctl("FAKE_LINE", EIO, "gsi %u", gsi);
	}
	fk.level[gsi] = level;
	return level ? fk.next_status : 0;
}

static int fake_signal_msi(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data,
			   uint32_t flags, uint32_t devid, bool *failed)
{
	fk.msis++;
	return 1;
}

static int fake_irqfd_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd)
{
	/* The ordering rule: the route is in the controller's table. */
	assert_true(in_table(gsi));
	if (fk.fail_bind)
		return kvmk_err_ioctl("FAKE_IRQFD", EMFILE, "gsi %u", gsi);
	for (unsigned int i = 0; i < 16; i++) {
		if (fk.irqfd[i].used)
			continue;
		fk.irqfd[i].used = true;
		fk.irqfd[i].kernel = resample_fd < 0;
		fk.irqfd[i].gsi = gsi;
		fk.irqfd[i].fd = fd;
		return 0;
	}
	return kvmk_err_resource("bind", ENOSPC, "fake full");
}

static int fake_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	for (unsigned int i = 0; i < 16; i++) {
		if (fk.irqfd[i].used && fk.irqfd[i].gsi == gsi && fk.irqfd[i].fd == fd) {
			/* Still routed while it is unbound. */
			assert_true(in_table(gsi));
			fk.irqfd[i].used = false;
			return 0;
		}
	}
	if (fk.kvm_deassign)
		return 0;
	return kvmk_err_param("unbind", "fd", "not bound", "%d", fd);
}

static unsigned int fake_in_kernel(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < 16; i++)
		n += fk.irqfd[i].used && fk.irqfd[i].kernel && fk.irqfd[i].gsi == gsi;
	return n;
}

/* The fake controller's registers: one word. */
static int fake_save(struct kvmkit_irqchip *chip, struct kvmk_blob *out)
{
	return kvmk_blob_put_u32(out, fk.line_calls);
}

static int fake_restore(struct kvmkit_irqchip *chip, const uint8_t *p, size_t len)
{
	uint32_t v;

	if (len != 4)
		return kvmk_err_format("restore", "fake state is 4 bytes, not %zu", len);
	memcpy(&v, p, 4);
	if (v == 0xdead)
		return kvmk_err_format("restore", "fake refuses 0xdead");
	fk.line_calls = v;
	return 0;
}

/* Serves signals of its non-kernel irqfds itself, as split mode does. */
static int fake_irqfd_signal(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	for (unsigned int i = 0; i < 16; i++)
		if (fk.irqfd[i].used && !fk.irqfd[i].kernel && fk.irqfd[i].gsi == gsi &&
		    fk.irqfd[i].fd == fd) {
			fk.direct_signals++;
			return 1;
		}
	return 0;
}

static const struct kvmk_irqchip_ops fake_ops = {
	.save = fake_save,
	.restore = fake_restore,
	.name = "fake",
	.create = fake_create,
	.destroy = fake_destroy,
	.default_routes = fake_default_routes,
	.check_route = fake_check_route,
	.commit = fake_commit,
	.set_line = fake_set_line,
	.signal_msi = fake_signal_msi,
	.irqfd_bind = fake_irqfd_bind,
	.irqfd_unbind = fake_irqfd_unbind,
	.irqfds_in_kernel = fake_in_kernel,
	.irqfd_signal = fake_irqfd_signal,
};

static int setup(void **state)
{
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_irqchip *chip;

	memset(&fk, 0, sizeof(fk));
	kvmkit_irqchip_config_init(&cfg);
	assert_int_equal(kvmk_irqchip_new(NULL, &fake_ops, &cfg, FAKE_CAPACITY, &chip), 0);
	*state = chip;
	return 0;
}

static int teardown(void **state)
{
	kvmk_irqchip_free(*state);
	assert_true(fk.destroyed);
	return 0;
}

static void test_default_table(void **state)
{
	struct kvmkit_irqchip *chip = *state;

	assert_int_equal(kvmkit_irqchip_pins(chip), FAKE_PINS);
	assert_int_equal(kvmkit_irqchip_route_capacity(chip), FAKE_CAPACITY);
	for (uint32_t g = 0; g < FAKE_PINS; g++)
		assert_int_equal(kvmkit_irq_route_count(chip, g), 1);
	assert_int_equal(kvmkit_irq_route_count(chip, FAKE_PINS), 0);
	assert_int_equal(fk.commits, 0);
}

static void test_stage_then_commit(void **state)
{
	struct kvmkit_irqchip *chip = *state;

	assert_int_equal(kvmkit_irq_route_msi(chip, 20, 0xfee00000, 0x41, -1), 0);
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 21, 0, 3), 0);
	/* Staged only: neither kvmkit's committed view nor the controller. */
	assert_int_equal(kvmkit_irq_route_count(chip, 20), 0);
	assert_false(in_table(20));
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	/* The whole table went down: defaults plus the two new entries. */
	assert_int_equal(fk.ntable, FAKE_PINS + 2);
	assert_true(in_table(20) && in_table(21) && in_table(0));
	assert_int_equal(kvmkit_irq_route_count(chip, 20), 1);
	/* An irqchip route replaces an MSI route; the same chip's pin is
	 * replaced, not added. */
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 20, 0, 5), 0);
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 20, 0, 6), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irq_route_count(chip, 20), 1);
	for (unsigned int i = 0; i < fk.ntable; i++)
		if (fk.table[i].gsi == 20)
			assert_int_equal(fk.table[i].u.irqchip.pin, 6);
	/* Bad targets are refused by the back end's check. */
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 22, 1, 0), -EINVAL);
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 22, 0, FAKE_PINS), -EINVAL);
	assert_int_equal(kvmkit_irq_route_msi(chip, KVMKIT_MAX_GSI, 0, 0, -1), -EINVAL);
	/* Device ids only where the VM reports KVM_CAP_MSI_DEVID. */
	assert_int_equal(kvmkit_irq_route_msi(chip, 22, 0xfee00000, 0x41, 8), -ENOTSUP);
}

static void test_rollback(void **state)
{
	struct kvmkit_irqchip *chip = *state;

	assert_int_equal(kvmkit_irq_route_msi(chip, 30, 0xfee00000, 0x50, -1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irq_route_remove(chip, 30), 0);
	assert_int_equal(kvmkit_irq_route_msi(chip, 31, 0xfee00000, 0x51, -1), 0);
	fk.fail_commit = true;
	assert_int_equal(kvmkit_irq_routes_commit(chip), -EINVAL);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_IOCTL);
	/* The controller kept its table, and so did kvmkit. */
	assert_true(in_table(30));
	assert_false(in_table(31));
	assert_int_equal(kvmkit_irq_route_count(chip, 30), 1);
	assert_int_equal(kvmkit_irq_route_count(chip, 31), 0);
	/* The staged copy was rolled back too: the next commit sends the
	 * committed table, not the refused edits. */
	fk.fail_commit = false;
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_true(in_table(30));
	assert_false(in_table(31));
	assert_int_equal(fk.ntable, FAKE_PINS + 1);
}

static void test_table_full(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	unsigned int added = 0;
	int r = 0;

	for (uint32_t g = 100; g < 100 + FAKE_CAPACITY && !r; g++) {
		r = kvmkit_irq_route_msi(chip, g, 0xfee00000, 0x40, -1);
		added += !r;
	}
	assert_int_equal(r, -ENOSPC);
	assert_int_equal(added, FAKE_CAPACITY - FAKE_PINS);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(fk.ntable, FAKE_CAPACITY);
}

static void test_allocator(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	int g[5];

	for (int i = 0; i < 4; i++)
		g[i] = kvmkit_gsi_alloc_line(chip);
	assert_int_equal(g[0], 4);
	assert_int_equal(g[3], 7);
	assert_int_equal(kvmkit_gsi_alloc_line(chip), -ENOSPC);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_RESOURCE);
	/* Reuse after free, lowest first. */
	assert_int_equal(kvmkit_gsi_free(chip, 5), 0);
	assert_int_equal(kvmkit_gsi_alloc_line(chip), 5);
	/* Platform GSIs and unallocated ones cannot be freed. */
	assert_int_equal(kvmkit_gsi_free(chip, 2), -EINVAL);
	assert_int_equal(kvmkit_gsi_free(chip, 40), -EINVAL);
	assert_int_equal(kvmkit_gsi_free(chip, KVMKIT_MAX_GSI), -EINVAL);
	/* MSIs from past the pins up to the capacity. */
	g[4] = kvmkit_gsi_alloc_msi(chip);
	assert_int_equal(g[4], FAKE_PINS);
	for (int i = FAKE_PINS + 1; i < FAKE_CAPACITY; i++)
		assert_int_equal(kvmkit_gsi_alloc_msi(chip), i);
	assert_int_equal(kvmkit_gsi_alloc_msi(chip), -ENOSPC);
}

/* Pins for platform devices (virtio-mmio): from 5 up, never a legacy pin
 * (4 here), never a pin with an open line, from the line range too. */
static void test_alloc_pin(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_line *l6;

	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 5);
	assert_int_equal(kvmkit_line_open(chip, 6, &l6), 0);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 7);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), -ENOSPC);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_RESOURCE);
	kvmkit_line_close(l6);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 6);
	/* The line allocator sees them taken; only 4 is left to it. */
	assert_int_equal(kvmkit_gsi_alloc_line(chip), 4);
	assert_int_equal(kvmkit_gsi_alloc_line(chip), -ENOSPC);
	assert_int_equal(kvmkit_gsi_free(chip, 5), 0);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 5);
}

static int setup_platform_pins(void **state)
{
	fake_line_lo = FAKE_PINS;
	return setup(state);
}

static int teardown_platform_pins(void **state)
{
	fake_line_lo = 4;
	return teardown(state);
}

/* Below the line range the pins are the platform's: handed out once each,
 * freed only if handed out, with the same skipping rules. */
static void test_alloc_platform_pin(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_line *l;

	assert_int_equal(kvmkit_gsi_alloc_line(chip), -ENOSPC);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 5);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 6);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 7);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), -ENOSPC);
	assert_int_equal(kvmkit_gsi_free(chip, 6), 0);
	assert_int_equal(kvmkit_gsi_free(chip, 6), -EINVAL);
	assert_int_equal(kvmkit_gsi_free(chip, 3), -EINVAL);
	assert_int_equal(kvmkit_line_open(chip, 6, &l), 0);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), -ENOSPC);
	kvmkit_line_close(l);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 6);
	/* A pin with an irqfd bound is not freed under it. */
	assert_int_equal(kvmkit_irqfd_bind(chip, 6, 60, -1), 0);
	assert_int_equal(kvmkit_gsi_free(chip, 6), -EBUSY);
	assert_int_equal(kvmkit_irqfd_unbind(chip, 6, 60), 0);
	assert_int_equal(kvmkit_gsi_free(chip, 6), 0);
}

static int setup_pins_are_lines(void **state)
{
	fake_pins_are_lines = true;
	return setup(state);
}

static int teardown_pins_are_lines(void **state)
{
	fake_pins_are_lines = false;
	return teardown(state);
}

/* A controller without platform pins (arm64's SPIs): alloc_pin hands out
 * device lines from line_lo (4 here, which the x86 rules skip as legacy),
 * skipping open lines and lines the line allocator gave out. */
static void test_alloc_pin_lines(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_line *l5;

	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 4);
	assert_int_equal(kvmkit_line_open(chip, 5, &l5), 0);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 6);
	assert_int_equal(kvmkit_gsi_alloc_line(chip), 5); /* then allocated: skipped too */
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 7);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), -ENOSPC);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_RESOURCE);
	kvmkit_line_close(l5);
	assert_int_equal(kvmkit_gsi_free(chip, 6), 0);
	assert_int_equal(kvmkit_gsi_alloc_pin(chip), 6);
	assert_int_equal(kvmkit_gsi_free(chip, 3), -EINVAL); /* below the lines: none handed out */
}

static void test_irqfd_ordering(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_gsi_stats st;
	int gsi = kvmkit_gsi_alloc_msi(chip);

	/* No irqfd before the route is committed: staged is not enough. */
	assert_int_equal(kvmkit_irqfd_bind(chip, (uint32_t)gsi, 50, -1), -EBUSY);
	assert_int_equal(kvmkit_irq_route_msi(chip, (uint32_t)gsi, 0xfee00000, 0x45, -1), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, (uint32_t)gsi, 50, -1), -EBUSY);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, (uint32_t)gsi, 50, -1), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, (uint32_t)gsi, 51, 52), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, (uint32_t)gsi, -1, -1), -EINVAL);
	assert_int_equal(kvmkit_irq_gsi_stats(chip, (uint32_t)gsi, &st), 0);
	assert_int_equal(st.irqfds_kernel, 1);
	assert_int_equal(st.irqfds_thread, 1);
	/* Neither the route nor the GSI can go while irqfds are bound. */
	assert_int_equal(kvmkit_irq_route_remove(chip, (uint32_t)gsi), -EBUSY);
	assert_int_equal(kvmkit_gsi_free(chip, (uint32_t)gsi), -EBUSY);
	/* A failed unbind changes nothing. */
	assert_int_equal(kvmkit_irqfd_unbind(chip, (uint32_t)gsi, 99), -ENOENT);
	assert_int_equal(kvmkit_irqfd_unbind(chip, (uint32_t)gsi, 50), 0);
	assert_int_equal(kvmkit_irq_route_remove(chip, (uint32_t)gsi), -EBUSY);
	assert_int_equal(kvmkit_irqfd_unbind(chip, (uint32_t)gsi, 51), 0);
	assert_int_equal(kvmkit_irq_route_remove(chip, (uint32_t)gsi), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_false(in_table((uint32_t)gsi));
	assert_int_equal(kvmkit_gsi_free(chip, (uint32_t)gsi), 0);
}

static void test_line_status_and_stats(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_irq_status st;
	struct kvmkit_gsi_stats s;

	fk.next_status = 2;
	assert_int_equal(kvmkit_irq_line(chip, 3, true, &st), 0);
	assert_int_equal(st.result, KVMKIT_IRQ_DELIVERED);
	assert_int_equal(st.cpus, 2);
	fk.next_status = 0;
	assert_int_equal(kvmkit_irq_pulse(chip, 3, &st), 0);
	assert_int_equal(st.result, KVMKIT_IRQ_COALESCED);
	assert_false(fk.level[3]); /* the pulse ended low */
	fk.next_status = KVMK_IRQ_MASKED;
	assert_int_equal(kvmkit_irq_line(chip, 3, true, &st), 0);
	assert_int_equal(st.result, KVMKIT_IRQ_MASKED);
	assert_int_equal(kvmkit_irq_line(chip, 3, false, &st), 0);
	assert_int_equal(st.result, KVMKIT_IRQ_NONE);
	/* A back end failure is an error, not a status, and is not counted. */
	fk.fail_line = true;
	assert_int_equal(kvmkit_irq_line(chip, 3, true, &st), -EIO);
	fk.fail_line = false;
	assert_int_equal(kvmkit_irq_gsi_stats(chip, 3, &s), 0);
	assert_int_equal(s.asserts, 3);
	assert_int_equal(s.deliveries, 1);
	assert_int_equal(s.coalesced, 1);
	assert_int_equal(s.masked, 1);
	assert_string_equal(kvmkit_irq_result_name(KVMKIT_IRQ_COALESCED), "coalesced");
	/* MSIs: the device id needs the capability. */
	assert_int_equal(kvmkit_signal_msi(chip, 0xfee00000, 0x40, -1, &st), 0);
	assert_int_equal(st.result, KVMKIT_IRQ_DELIVERED);
	assert_int_equal(kvmkit_signal_msi(chip, 0xfee00000, 0x40, 3, &st), -ENOTSUP);
	assert_int_equal(fk.msis, 1);
}

static void test_line_handle(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_line *l;

	assert_int_equal(kvmkit_line_open(chip, 6, &l), 0);
	fk.next_status = 1;
	assert_int_equal(kvmkit_line_set(l, true, NULL), 0);
	assert_int_equal(kvmkit_line_set(l, true, NULL), 0);
	assert_int_equal(kvmkit_line_set(l, true, NULL), 0);
	/* Only the change reached the controller. */
	assert_int_equal(fk.line_calls, 1);
	assert_true(fk.level[6]);
	kvmkit_line_close(l);
	assert_false(fk.level[6]);
	assert_int_equal(fk.line_calls, 2);
}

/* Handles on one GSI are wired-OR: the line is high while any holds it. */
static void test_lines_wired_or(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_irq_status st;
	struct kvmkit_line *a, *b;

	assert_int_equal(kvmkit_line_open(chip, 6, &a), 0);
	assert_int_equal(kvmkit_line_open(chip, 6, &b), 0);
	fk.next_status = 1;
	assert_int_equal(kvmkit_line_set(a, true, &st), 0);
	assert_int_equal(st.result, KVMKIT_IRQ_DELIVERED);
	assert_int_equal(kvmkit_line_set(b, true, &st), 0);
	assert_int_equal(st.result, KVMKIT_IRQ_NONE);
	assert_int_equal(fk.line_calls, 1);
	assert_int_equal(kvmkit_line_set(a, false, NULL), 0);
	assert_true(fk.level[6]); /* b still holds it */
	assert_int_equal(kvmkit_line_pulse(a, &st), 0);
	assert_int_equal(st.result, KVMKIT_IRQ_NONE); /* no edge on a high wire */
	assert_int_equal(fk.line_calls, 1);
	kvmkit_line_close(b);
	assert_false(fk.level[6]);
	assert_int_equal(fk.line_calls, 2);
	assert_int_equal(kvmkit_line_pulse(a, &st), 0);
	assert_int_equal(st.result, KVMKIT_IRQ_DELIVERED);
	assert_int_equal(fk.line_calls, 4);
	kvmkit_line_close(a);
	assert_int_equal(fk.line_calls, 4);
}

/* kvmkit_line_force: every call reaches the pin, whatever was driven. */
static void test_line_force(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_line *l;

	assert_int_equal(kvmkit_line_open(chip, 7, &l), 0);
	fk.next_status = 1;
	/* The host raised GSI 7 directly; the device's port lowers it. */
	assert_int_equal(kvmkit_irq_line(chip, 7, true, NULL), 0);
	assert_int_equal(kvmkit_line_force(l, false, NULL), 0);
	assert_false(fk.level[7]);
	assert_int_equal(kvmkit_line_force(l, true, NULL), 0);
	assert_int_equal(kvmkit_line_force(l, true, NULL), 0);
	assert_int_equal(fk.line_calls, 4);
	kvmkit_line_close(l); /* lowers what it holds */
	assert_false(fk.level[7]);
}

static void test_msi_handle(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_gsi_stats s;
	struct kvmkit_msi *m;
	uint32_t gsi;

	assert_int_equal(kvmkit_msi_open(chip, &m), 0);
	gsi = kvmkit_msi_gsi(m);
	assert_true(gsi >= FAKE_PINS);
	/* Not configured: a signal is dropped (counted), nothing is bound. */
	assert_int_equal(kvmkit_msi_signal(m), 0);
	assert_false(in_table(gsi));
	assert_int_equal(kvmkit_msi_configure(m, 0xfee01000, 0x33, -1), 0);
	assert_true(in_table(gsi));
	assert_int_equal(kvmkit_irq_gsi_stats(chip, gsi, &s), 0);
	assert_int_equal(s.irqfds_kernel, 1);
	assert_int_equal(kvmkit_msi_signal(m), 0);
	/* Reconfigured: the same GSI, the new message, still one irqfd. */
	assert_int_equal(kvmkit_msi_configure(m, 0xfee02000, 0x34, -1), 0);
	for (unsigned int i = 0; i < fk.ntable; i++)
		if (fk.table[i].gsi == gsi)
			assert_int_equal(fk.table[i].u.msi.data, 0x34);
	/* Masked: unbound first, then unrouted (the fake checks the order). */
	assert_int_equal(kvmkit_msi_mask(m, true), 0);
	assert_false(in_table(gsi));
	assert_int_equal(kvmkit_msi_signal(m), 0);
	assert_int_equal(kvmkit_msi_mask(m, false), 0);
	assert_true(in_table(gsi));
	assert_int_equal(kvmkit_irq_gsi_stats(chip, gsi, &s), 0);
	assert_int_equal(s.irqfd_signals, 3);
	kvmkit_msi_close(m);
	assert_false(in_table(gsi));
	for (unsigned int i = 0; i < 16; i++)
		assert_false(fk.irqfd[i].used);
	/* Its GSI is free again. */
	assert_int_equal(kvmkit_gsi_alloc_msi(chip), (int)gsi);
}

static struct kvmkit_irqchip *new_chip(void)
{
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_irqchip *chip;

	kvmkit_irqchip_config_init(&cfg);
	assert_int_equal(kvmk_irqchip_new(NULL, &fake_ops, &cfg, FAKE_CAPACITY, &chip), 0);
	return chip;
}

static void test_save_restore(void **state)
{
	struct kvmkit_irqchip *chip = *state, *b;
	void *buf, *buf2;
	size_t len, len2;
	int g;

	g = kvmkit_gsi_alloc_msi(chip);
	assert_int_equal(kvmkit_irq_route_msi(chip, (uint32_t)g, 0xfee01000, 0x51, -1), 0);
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 3, 0, 7), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_gsi_alloc_line(chip), 4);
	fk.line_calls = 1234;
	assert_int_equal(kvmkit_irqchip_save(chip, &buf, &len), 0);

	/* Into a fresh chip: the same table reaches its controller, the
	 * allocator and the registers come back, and it saves the same. */
	b = new_chip();
	fk.line_calls = 0;
	assert_int_equal(kvmkit_irqchip_restore(b, buf, len), 0);
	assert_int_equal(fk.line_calls, 1234);
	assert_true(in_table((uint32_t)g));
	assert_int_equal(kvmkit_irq_route_count(b, (uint32_t)g), 1);
	assert_int_equal(kvmkit_gsi_alloc_msi(b), g + 1);
	assert_int_equal(kvmkit_gsi_alloc_line(b), 5);
	assert_int_equal(kvmkit_gsi_free(b, (uint32_t)g + 1), 0);
	assert_int_equal(kvmkit_gsi_free(b, 5), 0);
	assert_int_equal(kvmkit_irqchip_save(b, &buf2, &len2), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(buf2, buf, len);
	free(buf2);
	kvmk_irqchip_free(b);
	free(buf);
}

/* Every truncation and a corrupted byte anywhere are refused, and the chip
 * (its table, the controller's table, its registers) is left as it was. */
static void test_restore_hostile(void **state)
{
	struct kvmkit_irqchip *chip = *state, *b;
	unsigned int ntable;
	uint8_t *bad;
	void *buf;
	size_t len;

	assert_int_equal(kvmkit_irq_route_msi(chip, 40, 0xfee00000, 0x41, -1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irqchip_save(chip, &buf, &len), 0);
	b = new_chip();
	ntable = fk.ntable;
	fk.line_calls = 77;
	for (size_t cut = 0; cut < len; cut++) {
		assert_true(kvmkit_irqchip_restore(b, buf, cut) < 0);
		assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_FORMAT);
	}
	assert_int_equal(kvmkit_irq_route_count(b, 40), 0);
	assert_int_equal(fk.line_calls, 77);
	bad = malloc(len + 1);
	memcpy(bad, buf, len);
	bad[len] = 0;
	assert_int_equal(kvmkit_irqchip_restore(b, bad, len + 1), -ENOEXEC); /* trailing byte */
	memcpy(bad, buf, len);
	bad[0] ^= 1; /* magic */
	assert_int_equal(kvmkit_irqchip_restore(b, bad, len), -ENOEXEC);
	memcpy(bad, buf, len);
	bad[4] = 9; /* version */
	assert_int_equal(kvmkit_irqchip_restore(b, bad, len), -ENOEXEC);
	memcpy(bad, buf, len);
	bad[8] = 1; /* mode: split */
	assert_int_equal(kvmkit_irqchip_restore(b, bad, len), -ENOEXEC);
	memcpy(bad, buf, len);
	bad[12] = 0xff; /* route count past the capacity */
	assert_int_equal(kvmkit_irqchip_restore(b, bad, len), -ENOEXEC);
	memcpy(bad, buf, len);
	bad[16 + 4] = 7; /* first route's type */
	assert_int_equal(kvmkit_irqchip_restore(b, bad, len), -ENOEXEC);
	memcpy(bad, buf, len);
	bad[16 + 12] = 1; /* first route (irqchip): chip 1 does not exist */
	assert_int_equal(kvmkit_irqchip_restore(b, bad, len), -EINVAL);
	memcpy(bad, buf, len);
	bad[16 + 1] = 0x10; /* first route's gsi: 4096 */
	assert_int_equal(kvmkit_irqchip_restore(b, bad, len), -ENOEXEC);
	assert_int_equal(fk.ntable, ntable);
	assert_int_equal(kvmkit_irq_route_count(b, 40), 0);
	/* The controller refuses its registers: the table is put back. */
	memcpy(bad, buf, len);
	memcpy(bad + len - 4, &(uint32_t){ 0xdead }, 4);
	assert_int_equal(kvmkit_irqchip_restore(b, bad, len), -ENOEXEC);
	assert_int_equal(kvmkit_irq_route_count(b, 40), 0);
	assert_false(in_table(40));
	assert_int_equal(fk.line_calls, 77);
	/* Not into a chip with irqfds bound. */
	assert_int_equal(kvmkit_irqfd_bind(b, 3, 60, -1), 0);
	assert_int_equal(kvmkit_irqchip_restore(b, buf, len), -EBUSY);
	assert_int_equal(kvmkit_irqfd_unbind(b, 3, 60), 0);
	assert_int_equal(kvmkit_irqchip_restore(b, buf, len), 0);
	assert_int_equal(kvmkit_irq_route_count(b, 40), 1);
	free(bad);
	free(buf);
	kvmk_irqchip_free(b);
}

/* A removal staged while no irqfd was bound must not reach the controller
 * once one is: the commit is refused (the fake asserts the rule). */
static void test_commit_keeps_bound_routes(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	uint32_t gsi = (uint32_t)kvmkit_gsi_alloc_msi(chip);

	assert_int_equal(kvmkit_irq_route_msi(chip, gsi, 0xfee00000, 0x45, -1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irq_route_remove(chip, gsi), 0);
	/* The committed route is still there, so the bind is allowed. */
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, 50, -1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), -EBUSY);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_STATE);
	assert_true(in_table(gsi));
	assert_int_equal(kvmkit_irq_route_count(chip, gsi), 1);
	/* Rolled back: the next commit keeps the route. */
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_true(in_table(gsi));
	/* In the right order it goes. */
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, 50), 0);
	assert_int_equal(kvmkit_irq_route_remove(chip, gsi), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_false(in_table(gsi));
}

/* An unbind of a pair that is not bound is refused before the back end
 * hears of it (KVM's own deassign succeeds, as this fake's does here), and
 * an irqfd unbound twice does not take another's count. */
static void test_unbind_unknown(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	uint32_t gsi = (uint32_t)kvmkit_gsi_alloc_msi(chip);

	fk.kvm_deassign = true;

	assert_int_equal(kvmkit_irq_route_msi(chip, gsi, 0xfee00000, 0x45, -1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, 50, -1), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, 51, -1), 0);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, 50), 0);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, 50), -ENOENT);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi + 1, 51), -ENOENT);
	assert_int_equal(kvmkit_irq_route_remove(chip, gsi), -EBUSY);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, 51), 0);
	assert_int_equal(kvmkit_irq_route_remove(chip, gsi), 0);
}

/* A vector whose route was committed but whose irqfd could not be bound
 * leaves no route behind when it is closed. */
static void test_msi_failed_bind(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_msi *m;
	uint32_t gsi;

	assert_int_equal(kvmkit_msi_open(chip, &m), 0);
	gsi = kvmkit_msi_gsi(m);
	fk.fail_bind = true;
	assert_int_equal(kvmkit_msi_configure(m, 0xfee01000, 0x33, -1), -EMFILE);
	fk.fail_bind = false;
	kvmkit_msi_close(m);
	assert_false(in_table(gsi));
	assert_int_equal(kvmkit_irq_route_count(chip, gsi), 0);
}

/* Handles still open when the irqchip goes (with its VM) are orphaned, not
 * left pointing at freed memory: their calls fail and closing them only
 * frees them (ASan and valgrind check the "only"). */
static void test_handles_outlive_chip(void **state)
{
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_irqchip *chip;
	struct kvmkit_line *l;
	struct kvmkit_msi *m;

	memset(&fk, 0, sizeof(fk));
	kvmkit_irqchip_config_init(&cfg);
	assert_int_equal(kvmk_irqchip_new(NULL, &fake_ops, &cfg, FAKE_CAPACITY, &chip), 0);
	assert_int_equal(kvmkit_line_open(chip, 6, &l), 0);
	fk.next_status = 1;
	assert_int_equal(kvmkit_line_set(l, true, NULL), 0);
	assert_int_equal(kvmkit_msi_open(chip, &m), 0);
	assert_int_equal(kvmkit_msi_configure(m, 0xfee01000, 0x33, -1), 0);
	kvmk_irqchip_free(chip);
	fk.line_calls = 0;
	assert_int_equal(kvmkit_line_set(l, false, NULL), -EBUSY);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_STATE);
	assert_int_equal(kvmkit_line_pulse(l, NULL), -EBUSY);
	assert_int_equal(kvmkit_msi_signal(m), -EBUSY);
	assert_int_equal(kvmkit_msi_mask(m, true), -EBUSY);
	assert_int_equal(kvmkit_msi_configure(m, 0xfee01000, 0x34, -1), -EBUSY);
	kvmkit_line_close(l);
	kvmkit_msi_close(m);
	assert_int_equal(fk.line_calls, 0);
}

/* kvmkit_irqfd_signal(): the back end may serve a signal itself (no
 * eventfd write); otherwise the eventfd is written. Both are counted. */
static void test_irqfd_signal(void **state)
{
	struct kvmkit_irqchip *chip = *state;
	struct kvmkit_gsi_stats s;
	int kfd = eventfd(0, EFD_NONBLOCK), ufd = eventfd(0, EFD_NONBLOCK);
	int rfd = eventfd(0, EFD_NONBLOCK), lone = eventfd(0, EFD_NONBLOCK);
	uint64_t v;

	assert_true(kfd >= 0 && ufd >= 0 && rfd >= 0 && lone >= 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, 3, kfd, -1), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, 3, ufd, rfd), 0);
	assert_int_equal(kvmkit_irqfd_signal(chip, 3, kfd), 0);
	assert_int_equal(read(kfd, &v, 8), 8);
	assert_int_equal(kvmkit_irqfd_signal(chip, 3, ufd), 0);
	assert_int_equal(read(ufd, &v, 8), -1); /* served, not written */
	assert_int_equal(fk.direct_signals, 1);
	assert_int_equal(kvmkit_irqfd_signal(chip, 3, lone), 0); /* not bound: written */
	assert_int_equal(read(lone, &v, 8), 8);
	assert_int_equal(kvmkit_irq_gsi_stats(chip, 3, &s), 0);
	assert_int_equal(s.irqfd_signals, 3);
	assert_int_equal(kvmkit_irqfd_unbind(chip, 3, kfd), 0);
	assert_int_equal(kvmkit_irqfd_unbind(chip, 3, ufd), 0);
	close(kfd);
	close(ufd);
	close(rfd);
	close(lone);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_then_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allocator, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_pin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_platform_pin, setup_platform_pins,
						teardown_platform_pins),
		cmocka_unit_test_setup_teardown(test_alloc_pin_lines, setup_pins_are_lines,
						teardown_pins_are_lines),
		cmocka_unit_test_setup_teardown(test_irqfd_ordering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_status_and_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lines_wired_or, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_force, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msi_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restore_hostile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_keeps_bound_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unbind_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msi_failed_bind, setup, teardown),
		cmocka_unit_test(test_handles_outlive_chip),
		cmocka_unit_test_setup_teardown(test_irqfd_signal, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
