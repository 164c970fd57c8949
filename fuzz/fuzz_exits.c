// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the vCPU exit decoder (kvmk_vcpu_handle_exit) fed
 * synthetic kvm_run records, without KVM. Creating a VM needs /dev/kvm, so
 * the VM and vCPU structs are built by hand (tests/unit/fake_vcpu.h): real
 * PIO and MMIO buses with a few fake devices, a run area of KVM's x86 size
 * on the heap, an exit hook. Each record is one byte that picks the exit
 * reason (every reason up to 63, or a raw 32-bit one) and up to 255 bytes
 * laid over the exit's union (sizes, counts, offsets, types: anything).
 * Traps if:
 *  - a device is called outside its range, with a size other than 1..8,
 *    or with data outside the run area;
 *  - a PIO or MMIO exit is refused although well-formed, or handled
 *    although malformed (PIO data overlapping struct kvm_run, an unknown
 *    direction), or a well-formed access inside a device does not reach it
 *    exactly count times (a read must not redirect the rest of a rep);
 *  - an exit stops the VM without a reason, returns 0 with a stop pending
 *    (other than a halt), or returns an error without a stop;
 *  - a system event maps to the wrong reason (power off: clean exit with
 *    status 0; reset; crash; any other type: unhandled);
 *  - the exit hook sees an exit the decoder handles itself.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fake_vcpu.h"
#include "fuzz.h"

struct dev {
	uint64_t base, len;
	unsigned int calls;
};

static struct fake_vcpu fv;
static struct dev pio_devs[] = { { 0x3f8, 8 }, { 0x80, 1 }, { 0xcf8, 8 } };
static struct dev mmio_devs[] = { { 0xfee00000, 0x1000 }, { 0xd0000000, 16 } };
static unsigned int hook_calls;

static void check_access(const struct dev *d, uint64_t off, const void *buf, unsigned int sz)
{
	const uint8_t *run = (const uint8_t *)fv.vcpu.run;
	const uint8_t *p = buf;

	CHECK(sz >= 1 && sz <= 8);
	CHECK(off < d->len && sz <= d->len - off);
	CHECK(p >= run && p + sz <= run + FAKE_RUN_SIZE);
}

static void dev_read(void *opaque, uint64_t off, void *buf, unsigned int sz)
{
	struct dev *d = opaque;

	check_access(d, off, buf, sz);
	d->calls++;
	memset(buf, 0x5a, sz);
}

static void dev_write(void *opaque, uint64_t off, const void *buf, unsigned int sz)
{
	struct dev *d = opaque;

	check_access(d, off, buf, sz);
	d->calls++;
}

static const struct kvmkit_io_ops dev_ops = { dev_read, dev_write };

/* Handles the odd exit reasons the decoder leaves to its user. */
static int hook(struct kvmkit_vcpu *vcpu, struct kvm_run *run, void *opaque)
{
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
	case KVM_EXIT_MMIO:
	case KVM_EXIT_HLT:
	case KVM_EXIT_INTR:
	case KVM_EXIT_SHUTDOWN:
	case KVM_EXIT_SYSTEM_EVENT:
	case KVM_EXIT_FAIL_ENTRY:
	case KVM_EXIT_INTERNAL_ERROR:
		CHECK(0);
	}
	hook_calls++;
	return run->exit_reason & 1 ? 0 : -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (fake_vcpu_init(&fv))
		__builtin_trap();
	for (size_t i = 0; i < sizeof(pio_devs) / sizeof(pio_devs[0]); i++)
		if (kvmkit_bus_register(fv.vm.pio, pio_devs[i].base, pio_devs[i].len, "fake",
					&dev_ops, &pio_devs[i]))
			__builtin_trap();
	for (size_t i = 0; i < sizeof(mmio_devs) / sizeof(mmio_devs[0]); i++)
		if (kvmkit_bus_register(fv.vm.mmio, mmio_devs[i].base, mmio_devs[i].len, "fake",
					&dev_ops, &mmio_devs[i]))
			__builtin_trap();
	kvmkit_vcpu_set_exit_hook(&fv.vcpu, hook, NULL);
	return 0;
}

/* The device wholly holding [addr, addr + sz), or NULL. */
static struct dev *holder(struct dev *devs, size_t n, uint64_t addr, unsigned int sz)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= devs[i].base && sz <= devs[i].len &&
		    addr - devs[i].base <= devs[i].len - sz)
			return &devs[i];
	return NULL;
}

static void one_exit(uint32_t reason, const uint8_t *body, size_t len)
{
	struct kvm_run *run = fv.vcpu.run;
	uint8_t *u = (uint8_t *)&run->io; /* every exit's union starts here */
	size_t room = sizeof(*run) - offsetof(struct kvm_run, io);
	struct dev *d = NULL;
	unsigned int calls0 = 0, hook0 = hook_calls;
	bool valid = true;
	uint64_t want = 0;
	int r;

	fake_vcpu_reset_stop(&fv);
	memset(u, 0, room);
	memcpy(u, body, len < room ? len : room);
	run->exit_reason = reason;

	if (reason == KVM_EXIT_IO) {
		uint64_t size = run->io.size, count = run->io.count, off = run->io.data_offset;

		/* The data lies past struct kvm_run (KVM puts it a page
		 * further) and inside the run area. */
		valid = (size == 1 || size == 2 || size == 4) && count > 0 &&
			run->io.direction <= KVM_EXIT_IO_OUT && off >= sizeof(*run) &&
			off <= FAKE_RUN_SIZE && size * count <= FAKE_RUN_SIZE - off;
		d = holder(pio_devs, 3, run->io.port, (unsigned int)size);
		want = count;
	} else if (reason == KVM_EXIT_MMIO) {
		valid = run->mmio.len >= 1 && run->mmio.len <= 8;
		d = holder(mmio_devs, 2, run->mmio.phys_addr, run->mmio.len);
		want = 1;
	}
	if (d)
		calls0 = d->calls;

	r = kvmk_vcpu_handle_exit(&fv.vcpu);

	CHECK(r == 0 || r == -EIO);
	CHECK(strnlen(fv.vm.stop.detail, sizeof(fv.vm.stop.detail)) < sizeof(fv.vm.stop.detail));
	CHECK(fv.vm.stop.vcpu == -1 || fv.vm.stop.vcpu == 0);
	if (r < 0)
		CHECK(fv.vm.stop_req && fv.vm.stop.reason != KVMKIT_STOP_NONE);
	else if (fv.vm.stop_req)
		CHECK(reason == KVM_EXIT_HLT && fv.vm.stop.reason == KVMKIT_STOP_HALT);

	switch (reason) {
	case KVM_EXIT_IO:
	case KVM_EXIT_MMIO:
		CHECK(valid == (r == 0));
		if (!valid)
			CHECK(fv.vm.stop.reason == KVMKIT_STOP_INTERNAL_ERROR);
		else if (d)
			CHECK(d->calls - calls0 == want);
		break;
	case KVM_EXIT_HLT:
	case KVM_EXIT_INTR:
		CHECK(r == 0);
		break;
	case KVM_EXIT_SHUTDOWN:
		CHECK(fv.vm.stop.reason == KVMKIT_STOP_SHUTDOWN);
		break;
	case KVM_EXIT_FAIL_ENTRY:
	case KVM_EXIT_INTERNAL_ERROR:
		CHECK(fv.vm.stop.reason == KVMKIT_STOP_INTERNAL_ERROR);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		CHECK(r < 0);
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			CHECK(fv.vm.stop.reason == KVMKIT_STOP_GUEST_EXIT &&
			      fv.vm.stop.status == 0);
			break;
		case KVM_SYSTEM_EVENT_RESET:
			CHECK(fv.vm.stop.reason == KVMKIT_STOP_GUEST_RESET);
			break;
		case KVM_SYSTEM_EVENT_CRASH:
			CHECK(fv.vm.stop.reason == KVMKIT_STOP_GUEST_CRASH);
			break;
		default:
			CHECK(fv.vm.stop.reason == KVMKIT_STOP_UNHANDLED_EXIT);
		}
		break;
	default:
		/* Left to the hook (IRQ_WINDOW_OPEN and IOAPIC_EOI too: with no
		 * irqchip exit handler registered, as here, the hook gets them):
		 * odd reasons it takes, even ones stop. */
		CHECK(hook_calls == hook0 + 1);
		CHECK((r == 0) == (reason & 1));
		if (r < 0)
			CHECK(fv.vm.stop.reason == KVMKIT_STOP_UNHANDLED_EXIT);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i = 0;

	/* Whatever the last input left in the PIO data page stays: KVM
	 * leaves stale bytes there too. */
	while (i + 2 <= size) {
		uint8_t sel = data[i], len = data[i + 1];
		uint32_t reason = sel & 0x3f;

		i += 2;
		if (len > size - i)
			len = (uint8_t)(size - i);
		if (sel & 0x80 && len >= 4)
			memcpy(&reason, data + i, 4); /* a raw, likely unknown reason */
		one_exit(reason, data + i, len);
		i += len;
	}
	return 0;
}
