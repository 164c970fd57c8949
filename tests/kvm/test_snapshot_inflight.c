// SPDX-License-Identifier: MIT
/*
 * Interrupts in flight across a snapshot restored in a new process (issue
 * 12), in both irqchip modes, on the irq_lab guest:
 *  - an IOAPIC level entry in service (remote IRR set, EOI deferred) keeps
 *    remote IRR: the restored guest reads it back through the IOAPIC's
 *    registers, and after its EOI the line, still asserted, is delivered
 *    again exactly once, or, lowered before the snapshot, never again;
 *  - an MSI pending in the LAPIC IRR (interrupts disabled, or its vector
 *    behind a higher-priority one in service) is delivered exactly once;
 *    the same for an MSI signalled through an irqfd.
 *
 * Each case runs in two processes (restore_proc.h): this one brings the
 * interrupt in flight and snapshots the machine; a new one restores it and
 * checks what the guest sees.
 *
 * The test_held_* cases keep a vector in the LAPIC ISR across the snapshot;
 * KVM-PVM does not (PVM_NO_LAPIC_ISR): they have their own meson entry,
 * skipped there, and pass in the emulated x86 host.
 */
#include <poll.h>
#include <sys/eventfd.h>

#include "restore_proc.h"

#define V_LEVEL 0x46 /* the level pin's vector */
#define V_MSI 0x52 /* the pending MSI's vector */
#define V_HIGH 0x91 /* the in-service vector the MSI waits behind */
#define LAPIC_EOI_TARGET GUEST_LAB_EOI_TO_LAPIC
#define LAPIC_ISR 0x100
#define LAPIC_IRR 0x200

/* An EOI the IOAPIC heard clears remote IRR before the guest's next read
 * (the EOI exit is served before the vCPU runs again): one read normally
 * suffices, a lost EOI exhausts the bound. */
#define POLL_READS 2000

static uint64_t msi_addr(unsigned int dest)
{
	return 0xfee00000ull | (uint64_t)dest << 12;
}

/* The guest's view of one LAPIC ISR/IRR bit (@base: LAPIC_ISR, LAPIC_IRR). */
static bool lapic_bit(struct lab *l, uint32_t base, unsigned int vector)
{
	uint64_t v = lab_cmd(l, 0, GUEST_LAB_LAPIC_READ, base + 0x10 * (vector / 32), 0, 0);

	return v >> (vector % 32) & 1;
}

static uint64_t entry(struct lab *l, int pin)
{
	return lab_cmd(l, 0, GUEST_LAB_IOAPIC_READ, (uint64_t)pin, 0, 0);
}

static void set_line(struct lab *l, int gsi, bool level)
{
	struct kvmkit_irq_status st;

	assert_int_equal(kvmkit_irq_line(l->chip, (uint32_t)gsi, level, &st), 0);
}

/* ---- the cases: before (this process) and after (the restored one) ------ */

/* GSI of the level pin and of the MSI route: the first of each the
 * allocator hands out (its state is part of the snapshot). */
static int pin_gsi = 16, msi_gsi = 24;

/* A level interrupt taken, its EOI deferred: remote IRR set. */
static void level_in_service(struct lab *l)
{
	lab_cmd(l, 0, GUEST_LAB_LAPIC_ENABLE, 0, 0, 0);
	lab_cmd(l, 0, GUEST_LAB_STI, 0, 0, 0);
	pin_gsi = kvmkit_gsi_alloc_line(l->chip);
	assert_int_equal(pin_gsi, 16);
	lab_cmd(l, 0, GUEST_LAB_EOI_MODE, V_LEVEL, GUEST_LAB_EOI_DEFERRED, LAPIC_EOI_TARGET);
	lab_cmd(l, 0, GUEST_LAB_IOAPIC_WRITE, (uint64_t)pin_gsi, rte(V_LEVEL, 0, true), 0);
	assert_int_equal(irq_assert(l->chip, (uint32_t)pin_gsi), 1);
	lab_expect_count(l, 0, V_LEVEL, 1);
	assert_int_equal(entry(l, pin_gsi), rte(V_LEVEL, 0, true) | RTE_REMOTE_IRR);
	assert_true(lapic_bit(l, LAPIC_ISR, V_LEVEL));
}

static void before_irr_asserted(struct lab *l)
{
	level_in_service(l);
}

static void before_irr_lowered(struct lab *l)
{
	level_in_service(l);
	set_line(l, pin_gsi, false);
	assert_int_equal(entry(l, pin_gsi), rte(V_LEVEL, 0, true) | RTE_REMOTE_IRR);
}

/* What the restored guest sees first: remote IRR kept, the vector still in
 * service, nothing delivered again by the restore itself. */
static void still_in_service(struct lab *r)
{
	lab_expect_count(r, 0, V_LEVEL, 1);
	assert_int_equal(entry(r, pin_gsi), rte(V_LEVEL, 0, true) | RTE_REMOTE_IRR);
	assert_true(lapic_bit(r, LAPIC_ISR, V_LEVEL));
}

/* The guest polled the pin: remote IRR clear, the entry otherwise @want. */
static void irr_clear(struct lab *r, uint64_t want)
{
	struct lab_poll p = lab_poll_irr(r, 0, (unsigned int)pin_gsi, POLL_READS);

	if (p.low & RTE_REMOTE_IRR)
		fail_msg("remote IRR still set after %u reads (entry 0x%08x): the EOI never "
			 "reached the IOAPIC",
			 p.reads, p.low);
	assert_int_equal(p.low, (uint32_t)want);
}

/* The pin works as before: one more assertion, one more interrupt. */
static void pin_works(struct lab *r, uint32_t count)
{
	assert_int_equal(irq_assert(r->chip, (uint32_t)pin_gsi), 1);
	lab_expect_count(r, 0, V_LEVEL, count + 1);
	set_line(r, pin_gsi, false);
	lab_cmd(r, 0, GUEST_LAB_EOI, LAPIC_EOI_TARGET, 0, 0);
	irr_clear(r, rte(V_LEVEL, 0, true));
	lab_expect_count(r, 0, V_LEVEL, count + 1);
}

static void after_irr_asserted(struct lab *r)
{
	still_in_service(r);
	/* The EOI ends the service; the line is still up: once more. */
	lab_cmd(r, 0, GUEST_LAB_EOI, LAPIC_EOI_TARGET, 0, 0);
	lab_expect_count(r, 0, V_LEVEL, 2);
	assert_int_equal(entry(r, pin_gsi), rte(V_LEVEL, 0, true) | RTE_REMOTE_IRR);
	/* Lowered, then EOI'd: nothing more. */
	set_line(r, pin_gsi, false);
	lab_cmd(r, 0, GUEST_LAB_EOI, LAPIC_EOI_TARGET, 0, 0);
	irr_clear(r, rte(V_LEVEL, 0, true));
	lab_expect_count(r, 0, V_LEVEL, 2);
	pin_works(r, 2);
}

static void after_irr_lowered(struct lab *r)
{
	still_in_service(r);
	lab_cmd(r, 0, GUEST_LAB_EOI, LAPIC_EOI_TARGET, 0, 0);
	irr_clear(r, rte(V_LEVEL, 0, true));
	lab_expect_count(r, 0, V_LEVEL, 1);
	pin_works(r, 1);
}

/*
 * Split mode: the guest re-vectors the entry in service (V_LEVEL to
 * V_LEVEL2) before the snapshot. The EOI that ends the service is V_LEVEL's,
 * the vector that was sent: kvmkit's IOAPIC keeps that message (its EOI
 * route, ioapic.h) and so must the snapshot, or the restored KVM never
 * exits on V_LEVEL's EOI and remote IRR stays set for good. (KVM's own
 * IOAPIC matches an EOI against the entry's current vector, with or
 * without a snapshot, so kernel mode has no such case.)
 */
#define V_LEVEL2 0x47

static void before_irr_revectored(struct lab *l)
{
	level_in_service(l);
	lab_cmd(l, 0, GUEST_LAB_EOI_MODE, V_LEVEL2, GUEST_LAB_EOI_DEFERRED, LAPIC_EOI_TARGET);
	lab_cmd(l, 0, GUEST_LAB_IOAPIC_WRITE, (uint64_t)pin_gsi, rte(V_LEVEL2, 0, true), 0);
	assert_int_equal(entry(l, pin_gsi), rte(V_LEVEL2, 0, true) | RTE_REMOTE_IRR);
}

static void after_irr_revectored(struct lab *r)
{
	lab_expect_count(r, 0, V_LEVEL, 1);
	assert_int_equal(entry(r, pin_gsi), rte(V_LEVEL2, 0, true) | RTE_REMOTE_IRR);
	assert_true(lapic_bit(r, LAPIC_ISR, V_LEVEL));
	/* V_LEVEL's EOI ends the service; the line is up: once, as V_LEVEL2. */
	lab_cmd(r, 0, GUEST_LAB_EOI, LAPIC_EOI_TARGET, 0, 0);
	lab_expect_count(r, 0, V_LEVEL2, 1);
	lab_expect_count(r, 0, V_LEVEL, 1);
	assert_int_equal(entry(r, pin_gsi), rte(V_LEVEL2, 0, true) | RTE_REMOTE_IRR);
	set_line(r, pin_gsi, false);
	lab_cmd(r, 0, GUEST_LAB_EOI, LAPIC_EOI_TARGET, 0, 0);
	irr_clear(r, rte(V_LEVEL2, 0, true));
	lab_expect_count(r, 0, V_LEVEL2, 1);
	assert_int_equal(lab_total(r, 0), 2);
}

/*
 * A level irqfd with a resamplefd asserts the pin; its interrupt is in
 * service at the snapshot. Irqfds are not in a snapshot: the restored
 * machine's owner binds its own on the same GSI, and the guest's EOI must
 * then do what it does for a bound level irqfd: lower the line and signal
 * the resamplefd, not deliver the stale level again.
 */
static int resample_wait(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, 10000) != 1)
		return -1;
	return read(fd, &v, 8) == 8 ? (int)v : -1;
}

static int kept[4], nkept;

static void before_irqfd_level(struct lab *l)
{
	int efd = eventfd(0, EFD_CLOEXEC), rfd = eventfd(0, EFD_CLOEXEC);
	uint64_t one = 1;

	lab_cmd(l, 0, GUEST_LAB_LAPIC_ENABLE, 0, 0, 0);
	lab_cmd(l, 0, GUEST_LAB_STI, 0, 0, 0);
	pin_gsi = kvmkit_gsi_alloc_line(l->chip);
	assert_int_equal(pin_gsi, 16);
	lab_cmd(l, 0, GUEST_LAB_EOI_MODE, V_LEVEL, GUEST_LAB_EOI_DEFERRED, LAPIC_EOI_TARGET);
	lab_cmd(l, 0, GUEST_LAB_IOAPIC_WRITE, (uint64_t)pin_gsi, rte(V_LEVEL, 0, true), 0);
	assert_int_equal(kvmkit_irqfd_bind(l->chip, (uint32_t)pin_gsi, efd, rfd), 0);
	assert_int_equal(write(efd, &one, 8), 8);
	lab_expect_count(l, 0, V_LEVEL, 1);
	assert_int_equal(entry(l, pin_gsi), rte(V_LEVEL, 0, true) | RTE_REMOTE_IRR);
	/* Snapshotted with the irqfd bound, as a running VMM's would be; its
	 * fds are closed once the machine is gone. */
	assert_true(nkept + 2 <= 4);
	kept[nkept++] = efd;
	kept[nkept++] = rfd;
}

static void after_irqfd_level(struct lab *r)
{
	int efd = eventfd(0, EFD_CLOEXEC), rfd = eventfd(0, EFD_CLOEXEC);
	uint64_t one = 1;

	assert_int_equal(kvmkit_irqfd_bind(r->chip, (uint32_t)pin_gsi, efd, rfd), 0);
	still_in_service(r);
	lab_cmd(r, 0, GUEST_LAB_EOI, LAPIC_EOI_TARGET, 0, 0);
	if (resample_wait(rfd) != 1)
		fail_msg("the EOI of the level irqfd's interrupt never reached its resamplefd");
	irr_clear(r, rte(V_LEVEL, 0, true));
	lab_expect_count(r, 0, V_LEVEL, 1);
	/* The device asks again: once more, resampled at its EOI. */
	assert_int_equal(write(efd, &one, 8), 8);
	lab_expect_count(r, 0, V_LEVEL, 2);
	lab_cmd(r, 0, GUEST_LAB_EOI, LAPIC_EOI_TARGET, 0, 0);
	assert_int_equal(resample_wait(rfd), 1);
	irr_clear(r, rte(V_LEVEL, 0, true));
	lab_expect_count(r, 0, V_LEVEL, 2);
	assert_int_equal(kvmkit_irqfd_unbind(r->chip, (uint32_t)pin_gsi, efd), 0);
	close(efd);
	close(rfd);
}

/* An MSI accepted by the LAPIC while the guest has IF = 0: pending in IRR. */
static void before_msi_cli(struct lab *l)
{
	lab_cmd(l, 0, GUEST_LAB_LAPIC_ENABLE, 0, 0, 0);
	assert_int_equal(msi_send(l->chip, msi_addr(0), V_MSI), 1);
	assert_true(lapic_bit(l, LAPIC_IRR, V_MSI));
	lab_expect_count(l, 0, V_MSI, 0);
}

/* Pending at the restore; taken once the guest enables interrupts, once. */
static void after_msi_cli(struct lab *r)
{
	assert_true(lapic_bit(r, LAPIC_IRR, V_MSI));
	lab_expect_count(r, 0, V_MSI, 0);
	lab_cmd(r, 0, GUEST_LAB_STI, 0, 0, 0);
	lab_expect_count(r, 0, V_MSI, 1);
	assert_false(lapic_bit(r, LAPIC_IRR, V_MSI));
	/* And the vector works as before. */
	assert_int_equal(msi_send(r->chip, msi_addr(0), V_MSI), 1);
	lab_expect_count(r, 0, V_MSI, 2);
	assert_int_equal(lab_total(r, 0), 2);
}

/* The same MSI through an MSI route and an irqfd. The eventfd write is
 * injected by KVM on its own time: wait (bounded) until the guest sees the
 * vector pending. */
static void before_msi_irqfd(struct lab *l)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t one = 1;

	assert_true(efd >= 0);
	lab_cmd(l, 0, GUEST_LAB_LAPIC_ENABLE, 0, 0, 0);
	msi_gsi = kvmkit_gsi_alloc_msi(l->chip);
	assert_true(msi_gsi >= 24);
	assert_int_equal(kvmkit_irq_route_msi(l->chip, (uint32_t)msi_gsi, msi_addr(0), V_MSI, -1),
			 0);
	assert_int_equal(kvmkit_irq_routes_commit(l->chip), 0);
	assert_int_equal(kvmkit_irqfd_bind(l->chip, (uint32_t)msi_gsi, efd, -1), 0);
	assert_int_equal(write(efd, &one, 8), 8);
	for (int i = 0; !lapic_bit(l, LAPIC_IRR, V_MSI); i++)
		if (i > GUEST_WATCHDOG_MS)
			fail_msg("the irqfd's MSI never reached the LAPIC IRR");
		else
			usleep(1000);
	lab_expect_count(l, 0, V_MSI, 0);
	/* A snapshot holds no irqfds (the restored machine's owner binds its
	 * own); the MSI it sent stays pending in the LAPIC. */
	assert_int_equal(kvmkit_irqfd_unbind(l->chip, (uint32_t)msi_gsi, efd), 0);
	close(efd);
	assert_true(lapic_bit(l, LAPIC_IRR, V_MSI));
}

static void after_msi_irqfd(struct lab *r)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t one = 1;

	assert_true(efd >= 0);
	assert_true(lapic_bit(r, LAPIC_IRR, V_MSI));
	lab_expect_count(r, 0, V_MSI, 0);
	lab_cmd(r, 0, GUEST_LAB_STI, 0, 0, 0);
	lab_expect_count(r, 0, V_MSI, 1);
	/* The MSI route came back with the irqchip: a new irqfd on it works. */
	assert_int_equal(kvmkit_irq_route_count(r->chip, (uint32_t)msi_gsi), 1);
	assert_int_equal(kvmkit_irqfd_bind(r->chip, (uint32_t)msi_gsi, efd, -1), 0);
	assert_int_equal(write(efd, &one, 8), 8);
	lab_expect_count(r, 0, V_MSI, 2);
	assert_int_equal(lab_total(r, 0), 2);
	assert_int_equal(kvmkit_irqfd_unbind(r->chip, (uint32_t)msi_gsi, efd), 0);
	close(efd);
}

/* The MSI waits behind a higher-priority vector in service (EOI deferred). */
static void before_msi_behind(struct lab *l)
{
	lab_cmd(l, 0, GUEST_LAB_LAPIC_ENABLE, 0, 0, 0);
	lab_cmd(l, 0, GUEST_LAB_STI, 0, 0, 0);
	lab_cmd(l, 0, GUEST_LAB_EOI_MODE, V_HIGH, GUEST_LAB_EOI_DEFERRED, LAPIC_EOI_TARGET);
	assert_int_equal(msi_send(l->chip, msi_addr(0), V_HIGH), 1);
	lab_expect_count(l, 0, V_HIGH, 1);
	assert_int_equal(msi_send(l->chip, msi_addr(0), V_MSI), 1);
	lab_expect_count(l, 0, V_MSI, 0);
	assert_true(lapic_bit(l, LAPIC_IRR, V_MSI));
	assert_true(lapic_bit(l, LAPIC_ISR, V_HIGH));
}

static void after_msi_behind(struct lab *r)
{
	assert_true(lapic_bit(r, LAPIC_IRR, V_MSI));
	assert_true(lapic_bit(r, LAPIC_ISR, V_HIGH));
	lab_expect_count(r, 0, V_MSI, 0);
	lab_expect_count(r, 0, V_HIGH, 1);
	/* The EOI of the higher one lets it through, once. */
	lab_cmd(r, 0, GUEST_LAB_EOI, LAPIC_EOI_TARGET, 0, 0);
	lab_expect_count(r, 0, V_MSI, 1);
	lab_expect_count(r, 0, V_HIGH, 1);
	assert_false(lapic_bit(r, LAPIC_IRR, V_MSI));
	assert_false(lapic_bit(r, LAPIC_ISR, V_HIGH));
	assert_int_equal(lab_total(r, 0), 2);
}

static const struct proc_case cases[] = {
	{ "irr-asserted", before_irr_asserted, after_irr_asserted },
	{ "irr-lowered", before_irr_lowered, after_irr_lowered },
	{ "msi-cli", before_msi_cli, after_msi_cli },
	{ "msi-irqfd", before_msi_irqfd, after_msi_irqfd },
	{ "msi-behind", before_msi_behind, after_msi_behind },
	{ "irr-revectored", before_irr_revectored, after_irr_revectored },
	{ "irqfd-level", before_irqfd_level, after_irqfd_level },
};

static void both_modes(const struct proc_case *c)
{
	proc_run_case(c, KVMKIT_IRQCHIP_KERNEL);
	proc_run_case(c, KVMKIT_IRQCHIP_SPLIT);
}

static void test_held_irr_asserted(void **state)
{
	host_quirk(host_is_kvm_pvm(), PVM_NO_LAPIC_ISR);
	both_modes(&cases[0]);
}

static void test_held_irr_lowered(void **state)
{
	host_quirk(host_is_kvm_pvm(), PVM_NO_LAPIC_ISR);
	both_modes(&cases[1]);
}

static void test_pending_msi_cli(void **state)
{
	both_modes(&cases[2]);
}

static void test_pending_msi_irqfd(void **state)
{
	both_modes(&cases[3]);
}

static void test_held_msi_behind(void **state)
{
	host_quirk(host_is_kvm_pvm(), PVM_NO_LAPIC_ISR);
	both_modes(&cases[4]);
}

static void test_held_irr_revectored(void **state)
{
	host_quirk(host_is_kvm_pvm(), PVM_NO_LAPIC_ISR);
	proc_run_case(&cases[5], KVMKIT_IRQCHIP_SPLIT);
}

static void test_held_irqfd_level(void **state)
{
	host_quirk(host_is_kvm_pvm(), PVM_NO_LAPIC_ISR);
	both_modes(&cases[6]);
	while (nkept)
		close(kept[--nkept]);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pending_msi_cli),
		cmocka_unit_test(test_pending_msi_irqfd),
		cmocka_unit_test(test_held_irr_asserted),
		cmocka_unit_test(test_held_irr_lowered),
		cmocka_unit_test(test_held_msi_behind),
		cmocka_unit_test(test_held_irr_revectored),
		cmocka_unit_test(test_held_irqfd_level),
	};

	return proc_test_main(argc, argv, cases, "snapshot_inflight", tests);
}
