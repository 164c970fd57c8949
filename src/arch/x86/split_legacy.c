// SPDX-License-Identifier: MIT
/*
 * The split back end's legacy chips: kvmkit's 8254 (KVM has no PIT in this
 * mode) and 8259 pair. The PIT's next rising OUT edge arms a timerfd on the
 * interrupt thread, whose expiry pulses GSI 0 like any line. The PIC's INTR
 * belongs to vCPU 0's LINT0: when it rises the model kicks vCPU 0, whose
 * pre-run hook runs the INTA cycle and KVM_INTERRUPT when KVM says the
 * guest can take an interrupt, or asks for KVM_EXIT_IRQ_WINDOW_OPEN.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "irq-split"
#include "core/internal.h"
#include <kvmkit/vcpu.h>
#include "arch/x86/split.h"

/* ---- 8254 ------------------------------------------------------------------ */

static uint64_t pit_now(void *opaque)
{
	return kvmk_now_ns();
}

/* Called with the PIT's lock held; timerfd_settime() is all it does. */
static void pit_arm(void *opaque, uint64_t deadline)
{
	struct kvmk_split *s = opaque;
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)(deadline / 1000000000ull);
	its.it_value.tv_nsec = (long)(deadline % 1000000000ull);
	if (timerfd_settime(s->pit_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		kvmk_error("PIT timer: timerfd_settime: %s", strerror(errno));
}

void kvmk_split_pit_expired(struct kvmk_split *s)
{
	uint64_t cnt;

	if (read(s->pit_fd, &cnt, sizeof(cnt)) == sizeof(cnt) && kvmk_pit_timer(s->pit)) {
		kvmk_split_set_gsi(s, KVMK_PIT_IRQ, true, -1);
		kvmk_split_set_gsi(s, KVMK_PIT_IRQ, false, -1);
	}
}

/* At 0x40-0x43 and port B (0x61); its timerfd on the interrupt thread. */
int kvmk_split_pit_setup(struct kvmk_split *s)
{
	struct kvmk_pit_config pcfg = { .now_ns = pit_now, .arm = pit_arm, .opaque = s };
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = KVMK_SPLIT_EV_PIT };
	struct kvmkit_bus *pio = kvmkit_vm_pio_bus(s->vm);
	int r;

	s->pit_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->pit_fd < 0)
		return kvmk_err_sys("timerfd_create", errno, "split irqchip PIT");
	r = kvmk_pit_create(&pcfg, &s->pit);
	if (r)
		return r;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->pit_fd, &ev) < 0)
		return kvmk_err_sys("epoll_ctl", errno, "split irqchip PIT");
	r = kvmkit_bus_register(pio, KVMK_PIT_BASE, KVMK_PIT_LEN, "pit", &kvmk_pit_pio_ops, s->pit);
	if (r)
		return r;
	s->pit_mapped = true;
	r = kvmkit_bus_register(pio, KVMK_PIT_PORTB, 1, "pit-portb", &kvmk_pit_portb_ops, s->pit);
	if (r)
		return r;
	s->portb_mapped = true;
	return 0;
}

/* ---- 8259 pair --------------------------------------------------------------- */

static const struct {
	uint16_t base, len;
	const char *name;
	const struct kvmkit_io_ops *ops;
} pic_ranges[3] = {
	{ KVMK_PIC_MASTER_BASE, KVMK_PIC_LEN, "pic-master", &kvmk_pic_master_ops },
	{ KVMK_PIC_SLAVE_BASE, KVMK_PIC_LEN, "pic-slave", &kvmk_pic_slave_ops },
	{ KVMK_PIC_ELCR_BASE, KVMK_PIC_ELCR_LEN, "pic-elcr", &kvmk_pic_elcr_ops },
};

/* PIC callback (PIC lock held): INTR rose, vCPU 0 must come for the INTA. */
static void pic_kick(void *opaque)
{
	struct kvmk_split *s = opaque;

	kvmkit_vm_kick_vcpu(s->vm, 0);
}

/* PIC callback (lock dropped): IRQ @irq left service. */
static void pic_eoi(void *opaque, unsigned int irq)
{
	struct kvmk_split *s = opaque;

	if (irq < KVMK_PIC_IRQS)
		kvmk_split_resample(s, &s->pic_resample_fd[irq],
				    __atomic_load_n(&s->pic_resample_gsi[irq], __ATOMIC_ACQUIRE));
}

/* Before every KVM_RUN of vCPU 0: the INTA and KVM_INTERRUPT, or a request
 * for an interrupt window. */
static void pic_pre_run(struct kvmkit_vcpu *vcpu, struct kvm_run *run, void *opaque)
{
	struct kvmk_split *s = opaque;
	struct kvm_interrupt irq;

	if (!kvmk_pic_output(s->pic)) {
		run->request_interrupt_window = 0;
		return;
	}
	/*
	 * KVM computed ready_for_interrupt_injection at the last exit: IF set,
	 * no interrupt shadow, LINT0 accepting ExtINT and no ExtINT already
	 * queued. Only then is the INTA done; otherwise ask to exit as soon as
	 * that holds (KVM_EXIT_IRQ_WINDOW_OPEN).
	 */
	if (!run->ready_for_interrupt_injection) {
		run->request_interrupt_window = 1;
		return;
	}
	run->request_interrupt_window = 0;
	irq.irq = kvmk_pic_intack(s->pic);
	if (ioctl(kvmkit_vcpu_fd(vcpu), KVM_INTERRUPT, &irq) < 0)
		kvmk_warn("KVM_INTERRUPT vector 0x%x: %s", irq.irq, strerror(errno));
}

/* The window opened: the next run's pre-run hook injects. */
static int irq_window_open(struct kvmkit_vcpu *vcpu, struct kvm_run *run, void *opaque)
{
	return 0;
}

int kvmk_split_pic_setup(struct kvmk_split *s)
{
	struct kvmk_pic_config pcfg = { .kick = pic_kick, .eoi = pic_eoi, .opaque = s };
	int r = kvmk_pic_create(&pcfg, &s->pic);

	for (unsigned int i = 0; !r && i < 3; i++) {
		r = kvmkit_bus_register(kvmkit_vm_pio_bus(s->vm), pic_ranges[i].base,
					pic_ranges[i].len, pic_ranges[i].name, pic_ranges[i].ops,
					s->pic);
		s->pic_mapped[i] = !r;
	}
	if (!r)
		r = kvmkit_vm_add_pre_run_hook(s->vm, 0, pic_pre_run, s);
	if (!r)
		r = kvmkit_vm_add_exit_handler(s->vm, KVM_EXIT_IRQ_WINDOW_OPEN, irq_window_open, s);
	return r;
}

void kvmk_split_legacy_teardown(struct kvmk_split *s)
{
	struct kvmkit_bus *pio = kvmkit_vm_pio_bus(s->vm);

	if (s->pit_mapped)
		kvmkit_bus_unregister(pio, KVMK_PIT_BASE);
	if (s->portb_mapped)
		kvmkit_bus_unregister(pio, KVMK_PIT_PORTB);
	for (unsigned int i = 0; i < 3; i++)
		if (s->pic_mapped[i])
			kvmkit_bus_unregister(pio, pic_ranges[i].base);
	kvmk_pic_destroy(s->pic);
	s->pic = NULL;
	if (s->pit_fd >= 0)
		close(s->pit_fd);
	kvmk_pit_destroy(s->pit);
	s->pit = NULL;
}
