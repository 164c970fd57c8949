// SPDX-License-Identifier: MIT
/* The interrupt subsystem's API against a real in-kernel irqchip, and
 * ioeventfd verified by a guest's writes. */
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>

#include "kvm_test.h"

static struct kvmkit_vm *new_vm(unsigned int vcpus)
{
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm = NULL;

	kvmkit_vm_config_init(&cfg);
	cfg.vcpus = vcpus;
	cfg.mem_size = 16 << 20;
	if (kvmkit_vm_create(&cfg, &vm))
		fail_msg("vm_create: %s", kvmkit_strerror());
	return vm;
}

static void test_create_order(void **state)
{
	struct kvmkit_vm *vm = new_vm(1);
	struct kvmkit_irqchip *chip;

	/* After a vCPU exists: an invalid-state error naming the reason. */
	assert_int_equal(kvmkit_vm_create_vcpu(vm, 0, NULL), 0);
	assert_int_equal(kvmkit_irqchip_create(vm, NULL, &chip), -EBUSY);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_STATE);
	assert_non_null(strstr(kvmkit_strerror(), "vCPU"));
	assert_null(kvmkit_vm_irqchip(vm));
	kvmkit_vm_destroy(vm);

	vm = new_vm(1);
	assert_int_equal(kvmkit_irqchip_create(vm, NULL, &chip), 0);
	assert_ptr_equal(kvmkit_vm_irqchip(vm), chip);
	assert_int_equal(kvmkit_irqchip_pins(chip), 24);
	assert_true(kvmkit_irqchip_route_capacity(chip) >= 24);
	/* Twice: refused. */
	assert_int_equal(kvmkit_irqchip_create(vm, NULL, NULL), -EBUSY);
	/* The default table: 0-15 on PIC and IOAPIC, 16-23 on the IOAPIC. */
	assert_int_equal(kvmkit_irq_route_count(chip, 4), 2);
	assert_int_equal(kvmkit_irq_route_count(chip, 20), 1);
	assert_int_equal(kvmkit_irq_route_count(chip, 24), 0);
	kvmkit_vm_destroy(vm);
}

static void test_routing_and_allocator(void **state)
{
	struct kvmkit_vm *vm = new_vm(1);
	struct kvmkit_irqchip *chip;
	int g[8], m1, m2;

	assert_int_equal(kvmkit_irqchip_create(vm, NULL, &chip), 0);
	/* Lines come from 16..23 only, then the allocator is exhausted. */
	for (int i = 0; i < 8; i++) {
		g[i] = kvmkit_gsi_alloc_line(chip);
		assert_int_equal(g[i], 16 + i);
	}
	assert_int_equal(kvmkit_gsi_alloc_line(chip), -ENOSPC);
	assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_RESOURCE);
	assert_int_equal(kvmkit_gsi_free(chip, 20), 0);
	assert_int_equal(kvmkit_gsi_free(chip, 20), -EINVAL);
	assert_int_equal(kvmkit_gsi_free(chip, 4), -EINVAL);
	assert_int_equal(kvmkit_gsi_alloc_line(chip), 20);
	m1 = kvmkit_gsi_alloc_msi(chip);
	m2 = kvmkit_gsi_alloc_msi(chip);
	assert_int_equal(m1, 24);
	assert_int_equal(m2, 25);

	/* Staged changes are invisible until commit. */
	assert_int_equal(kvmkit_irq_route_msi(chip, m1, 0xfee00000, 0x40, -1), 0);
	assert_int_equal(kvmkit_irq_route_count(chip, m1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irq_route_count(chip, m1), 1);
	/* The commit re-sent the default routes too. */
	assert_int_equal(kvmkit_irq_route_count(chip, 4), 2);
	/* Re-routing a line to an MSI replaces its irqchip entries. */
	assert_int_equal(kvmkit_irq_route_msi(chip, 4, 0xfee00000, 0x41, -1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irq_route_count(chip, 4), 1);
	/* And back to a pin. */
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 4, KVMKIT_IRQCHIP_IOAPIC, 4), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irq_route_count(chip, 4), 1);
	/* Bad parameters. */
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 5, 3, 0), -EINVAL);
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 5, KVMKIT_IRQCHIP_IOAPIC, 24), -EINVAL);
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 5, KVMKIT_IRQCHIP_PIC_MASTER, 8), -EINVAL);
	assert_int_equal(kvmkit_irq_route_msi(chip, KVMKIT_MAX_GSI, 0xfee00000, 0, -1), -EINVAL);
	kvmkit_vm_destroy(vm);
}

static void test_lines_and_msi(void **state)
{
	struct kvmkit_vm *vm = new_vm(1);
	struct kvmkit_irqchip *chip;
	struct kvmkit_gsi_stats st;
	struct kvmkit_irq_status ist = { KVMKIT_IRQ_DELIVERED, 7 };
	struct kvmkit_line *line;

	assert_int_equal(kvmkit_irqchip_create(vm, NULL, &chip), 0);
	assert_int_equal(kvmkit_vm_create_vcpu(vm, 0, NULL), 0);
	/* IOAPIC pins are masked at reset: the kernel says "not delivered". */
	assert_int_equal(kvmkit_irq_line(chip, 20, true, &ist), 0);
	assert_int_equal(ist.result, KVMKIT_IRQ_MASKED);
	assert_int_equal(ist.cpus, 0);
	assert_int_equal(kvmkit_irq_line(chip, 20, false, &ist), 0);
	assert_int_equal(ist.result, KVMKIT_IRQ_NONE);
	ist.result = KVMKIT_IRQ_DELIVERED;
	assert_int_equal(kvmkit_irq_pulse(chip, 21, &ist), 0);
	assert_int_equal(ist.result, KVMKIT_IRQ_MASKED);
	assert_int_equal(kvmkit_irq_gsi_stats(chip, 20, &st), 0);
	assert_int_equal(st.asserts, 1);
	assert_int_equal(st.masked, 1);
	assert_int_equal(st.deliveries, 0);
	/* A line handle only reaches the irqchip when its level changes. */
	assert_int_equal(kvmkit_line_open(chip, 22, &line), 0);
	assert_int_equal(kvmkit_line_gsi(line), 22);
	assert_int_equal(kvmkit_line_set(line, true, &ist), 0);
	assert_int_equal(ist.result, KVMKIT_IRQ_MASKED);
	assert_int_equal(kvmkit_line_set(line, true, &ist), 0);
	assert_int_equal(ist.result, KVMKIT_IRQ_NONE);
	assert_int_equal(kvmkit_irq_gsi_stats(chip, 22, &st), 0);
	assert_int_equal(st.asserts, 1);
	kvmkit_line_close(line); /* lowers it */
	assert_int_equal(kvmkit_line_open(chip, KVMKIT_MAX_GSI, &line), -EINVAL);
	/* An MSI to a LAPIC that the guest has not enabled is not delivered,
	 * but it is not an error either. */
	assert_int_equal(kvmkit_signal_msi(chip, 0xfee00000, 0x40, -1, &ist), 0);
	assert_true(ist.result == KVMKIT_IRQ_MASKED || ist.result == KVMKIT_IRQ_DELIVERED);
	kvmkit_vm_destroy(vm);
}

static void test_irqfd_ordering(void **state)
{
	struct kvmkit_vm *vm = new_vm(1);
	struct kvmkit_irqchip *chip;
	int efd = eventfd(0, EFD_CLOEXEC), rfd = eventfd(0, EFD_CLOEXEC);
	int gsi;

	assert_int_equal(kvmkit_irqchip_create(vm, NULL, &chip), 0);
	gsi = kvmkit_gsi_alloc_msi(chip);
	/* No route yet: refused (irqfds only after their route). */
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, efd, -1), -EBUSY);
	assert_int_equal(kvmkit_irq_route_msi(chip, gsi, 0xfee00000, 0x45, -1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, efd, -1), 0);
	/* The route cannot go while the irqfd is bound, nor the GSI be freed. */
	assert_int_equal(kvmkit_irq_route_remove(chip, gsi), -EBUSY);
	assert_int_equal(kvmkit_gsi_free(chip, gsi), -EBUSY);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, efd), 0);
	assert_int_equal(kvmkit_irq_route_remove(chip, gsi), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_gsi_free(chip, gsi), 0);
	/* A level irqfd with resample on an IOAPIC line. */
	gsi = kvmkit_gsi_alloc_line(chip);
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, efd, rfd), 0);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, efd), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, -1, -1), -EINVAL);
	kvmkit_vm_destroy(vm);
	close(efd);
	close(rfd);
}

/* KVM's deassign succeeds for an eventfd it does not have on that GSI, so
 * kvmkit must know its own bindings: an unbind of a pair that is not bound
 * (twice, or an fd never bound) is -ENOENT and leaves the count of the
 * irqfds still bound, which keeps their route and GSI. Both modes. */
static void check_unbind_unknown(enum kvmkit_irqchip_mode mode)
{
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_vm *vm = new_vm(1);
	struct kvmkit_irqchip *chip;
	struct kvmkit_gsi_stats st;
	int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC);
	int never = eventfd(0, EFD_CLOEXEC);
	int gsi;

	kvmkit_irqchip_config_init(&cfg);
	cfg.mode = mode;
	assert_int_equal(kvmkit_irqchip_create(vm, &cfg, &chip), 0);
	gsi = kvmkit_gsi_alloc_msi(chip);
	assert_int_equal(kvmkit_irq_route_msi(chip, gsi, 0xfee00000, 0x45, -1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, a, -1), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, b, -1), 0);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, a), 0);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, a), -ENOENT);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, never), -ENOENT);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi + 1, b), -ENOENT);
	/* b is still bound. */
	assert_int_equal(kvmkit_irq_gsi_stats(chip, gsi, &st), 0);
	assert_int_equal(st.irqfds_kernel + st.irqfds_thread, 1);
	assert_int_equal(kvmkit_irq_route_remove(chip, gsi), -EBUSY);
	assert_int_equal(kvmkit_gsi_free(chip, gsi), -EBUSY);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, b), 0);
	assert_int_equal(kvmkit_irq_route_remove(chip, gsi), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_gsi_free(chip, gsi), 0);
	kvmkit_vm_destroy(vm);
	close(a);
	close(b);
	close(never);
}

static void test_unbind_unknown(void **state)
{
	check_unbind_unknown(KVMKIT_IRQCHIP_KERNEL);
	check_unbind_unknown(KVMKIT_IRQCHIP_SPLIT);
}

static uint64_t efd_read(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, 8) != 8)
		return 0;
	return v;
}

struct seen {
	pthread_mutex_t lock;
	unsigned int pio_writes, mmio_writes;
	unsigned int pio_sizes; /* bit (size) set per PIO write size seen */
};

static void pio_w(void *o, uint64_t off, const void *d, unsigned int size)
{
	struct seen *s = o;

	pthread_mutex_lock(&s->lock);
	s->pio_writes++;
	s->pio_sizes |= 1u << size;
	pthread_mutex_unlock(&s->lock);
}

static void mmio_w(void *o, uint64_t off, const void *d, unsigned int size)
{
	struct seen *s = o;

	pthread_mutex_lock(&s->lock);
	s->mmio_writes++;
	pthread_mutex_unlock(&s->lock);
}

static void any_r(void *o, uint64_t off, void *d, unsigned int size)
{
	memset(d, 0, size);
}

static const struct kvmkit_io_ops pio_ops = { any_r, pio_w };
static const struct kvmkit_io_ops mmio_ops = { any_r, mmio_w };

/* The io_sizes guest writes port 0x700 with 1, 2 and 4 bytes and MMIO
 * 0xd0000000 with 1, 2, 4 and 8 bytes. An ioeventfd consumes the writes it
 * matches inside KVM: its eventfd counts them and the bus never sees them. */
static void test_ioeventfd_guest(void **state)
{
	struct kvmkit_machine *m = machine_for("io_sizes", 1, 64 << 20);
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct kvmkit_stop_info info;
	struct seen s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	int pio_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int mmio_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_int_equal(
		kvmkit_bus_register(kvmkit_vm_pio_bus(vm), GUEST_TEST_PORT, 4, "t", &pio_ops, &s),
		0);
	assert_int_equal(
		kvmkit_bus_register(kvmkit_vm_mmio_bus(vm), GUEST_TEST_MMIO, 8, "t", &mmio_ops, &s),
		0);
	/* PIO: 2-byte writes of exactly 0x2222 only. */
	assert_int_equal(kvmkit_ioeventfd_add(vm, GUEST_TEST_PORT, 2,
					      KVMKIT_IOEVENTFD_PIO | KVMKIT_IOEVENTFD_DATAMATCH,
					      GUEST_IO_PIO_W16, pio_fd),
			 0);
	/* MMIO: any length (0), where the host supports it; else 4 bytes. */
	bool any = kvmkit_vm_check_cap(vm, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0;

	assert_int_equal(kvmkit_ioeventfd_add(vm, GUEST_TEST_MMIO, any ? 0 : 4, 0, 0, mmio_fd), 0);
	/* Invalid requests. */
	assert_int_equal(kvmkit_ioeventfd_add(vm, 0x800, 3, KVMKIT_IOEVENTFD_PIO, 0, pio_fd),
			 -EINVAL);
	assert_int_equal(kvmkit_ioeventfd_add(vm, 0x800, 8, KVMKIT_IOEVENTFD_PIO, 0, pio_fd),
			 -EINVAL);
	assert_int_equal(kvmkit_ioeventfd_add(vm, 0x800, 0, KVMKIT_IOEVENTFD_DATAMATCH, 0, pio_fd),
			 -EINVAL);

	run_to_stop(m, &info);
	assert_int_equal(info.reason, KVMKIT_STOP_GUEST_EXIT);
	assert_int_equal(info.status, 0);
	assert_int_equal(efd_read(pio_fd), 1);
	assert_int_equal(s.pio_writes, 2);
	assert_int_equal(s.pio_sizes, (1u << 1) | (1u << 4));
	assert_int_equal(efd_read(mmio_fd), any ? 4 : 1);
	assert_int_equal(s.mmio_writes, any ? 0 : 3);
	assert_int_equal(kvmkit_ioeventfd_remove(vm, GUEST_TEST_PORT, 2,
						 KVMKIT_IOEVENTFD_PIO | KVMKIT_IOEVENTFD_DATAMATCH,
						 GUEST_IO_PIO_W16, pio_fd),
			 0);
	kvmkit_machine_destroy(m);
	close(pio_fd);
	close(mmio_fd);
}

/* Split irqchip: creation order, no PIC, the userspace IOAPIC at its
 * address, and lines reporting "masked" until the guest programs a pin. */
static void test_split_mode(void **state)
{
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_vm *vm = new_vm(1);
	struct kvmkit_irqchip *chip;
	uint32_t ver = 0, sel = 1;

	kvmkit_irqchip_config_init(&cfg);
	cfg.mode = KVMKIT_IRQCHIP_SPLIT;
	assert_int_equal(kvmkit_irqchip_create(vm, &cfg, &chip), 0);
	assert_int_equal(kvmkit_irqchip_mode(chip), KVMKIT_IRQCHIP_SPLIT);
	assert_string_equal(kvmkit_irqchip_mode_name(KVMKIT_IRQCHIP_SPLIT), "split");
	assert_int_equal(kvmkit_irqchip_create(vm, &cfg, NULL), -EBUSY);
	/* GSI 0-15 reach kvmkit's PIC and the IOAPIC, 16-23 the IOAPIC only. */
	assert_int_equal(kvmkit_irq_route_count(chip, 4), 2);
	assert_int_equal(kvmkit_irq_route_count(chip, 17), 1);
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 4, KVMKIT_IRQCHIP_PIC_MASTER, 4), 0);
	assert_string_equal(kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), 0x20), "pic-master");
	assert_string_equal(kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), 0xa1), "pic-slave");
	assert_string_equal(kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), 0x4d1), "pic-elcr");
	assert_string_equal(kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), 0x43), "pit");
	/* The IOAPIC answers on the MMIO bus: version register 0x00170011. */
	assert_string_equal(kvmkit_bus_lookup(kvmkit_vm_mmio_bus(vm), 0xfec00010), "ioapic");
	assert_true(kvmkit_bus_dispatch(kvmkit_vm_mmio_bus(vm), 0xfec00000, &sel, 4, true));
	assert_true(kvmkit_bus_dispatch(kvmkit_vm_mmio_bus(vm), 0xfec00010, &ver, 4, false));
	assert_int_equal(ver, 0x00170011);
	assert_int_equal(kvmkit_vm_create_vcpu(vm, 0, NULL), 0);
	{
		struct kvmkit_irq_status ist;

		assert_int_equal(kvmkit_irq_line(chip, 20, true, &ist), 0);
		assert_int_equal(ist.result, KVMKIT_IRQ_MASKED);
		assert_int_equal(kvmkit_irq_line(chip, 20, false, NULL), 0);
	}
	kvmkit_vm_destroy(vm);

	/* Without cfg.pic (and cfg.pit): the IOAPIC alone, the ports free. */
	vm = new_vm(1);
	cfg.pic = false;
	cfg.pit = false;
	assert_int_equal(kvmkit_irqchip_create(vm, &cfg, &chip), 0);
	assert_int_equal(kvmkit_irq_route_count(chip, 4), 1);
	assert_int_equal(kvmkit_irq_route_irqchip(chip, 4, KVMKIT_IRQCHIP_PIC_MASTER, 4), -ENOTSUP);
	assert_null(kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), 0x20));
	assert_null(kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), 0x40));
	kvmkit_vm_destroy(vm);

	/* After a vCPU exists split mode cannot be enabled either. */
	vm = new_vm(1);
	assert_int_equal(kvmkit_vm_create_vcpu(vm, 0, NULL), 0);
	assert_int_equal(kvmkit_irqchip_create(vm, &cfg, NULL), -EBUSY);
	kvmkit_vm_destroy(vm);
}

/* ---- save and restore ------------------------------------------------ */

static struct kvmkit_irqchip *chip_for(struct kvmkit_vm *vm, enum kvmkit_irqchip_mode mode,
				       bool pit)
{
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_irqchip *chip;

	kvmkit_irqchip_config_init(&cfg);
	cfg.mode = mode;
	cfg.pit = pit;
	assert_int_equal(kvmkit_irqchip_create(vm, &cfg, &chip), 0);
	return chip;
}

static void bus_w32(struct kvmkit_bus *bus, uint64_t addr, uint32_t v)
{
	assert_true(kvmkit_bus_dispatch(bus, addr, &v, 4, true));
}

static void bus_w8(struct kvmkit_bus *bus, uint64_t addr, uint8_t v)
{
	assert_true(kvmkit_bus_dispatch(bus, addr, &v, 1, true));
}

/* IOAPIC pin 5: vector 0x45, level, unmasked, to APIC 1; PIC master
 * initialised with vector base 0x30 and IMR 0xfb. Kernel mode through
 * KVM_SET_IRQCHIP, split mode through the models' registers, as a guest. */
static void program_chip(struct kvmkit_vm *vm, enum kvmkit_irqchip_mode mode)
{
	if (mode == KVMKIT_IRQCHIP_KERNEL) {
		struct kvm_irqchip c = { .chip_id = KVM_IRQCHIP_IOAPIC };

		assert_int_equal(ioctl(kvmkit_vm_fd(vm), KVM_GET_IRQCHIP, &c), 0);
		c.chip.ioapic.redirtbl[5].bits = 0x45 | (1ull << 15) | (1ull << 56);
		assert_int_equal(ioctl(kvmkit_vm_fd(vm), KVM_SET_IRQCHIP, &c), 0);
		c = (struct kvm_irqchip){ .chip_id = KVM_IRQCHIP_PIC_MASTER };
		assert_int_equal(ioctl(kvmkit_vm_fd(vm), KVM_GET_IRQCHIP, &c), 0);
		c.chip.pic.irq_base = 0x30;
		c.chip.pic.imr = 0xfb;
		assert_int_equal(ioctl(kvmkit_vm_fd(vm), KVM_SET_IRQCHIP, &c), 0);
		return;
	}
	bus_w32(kvmkit_vm_mmio_bus(vm), 0xfec00000, 0x10 + 2 * 5);
	bus_w32(kvmkit_vm_mmio_bus(vm), 0xfec00010, 0x45 | (1u << 15));
	bus_w32(kvmkit_vm_mmio_bus(vm), 0xfec00000, 0x11 + 2 * 5);
	bus_w32(kvmkit_vm_mmio_bus(vm), 0xfec00010, 1u << 24);
	bus_w8(kvmkit_vm_pio_bus(vm), 0x20, 0x11);
	bus_w8(kvmkit_vm_pio_bus(vm), 0x21, 0x30);
	bus_w8(kvmkit_vm_pio_bus(vm), 0x21, 0x04);
	bus_w8(kvmkit_vm_pio_bus(vm), 0x21, 0x01);
	bus_w8(kvmkit_vm_pio_bus(vm), 0x21, 0xfb);
}

/* What the guest would read back from pin 5's entry. */
static uint64_t pin5(struct kvmkit_vm *vm, enum kvmkit_irqchip_mode mode)
{
	uint32_t lo = 0, hi = 0;

	if (mode == KVMKIT_IRQCHIP_KERNEL) {
		struct kvm_irqchip c = { .chip_id = KVM_IRQCHIP_IOAPIC };

		assert_int_equal(ioctl(kvmkit_vm_fd(vm), KVM_GET_IRQCHIP, &c), 0);
		return c.chip.ioapic.redirtbl[5].bits;
	}
	bus_w32(kvmkit_vm_mmio_bus(vm), 0xfec00000, 0x10 + 2 * 5);
	assert_true(kvmkit_bus_dispatch(kvmkit_vm_mmio_bus(vm), 0xfec00010, &lo, 4, false));
	bus_w32(kvmkit_vm_mmio_bus(vm), 0xfec00000, 0x11 + 2 * 5);
	assert_true(kvmkit_bus_dispatch(kvmkit_vm_mmio_bus(vm), 0xfec00010, &hi, 4, false));
	return (uint64_t)hi << 32 | lo;
}

/* The irqchip's state saved from one VM and restored into a new one (both
 * modes, without a PIT so the state is time-independent): the new VM's
 * controller holds the registers, kvmkit holds the routes and GSIs, and
 * saving it again gives the same bytes. */
static void test_save_restore(void **state)
{
	for (int mode = 0; mode < KVMKIT_IRQCHIP_MODES; mode++) {
		struct kvmkit_vm *a = new_vm(1), *b = new_vm(1), *c = new_vm(1);
		struct kvmkit_irqchip *ca = chip_for(a, mode, false),
				      *cb = chip_for(b, mode, false);
		struct kvmkit_irqchip *cc = chip_for(c, !mode, false);
		void *buf, *buf2;
		size_t len, len2;
		int g = kvmkit_gsi_alloc_msi(ca);

		assert_true(g >= 24);
		assert_int_equal(kvmkit_irq_route_msi(ca, (uint32_t)g, 0xfee01000, 0x61, -1), 0);
		assert_int_equal(kvmkit_irq_routes_commit(ca), 0);
		program_chip(a, mode);
		assert_int_equal(kvmkit_irqchip_save(ca, &buf, &len), 0);

		assert_int_equal(kvmkit_irqchip_restore(cc, buf, len), -ENOEXEC); /* other mode */
		assert_int_equal(kvmkit_irqchip_restore(cb, buf, len), 0);
		assert_int_equal(pin5(b, mode) & ~(1ull << 12), 0x45 | (1ull << 15) | (1ull << 56));
		assert_int_equal(kvmkit_irq_route_count(cb, (uint32_t)g), 1);
		assert_int_equal(kvmkit_gsi_alloc_msi(cb), g + 1);
		assert_int_equal(kvmkit_gsi_free(cb, (uint32_t)g + 1), 0);
		assert_int_equal(kvmkit_irqchip_save(cb, &buf2, &len2), 0);
		assert_int_equal(len2, len);
		assert_memory_equal(buf2, buf, len);
		free(buf);
		free(buf2);
		kvmkit_vm_destroy(a);
		kvmkit_vm_destroy(b);
		kvmkit_vm_destroy(c);
	}
}

/* With a PIT: the state round-trips; a chip without one refuses it. */
static void test_save_restore_pit(void **state)
{
	for (int mode = 0; mode < KVMKIT_IRQCHIP_MODES; mode++) {
		struct kvmkit_vm *a = new_vm(1), *b = new_vm(1), *c = new_vm(1);
		struct kvmkit_irqchip *ca = chip_for(a, mode, true), *cb = chip_for(b, mode, true);
		struct kvmkit_irqchip *cc = chip_for(c, mode, false);
		void *buf;
		size_t len;

		assert_int_equal(kvmkit_irqchip_save(ca, &buf, &len), 0);
		assert_int_equal(kvmkit_irqchip_restore(cb, buf, len), 0);
		assert_int_equal(kvmkit_irqchip_restore(cc, buf, len), -ENOEXEC);
		assert_int_equal(kvmkit_last_error()->kind, KVMKIT_ERR_FORMAT);
		free(buf);
		kvmkit_vm_destroy(a);
		kvmkit_vm_destroy(b);
		kvmkit_vm_destroy(c);
	}
}

/* irqfds are eventfds. KVM refuses anything else; the split back end's
 * thread must too (a pipe whose writer closed kept it spinning on the
 * hang-up, a short read dropped the signal). Both modes alike. */
static void check_not_eventfd(enum kvmkit_irqchip_mode mode)
{
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_vm *vm = new_vm(1);
	struct kvmkit_irqchip *chip;
	int p[2], efd = eventfd(0, EFD_CLOEXEC);

	assert_int_equal(pipe(p), 0);
	kvmkit_irqchip_config_init(&cfg);
	cfg.mode = mode;
	assert_int_equal(kvmkit_irqchip_create(vm, &cfg, &chip), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, 20, p[0], -1), -EINVAL);
	/* The resamplefd too, where the host has resampling. */
	if (mode == KVMKIT_IRQCHIP_SPLIT || kvmkit_vm_check_cap(vm, KVM_CAP_IRQFD_RESAMPLE) > 0)
		assert_int_equal(kvmkit_irqfd_bind(chip, 20, efd, p[1]), -EINVAL);
	/* Nothing was bound: the route can go. */
	assert_int_equal(kvmkit_irq_route_remove(chip, 20), 0);
	kvmkit_vm_destroy(vm);
	close(p[0]);
	close(p[1]);
	close(efd);
}

static void test_irqfd_not_eventfd(void **state)
{
	check_not_eventfd(KVMKIT_IRQCHIP_KERNEL);
	check_not_eventfd(KVMKIT_IRQCHIP_SPLIT);
}

/* Split mode: a commit that must move a kernel-bound MSI irqfd to the
 * interrupt thread while the thread's table is full is refused, and the
 * irqfd stays where it was (bound in the kernel, unbindable), not lost. */
static void test_split_move_refused(void **state)
{
	enum { N = 256 }; /* the thread's table (KVMK_SPLIT_MAX_IRQFDS) */
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_vm *vm = new_vm(1);
	struct kvmkit_irqchip *chip;
	struct kvmkit_gsi_stats st;
	int fds[N], mfd = eventfd(0, EFD_CLOEXEC), gsi, n = 0;

	kvmkit_irqchip_config_init(&cfg);
	cfg.mode = KVMKIT_IRQCHIP_SPLIT;
	assert_int_equal(kvmkit_irqchip_create(vm, &cfg, &chip), 0);
	gsi = kvmkit_gsi_alloc_msi(chip);
	assert_int_equal(kvmkit_irq_route_msi(chip, gsi, 0xfee00000, 0x45, -1), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), 0);
	assert_int_equal(kvmkit_irqfd_bind(chip, gsi, mfd, -1), 0);
	assert_int_equal(kvmkit_irq_gsi_stats(chip, gsi, &st), 0);
	assert_int_equal(st.irqfds_kernel, 1);
	/* Fill the thread's table with irqfds on an IOAPIC pin. */
	for (; n < N; n++) {
		fds[n] = eventfd(0, EFD_CLOEXEC);
		if (kvmkit_irqfd_bind(chip, 20, fds[n], -1)) {
			close(fds[n]);
			break;
		}
	}
	assert_int_equal(n, N);
	/* Re-routing the MSI GSI to a pin would move its irqfd to the thread. */
	assert_int_equal(kvmkit_irq_route_irqchip(chip, gsi, KVMKIT_IRQCHIP_IOAPIC, 5), 0);
	assert_int_equal(kvmkit_irq_routes_commit(chip), -ENOSPC);
	assert_int_equal(kvmkit_irq_gsi_stats(chip, gsi, &st), 0);
	assert_int_equal(st.irqfds_kernel, 1);
	assert_int_equal(st.irqfds_thread, 0);
	assert_int_equal(kvmkit_irqfd_unbind(chip, gsi, mfd), 0);
	assert_int_equal(kvmkit_irq_route_remove(chip, gsi), 0);
	for (int i = 0; i < n; i++) {
		assert_int_equal(kvmkit_irqfd_unbind(chip, 20, fds[i]), 0);
		close(fds[i]);
	}
	kvmkit_vm_destroy(vm);
	close(mfd);
}

static void noop_teardown(void *opaque)
{
	(*(unsigned int *)opaque)++;
}

static int eoi_handler(struct kvmkit_vcpu *vcpu, struct kvm_run *run, void *opaque)
{
	return 0;
}

/* A split irqchip whose last step (joining the VM's teardown list) fails
 * leaves nothing of kvmkit's behind: no IOAPIC, PIC or PIT on the buses, no
 * EOI exit handler, no thread; the VM still gets vCPUs and goes cleanly. */
static void test_split_create_fails_late(void **state)
{
	struct kvmkit_irqchip_config cfg;
	struct kvmkit_vm *vm = new_vm(1);
	unsigned int ran = 0, added = 0;

	while (kvmkit_vm_add_teardown(vm, noop_teardown, &ran) == 0)
		added++;
	kvmkit_irqchip_config_init(&cfg);
	cfg.mode = KVMKIT_IRQCHIP_SPLIT;
	assert_int_equal(kvmkit_irqchip_create(vm, &cfg, NULL), -ENOSPC);
	assert_null(kvmkit_vm_irqchip(vm));
	assert_null(kvmkit_bus_lookup(kvmkit_vm_mmio_bus(vm), 0xfec00000));
	assert_null(kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), 0x20));
	assert_null(kvmkit_bus_lookup(kvmkit_vm_pio_bus(vm), 0x40));
	assert_int_equal(kvmkit_vm_add_exit_handler(vm, KVM_EXIT_IOAPIC_EOI, eoi_handler, NULL), 0);
	assert_int_equal(kvmkit_vm_create_vcpu(vm, 0, NULL), 0);
	kvmkit_vm_destroy(vm);
	assert_int_equal(ran, added);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_save_restore),
		cmocka_unit_test(test_save_restore_pit),
		cmocka_unit_test(test_create_order),   cmocka_unit_test(test_routing_and_allocator),
		cmocka_unit_test(test_lines_and_msi),  cmocka_unit_test(test_irqfd_ordering),
		cmocka_unit_test(test_unbind_unknown), cmocka_unit_test(test_split_create_fails_late),
		cmocka_unit_test(test_irqfd_not_eventfd), cmocka_unit_test(test_split_move_refused),
		cmocka_unit_test(test_ioeventfd_guest), cmocka_unit_test(test_split_mode),
	};

	test_args(argc, argv);
	require_kvm();
	return cmocka_run_group_tests_name("irq", tests, NULL, NULL);
}
