// SPDX-License-Identifier: MIT
/*
 * x86 in-kernel irqchip, GSI routing, GSI allocation, IRQ lines, MSI,
 * irqfd and ioeventfd. kvmkit keeps its own copy of the routing table because
 * KVM_SET_GSI_ROUTING replaces the whole table (api.rst 4.52): every commit
 * sends every entry, the default irqchip routes included.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "irq"
#include "core/internal.h"
#include "kvm/kvm_internal.h"
#include <kvmkit/irq.h>
#include "irq/ioapic.h"
#include "irq/pic.h"
#include "irq/pit.h"

#define MAX_ROUTES 4096
/* Split mode: irqfds serviced in userspace. */
#define MAX_USER_IRQFDS 256
/* epoll tags of the split-mode thread's non-irqfd sources. */
#define EV_WAKE UINT32_MAX
#define EV_PIT (UINT32_MAX - 1)

struct user_irqfd {
	bool used;
	int fd;
	int resample_fd; /* -1: edge */
	uint32_t gsi;
};

/* Split mode: an edge irqfd on an MSI-only GSI past the IOAPIC's routes,
 * bound in the kernel (KVM injects it without kvmkit's thread). */
struct kernel_irqfd {
	bool used;
	int fd;
	uint32_t gsi;
};

struct kvmkit_irqchip {
	struct kvmkit_vm *vm;
	unsigned int capacity;
	pthread_mutex_t lock; /* routing table, allocator, irqfd counts */
	struct kvm_irq_routing_entry *staged;
	unsigned int nstaged;
	struct kvm_irq_routing_entry *committed;
	unsigned int ncommitted;
	uint8_t allocated[KVMKIT_MAX_GSI]; /* GSI allocator */
	uint16_t irqfds[KVMKIT_MAX_GSI];   /* irqfds bound per GSI */
	struct kvmkit_gsi_stats stats[KVMKIT_MAX_GSI];

	enum kvmkit_irqchip_mode mode;
	bool has_msi_devid; /* KVM_CAP_MSI_DEVID, asked once */
	/* Split mode. */
	unsigned int split_routes;
	struct kvmk_ioapic *ioapic;
	bool ioapic_mapped;
	pthread_mutex_t mirror_lock; /* mirrors + kroutes: the kernel's whole table */
	struct kvm_irq_routing_entry mirrors[KVMKIT_IOAPIC_PINS];
	bool mirror_valid[KVMKIT_IOAPIC_PINS];
	/* The committed MSI routes of GSIs >= split_routes, for kernel irqfds. */
	struct kvm_irq_routing_entry *kroutes;
	unsigned int nkroutes;
	struct kernel_irqfd kernel_irqfd[MAX_USER_IRQFDS];
	/* Level irqfds (resample) asserting a chip pin: their resamplefd and
	 * the GSI they assert, per IOAPIC pin and per PIC IRQ. */
	int pin_resample_fd[KVMKIT_IOAPIC_PINS];
	uint32_t pin_resample_gsi[KVMKIT_IOAPIC_PINS];
	int pic_resample_fd[KVMK_PIC_IRQS];
	uint32_t pic_resample_gsi[KVMK_PIC_IRQS];
	struct user_irqfd user_irqfds[MAX_USER_IRQFDS];
	int epfd;
	int wake[2];
	pthread_t thread;
	bool thread_started;
	/* Split mode's userspace PIT: its timer is a timerfd on the thread. */
	struct kvmk_pit *pit;
	int pit_fd;
	bool pit_mapped, portb_mapped;
	/* Split mode's userspace PIC pair; INTR goes to vCPU 0. */
	struct kvmk_pic *pic;
	bool pic_mapped[3]; /* master, slave, ELCR */
};

static const char *const mode_names[] = { "kernel", "split" };

const char *kvmkit_irqchip_mode_name(enum kvmkit_irqchip_mode mode)
{
	return (unsigned int)mode < KVMKIT_ARRAY_SIZE(mode_names) ? mode_names[mode] : "?";
}

enum kvmkit_irqchip_mode kvmkit_irqchip_mode(const struct kvmkit_irqchip *chip)
{
	return chip->mode;
}

void kvmkit_irqchip_config_init(struct kvmkit_irqchip_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = KVMKIT_IRQCHIP_KERNEL;
	cfg->pit = true;
	cfg->pic = true;
	cfg->pit_reinject = false; /* api.rst 4.99: !reinject is recommended */
	cfg->split_routes = KVMKIT_IOAPIC_PINS;
}

static void add_irqchip_entry(struct kvm_irq_routing_entry *tab, unsigned int *n, uint32_t gsi,
			      uint32_t chip, uint32_t pin)
{
	struct kvm_irq_routing_entry *e = &tab[(*n)++];

	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

/* The table KVM_CREATE_IRQCHIP installs: GSI 0-15 to the PIC pair and the
 * IOAPIC, 16-23 to the IOAPIC only. */
static void default_routes(struct kvm_irq_routing_entry *tab, unsigned int *n, bool with_pic)
{
	*n = 0;
	for (uint32_t gsi = 0; gsi < KVMKIT_IOAPIC_PINS; gsi++) {
		if (gsi < 16 && with_pic)
			add_irqchip_entry(tab, n, gsi,
					  gsi < 8 ? KVMKIT_IRQCHIP_PIC_MASTER : KVMKIT_IRQCHIP_PIC_SLAVE,
					  gsi % 8);
		add_irqchip_entry(tab, n, gsi, KVMKIT_IRQCHIP_IOAPIC, gsi);
	}
}

/* ---- split mode: the userspace IOAPIC and its plumbing ------------------ */

/* Sends the kernel's whole routing table (mirror_lock held): the IOAPIC
 * pins' MSI mirrors, from which KVM learns which vectors' EOIs must exit to
 * kvmkit, and the MSI routes that kernel-bound irqfds inject through. */
static int commit_mirrors(struct kvmkit_irqchip *chip)
{
	struct kvm_irq_routing *tab;
	unsigned int n = 0;
	int r = 0;

	tab = calloc(1, sizeof(*tab) + (KVMKIT_IOAPIC_PINS + chip->nkroutes) * sizeof(tab->entries[0]));
	if (!tab)
		return kvmk_err_resource("KVM_SET_GSI_ROUTING", ENOMEM, "split irqchip table");
	for (unsigned int pin = 0; pin < KVMKIT_IOAPIC_PINS; pin++)
		if (chip->mirror_valid[pin])
			tab->entries[n++] = chip->mirrors[pin];
	for (unsigned int i = 0; i < chip->nkroutes; i++)
		tab->entries[n++] = chip->kroutes[i];
	tab->nr = n;
	if (ioctl(chip->vm->fd, KVM_SET_GSI_ROUTING, tab) < 0)
		r = kvmk_err_ioctl("KVM_SET_GSI_ROUTING", errno, "split irqchip: %u mirrors+routes", n);
	free(tab);
	return r;
}

/* Model callback (model lock held): a redirection entry changed. */
static void ioapic_route_changed(void *opaque, unsigned int pin, const struct kvmk_ioapic_msi *msg,
				 bool masked)
{
	struct kvmkit_irqchip *chip = opaque;
	struct kvm_irq_routing_entry *e;

	if (pin >= KVMKIT_IOAPIC_PINS || pin >= chip->split_routes)
		return;
	pthread_mutex_lock(&chip->mirror_lock);
	e = &chip->mirrors[pin];
	memset(e, 0, sizeof(*e));
	e->gsi = pin;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = (uint32_t)msg->address;
	e->u.msi.address_hi = (uint32_t)(msg->address >> 32);
	e->u.msi.data = msg->data;
	chip->mirror_valid[pin] = !masked;
	if (commit_mirrors(chip))
		kvmk_warn("%s", kvmkit_strerror());
	pthread_mutex_unlock(&chip->mirror_lock);
}

/* KVM_SIGNAL_MSI: > 0 delivered, 0 blocked, -errno. The one place kvmkit
 * sends an MSI (IOAPIC model, split-mode routes, kvmkit_signal_msi). */
static int send_msi(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data, uint32_t flags,
		    uint32_t devid)
{
	struct kvm_msi msi = {
		.address_lo = (uint32_t)address,
		.address_hi = (uint32_t)(address >> 32),
		.data = data,
		.flags = flags,
		.devid = devid,
	};
	int r = ioctl(chip->vm->fd, KVM_SIGNAL_MSI, &msi);

	return r < 0 ? -errno : r;
}

/* Model callback: deliver an IOAPIC message to the in-kernel LAPICs. */
static int ioapic_deliver(void *opaque, const struct kvmk_ioapic_msi *msg)
{
	return send_msi(opaque, msg->address, msg->data, 0, 0);
}

/* Model callback (no model lock): the guest EOI'd level pin @pin. Like KVM's
 * resampler: de-assert the line the irqfd asserted, then notify. */
static int split_set_gsi(struct kvmkit_irqchip *chip, uint32_t gsi, bool level, int resample_fd);

/* Forgets @rfd in every chip-pin slot; true if any slot held it. */
static bool clear_resample_slots(struct kvmkit_irqchip *chip, int rfd)
{
	bool found = false;

	for (unsigned int pin = 0; pin < KVMKIT_IOAPIC_PINS; pin++) {
		int expect = rfd;

		found |= __atomic_compare_exchange_n(&chip->pin_resample_fd[pin], &expect, -1, false,
						     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
	for (unsigned int irq = 0; irq < KVMK_PIC_IRQS; irq++) {
		int expect = rfd;

		found |= __atomic_compare_exchange_n(&chip->pic_resample_fd[irq], &expect, -1, false,
						     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
	return found;
}

/*
 * The guest EOI'd a pin that a level irqfd asserts (its slot holds the
 * resamplefd): as KVM's resampler does, de-assert the whole GSI (its IOAPIC
 * pin and PIC IRQ alike, so the other chip's EOI does not signal it again)
 * and tell the device through the resamplefd.
 */
static void resample(struct kvmkit_irqchip *chip, int *slot, uint32_t gsi)
{
	int rfd = __atomic_exchange_n(slot, -1, __ATOMIC_ACQ_REL);
	uint64_t one = 1;

	if (rfd < 0)
		return;
	clear_resample_slots(chip, rfd);
	split_set_gsi(chip, gsi, false, -1);
	if (write(rfd, &one, sizeof(one)) < 0)
		kvmk_debug("resamplefd %d: %s", rfd, strerror(errno));
}

static void ioapic_resample(void *opaque, unsigned int pin)
{
	struct kvmkit_irqchip *chip = opaque;

	resample(chip, &chip->pin_resample_fd[pin],
		 __atomic_load_n(&chip->pin_resample_gsi[pin], __ATOMIC_ACQUIRE));
}

/* PIC callback (lock dropped): IRQ @irq left service. */
static void pic_eoi(void *opaque, unsigned int irq)
{
	struct kvmkit_irqchip *chip = opaque;

	if (irq < KVMK_PIC_IRQS)
		resample(chip, &chip->pic_resample_fd[irq],
			 __atomic_load_n(&chip->pic_resample_gsi[irq], __ATOMIC_ACQUIRE));
}

void kvmk_irqchip_eoi(struct kvmkit_irqchip *chip, uint32_t vector)
{
	if (chip && chip->ioapic)
		kvmk_ioapic_eoi(chip->ioapic, vector);
}

/* Copies the committed entries of @gsi (at most @max). */
static unsigned int routes_of(struct kvmkit_irqchip *chip, uint32_t gsi,
			      struct kvm_irq_routing_entry *out, unsigned int max)
{
	unsigned int n = 0;

	pthread_mutex_lock(&chip->lock);
	for (unsigned int i = 0; i < chip->ncommitted && n < max; i++)
		if (chip->committed[i].gsi == gsi)
			out[n++] = chip->committed[i];
	pthread_mutex_unlock(&chip->lock);
	return n;
}

/* Combines per-route statuses as kvm_set_irq() does: errors and "masked"
 * (< 0) are ignored, otherwise the CPU counts add up. */
static int combine(int acc, int r)
{
	if (r < 0)
		return acc;
	return r + (acc < 0 ? 0 : acc);
}

static int signal_msi_entry(struct kvmkit_irqchip *chip, const struct kvm_irq_routing_entry *e)
{
	return send_msi(chip, ((uint64_t)e->u.msi.address_hi << 32) | e->u.msi.address_lo,
			e->u.msi.data, e->flags, e->u.msi.devid);
}

/* Split mode: drive GSI @gsi to @level through kvmkit's routing table. */
static int split_set_gsi(struct kvmkit_irqchip *chip, uint32_t gsi, bool level, int resample_fd)
{
	struct kvm_irq_routing_entry e[4];
	unsigned int n = routes_of(chip, gsi, e, 4);
	int status = -1;

	for (unsigned int i = 0; i < n; i++) {
		if (e[i].type == KVM_IRQ_ROUTING_MSI) {
			if (level)
				status = combine(status, signal_msi_entry(chip, &e[i]));
			continue;
		}
		if (e[i].u.irqchip.irqchip != KVMKIT_IRQCHIP_IOAPIC) {
			unsigned int irq = e[i].u.irqchip.irqchip * 8 + e[i].u.irqchip.pin;
			int r = -1;

			if (chip->pic && irq < KVMK_PIC_IRQS) {
				if (resample_fd >= 0 && level) {
					__atomic_store_n(&chip->pic_resample_gsi[irq], gsi,
							 __ATOMIC_RELEASE);
					__atomic_store_n(&chip->pic_resample_fd[irq], resample_fd,
							 __ATOMIC_RELEASE);
				}
				r = kvmk_pic_set_irq(chip->pic, irq, level);
			}
			status = combine(status, r == KVMKIT_IRQ_MASKED ? -1 : r);
			continue;
		}
		if (resample_fd >= 0 && level) {
			__atomic_store_n(&chip->pin_resample_gsi[e[i].u.irqchip.pin], gsi,
					 __ATOMIC_RELEASE);
			__atomic_store_n(&chip->pin_resample_fd[e[i].u.irqchip.pin], resample_fd,
					 __ATOMIC_RELEASE);
		}
		int r = kvmk_ioapic_set_level(chip->ioapic, e[i].u.irqchip.pin, level);

		status = combine(status, r == KVMKIT_IRQ_MASKED ? -1 : r);
	}
	return status;
}

/* The split-mode interrupt thread: turns irqfd signals into pin changes or
 * MSIs, as KVM's irqfd does for an in-kernel irqchip. */
static void *irqfd_thread(void *arg)
{
	struct kvmkit_irqchip *chip = arg;

	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(chip->epfd, ev, 16, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			kvmk_error("irqfd thread: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint32_t idx = ev[i].data.u32;
			struct user_irqfd u;
			uint64_t cnt;

			if (idx == EV_WAKE)
				return NULL; /* wake pipe: shutting down */
			if (idx == EV_PIT) {
				if (read(chip->pit_fd, &cnt, sizeof(cnt)) == sizeof(cnt) &&
				    kvmk_pit_timer(chip->pit))
					kvmkit_irq_pulse(chip, KVMK_PIT_IRQ);
				continue;
			}
			pthread_mutex_lock(&chip->lock);
			u = chip->user_irqfds[idx < MAX_USER_IRQFDS ? idx : 0];
			pthread_mutex_unlock(&chip->lock);
			if (idx >= MAX_USER_IRQFDS || !u.used || read(u.fd, &cnt, sizeof(cnt)) != sizeof(cnt))
				continue;
			if (u.resample_fd >= 0) {
				split_set_gsi(chip, u.gsi, true, u.resample_fd);
			} else {
				split_set_gsi(chip, u.gsi, true, -1);
				split_set_gsi(chip, u.gsi, false, -1);
			}
		}
	}
}

static uint64_t pit_now(void *opaque)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Called with the PIT's lock held; timerfd_settime() is all it does. */
static void pit_arm(void *opaque, uint64_t deadline)
{
	struct kvmkit_irqchip *chip = opaque;
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)(deadline / 1000000000ull);
	its.it_value.tv_nsec = (long)(deadline % 1000000000ull);
	if (timerfd_settime(chip->pit_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		kvmk_error("PIT timer: timerfd_settime: %s", strerror(errno));
}

/* PIC callback (PIC lock held): INTR rose, vCPU 0 must come for the INTA. */
static void pic_kick(void *opaque)
{
	struct kvmkit_irqchip *chip = opaque;

	kvmk_vm_kick_vcpu(chip->vm, 0);
}

static const struct {
	uint16_t base, len;
	const char *name;
	const struct kvmkit_io_ops *ops;
} pic_ranges[3] = {
	{ KVMK_PIC_MASTER_BASE, KVMK_PIC_LEN, "pic-master", &kvmk_pic_master_ops },
	{ KVMK_PIC_SLAVE_BASE, KVMK_PIC_LEN, "pic-slave", &kvmk_pic_slave_ops },
	{ KVMK_PIC_ELCR_BASE, KVMK_PIC_ELCR_LEN, "pic-elcr", &kvmk_pic_elcr_ops },
};

/* Split mode's 8259 pair at 0x20/0xa0 and the ELCR at 0x4d0. */
static int split_pic_setup(struct kvmkit_irqchip *chip)
{
	struct kvmk_pic_config pcfg = { .kick = pic_kick, .eoi = pic_eoi, .opaque = chip };
	int r = kvmk_pic_create(&pcfg, &chip->pic);

	for (unsigned int i = 0; !r && i < 3; i++) {
		r = kvmkit_bus_register(chip->vm->pio, pic_ranges[i].base, pic_ranges[i].len,
					pic_ranges[i].name, pic_ranges[i].ops, chip->pic);
		chip->pic_mapped[i] = !r;
	}
	return r;
}

void kvmk_irqchip_pre_run(struct kvmkit_irqchip *chip, struct kvmkit_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_interrupt irq;

	if (!chip->pic)
		return;
	if (!kvmk_pic_output(chip->pic)) {
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
	irq.irq = kvmk_pic_intack(chip->pic);
	if (ioctl(vcpu->fd, KVM_INTERRUPT, &irq) < 0)
		kvmk_warn("KVM_INTERRUPT vector 0x%x: %s", irq.irq, strerror(errno));
}

/* Split mode has no in-kernel PIT: kvmkit's 8254 at 0x40-0x43 and port B
 * (0x61), its IRQ 0 pulsed from the interrupt thread, through GSI 0's
 * route like any line. Runs before the thread starts. */
static int split_pit_setup(struct kvmkit_irqchip *chip)
{
	struct kvmk_pit_config pcfg = { .now_ns = pit_now, .arm = pit_arm, .opaque = chip };
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_PIT };
	int r;

	chip->pit_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (chip->pit_fd < 0)
		return kvmk_err_sys("timerfd_create", errno, "split irqchip PIT");
	r = kvmk_pit_create(&pcfg, &chip->pit);
	if (r)
		return r;
	if (epoll_ctl(chip->epfd, EPOLL_CTL_ADD, chip->pit_fd, &ev) < 0)
		return kvmk_err_sys("epoll_ctl", errno, "split irqchip PIT");
	r = kvmkit_bus_register(chip->vm->pio, KVMK_PIT_BASE, KVMK_PIT_LEN, "pit",
				&kvmk_pit_pio_ops, chip->pit);
	if (r)
		return r;
	chip->pit_mapped = true;
	r = kvmkit_bus_register(chip->vm->pio, KVMK_PIT_PORTB, 1, "pit-portb", &kvmk_pit_portb_ops,
				chip->pit);
	if (r)
		return r;
	chip->portb_mapped = true;
	return 0;
}

static int split_setup(struct kvmkit_irqchip *chip, const struct kvmkit_irqchip_config *cfg)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_SPLIT_IRQCHIP };
	struct kvmk_ioapic_config icfg = {
		.deliver = ioapic_deliver,
		.route_changed = ioapic_route_changed,
		.opaque = chip,
		/* kvmkit devices drive "1 = asserted", as with KVM's IOAPIC. */
		.polarity_ignored = true,
	};
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = EV_WAKE };
	int r;

	chip->split_routes = cfg->split_routes ? cfg->split_routes : KVMKIT_IOAPIC_PINS;
	if (chip->split_routes < KVMKIT_IOAPIC_PINS)
		return kvmk_err_param("create_irqchip", "split_routes",
				      "must cover the IOAPIC's 24 pins", "%u", chip->split_routes);
	if (kvmk_check_extension(chip->vm->fd, KVM_CAP_SPLIT_IRQCHIP) <= 0)
		return kvmk_err_unsupported("create_irqchip", ENOTSUP, "KVM_CAP_SPLIT_IRQCHIP");
	cap.args[0] = chip->split_routes;
	if (ioctl(chip->vm->fd, KVM_ENABLE_CAP, &cap) < 0)
		return kvmk_err_ioctl("KVM_ENABLE_CAP", errno, "KVM_CAP_SPLIT_IRQCHIP, %u routes",
				      chip->split_routes);
	for (unsigned int pin = 0; pin < KVMKIT_IOAPIC_PINS; pin++)
		chip->pin_resample_fd[pin] = -1;
	for (unsigned int irq = 0; irq < KVMK_PIC_IRQS; irq++)
		chip->pic_resample_fd[irq] = -1;
	chip->kroutes = calloc(chip->capacity, sizeof(*chip->kroutes));
	if (!chip->kroutes)
		return kvmk_err_resource("create_irqchip", ENOMEM, "split irqchip routes");
	r = kvmk_ioapic_create(&icfg, &chip->ioapic);
	if (r)
		return r;
	for (unsigned int pin = 0; pin < KVMKIT_IOAPIC_PINS; pin++)
		kvmk_ioapic_set_resample(chip->ioapic, pin, ioapic_resample, chip);
	r = kvmkit_bus_register(chip->vm->mmio, KVMK_IOAPIC_BASE, KVMK_IOAPIC_MMIO_SIZE, "ioapic",
				&kvmk_ioapic_mmio_ops, chip->ioapic);
	if (r)
		return r;
	chip->ioapic_mapped = true;
	chip->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (chip->epfd < 0)
		return kvmk_err_sys("epoll_create1", errno, "split irqchip");
	if (pipe2(chip->wake, O_CLOEXEC) < 0)
		return kvmk_err_sys("pipe2", errno, "split irqchip");
	if (epoll_ctl(chip->epfd, EPOLL_CTL_ADD, chip->wake[0], &ev) < 0)
		return kvmk_err_sys("epoll_ctl", errno, "split irqchip");
	if (cfg->pit) {
		r = split_pit_setup(chip);
		if (r)
			return r;
	}
	if (cfg->pic) {
		r = split_pic_setup(chip);
		if (r)
			return r;
	}
	r = pthread_create(&chip->thread, NULL, irqfd_thread, chip);
	if (r)
		return kvmk_err_sys("pthread_create", r, "split irqchip irqfd thread");
	chip->thread_started = true;
	return 0;
}

static void split_teardown(struct kvmkit_irqchip *chip)
{
	if (chip->thread_started) {
		ssize_t w = write(chip->wake[1], "x", 1);

		(void)w;
		pthread_join(chip->thread, NULL);
		chip->thread_started = false;
	}
	if (chip->ioapic_mapped)
		kvmkit_bus_unregister(chip->vm->mmio, KVMK_IOAPIC_BASE);
	if (chip->pit_mapped)
		kvmkit_bus_unregister(chip->vm->pio, KVMK_PIT_BASE);
	if (chip->portb_mapped)
		kvmkit_bus_unregister(chip->vm->pio, KVMK_PIT_PORTB);
	for (unsigned int i = 0; i < 3; i++)
		if (chip->pic_mapped[i])
			kvmkit_bus_unregister(chip->vm->pio, pic_ranges[i].base);
	kvmk_pic_destroy(chip->pic);
	chip->pic = NULL;
	if (chip->pit_fd >= 0)
		close(chip->pit_fd);
	kvmk_pit_destroy(chip->pit);
	chip->pit = NULL;
	if (chip->epfd >= 0)
		close(chip->epfd);
	if (chip->wake[0] >= 0)
		close(chip->wake[0]);
	if (chip->wake[1] >= 0)
		close(chip->wake[1]);
	kvmk_ioapic_destroy(chip->ioapic);
	chip->ioapic = NULL;
}

int kvmkit_irqchip_create(struct kvmkit_vm *vm, const struct kvmkit_irqchip_config *cfg,
			  struct kvmkit_irqchip **out)
{
	struct kvmkit_irqchip_config defcfg;
	struct kvmkit_irqchip *chip;
	int r, cap;

	if (!cfg) {
		kvmkit_irqchip_config_init(&defcfg);
		cfg = &defcfg;
	}
	if (vm->irqchip)
		return kvmk_err_state("irqchip", "created", "not yet created", "create_irqchip");
	if (vm->nr_created)
		return kvmk_err_state("vm", "has vCPUs", "no vCPU created yet (api.rst 4.24)",
				      "create_irqchip");
	if (cfg->mode != KVMKIT_IRQCHIP_KERNEL && cfg->mode != KVMKIT_IRQCHIP_SPLIT)
		return kvmk_err_param("create_irqchip", "mode", "kernel or split", "%d", cfg->mode);
	if (kvmk_check_extension(vm->fd, KVM_CAP_IRQCHIP) <= 0)
		return kvmk_err_unsupported("create_irqchip", ENOTSUP, "KVM_CAP_IRQCHIP");
	cap = kvmk_check_extension(vm->fd, KVM_CAP_IRQ_ROUTING);
	if (cap <= 0)
		return kvmk_err_unsupported("create_irqchip", ENOTSUP, "KVM_CAP_IRQ_ROUTING");

	chip = calloc(1, sizeof(*chip));
	if (!chip)
		return kvmk_err_resource("create_irqchip", ENOMEM, NULL);
	chip->vm = vm;
	chip->mode = cfg->mode;
	chip->has_msi_devid = kvmk_check_extension(vm->fd, KVM_CAP_MSI_DEVID) > 0;
	chip->epfd = chip->wake[0] = chip->wake[1] = chip->pit_fd = -1;
	chip->capacity = (unsigned int)cap < MAX_ROUTES ? (unsigned int)cap : MAX_ROUTES;
	pthread_mutex_init(&chip->lock, NULL);
	pthread_mutex_init(&chip->mirror_lock, NULL);
	chip->staged = calloc(chip->capacity, sizeof(*chip->staged));
	chip->committed = calloc(chip->capacity, sizeof(*chip->committed));
	if (!chip->staged || !chip->committed) {
		r = kvmk_err_resource("create_irqchip", ENOMEM, NULL);
		goto fail;
	}
	if (cfg->mode == KVMKIT_IRQCHIP_SPLIT) {
		r = split_setup(chip, cfg);
		if (r)
			goto fail;
	} else if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		r = kvmk_err_ioctl("KVM_CREATE_IRQCHIP", errno, NULL);
		goto fail;
	}
	/* Split mode's PIT is kvmkit's own (split_setup). */
	if (cfg->pit && cfg->mode == KVMKIT_IRQCHIP_KERNEL) {
		struct kvm_pit_config pc = { .flags = KVM_PIT_SPEAKER_DUMMY };

		/* api.rst 4.71: the PIT only after the irqchip. */
		if (ioctl(vm->fd, KVM_CREATE_PIT2, &pc) < 0) {
			r = kvmk_err_ioctl("KVM_CREATE_PIT2", errno, NULL);
			goto fail;
		}
		if (kvmk_check_extension(vm->fd, KVM_CAP_REINJECT_CONTROL) > 0) {
			struct kvm_reinject_control rc = { .pit_reinject = cfg->pit_reinject };

			if (ioctl(vm->fd, KVM_REINJECT_CONTROL, &rc) < 0)
				kvmk_warn("KVM_REINJECT_CONTROL: %s", strerror(errno));
		}
	}
	default_routes(chip->committed, &chip->ncommitted,
		       cfg->mode == KVMKIT_IRQCHIP_KERNEL || chip->pic);
	memcpy(chip->staged, chip->committed, chip->ncommitted * sizeof(*chip->staged));
	chip->nstaged = chip->ncommitted;
	/* The legacy pins are the platform's, not the allocator's. */
	for (unsigned int g = 0; g < 16; g++)
		chip->allocated[g] = 1;
	vm->irqchip = chip;
	kvmk_debug("%s irqchip created (%u routes max%s%s)", kvmkit_irqchip_mode_name(cfg->mode),
		   chip->capacity, !cfg->pit ? "" : chip->pit ? ", userspace PIT" : ", PIT",
		   chip->pic ? ", userspace PIC" : "");
	if (out)
		*out = chip;
	return 0;
fail:
	/* A half-created KVM irqchip cannot be removed; the VM is unusable for
	 * interrupts, but kvmkit's side is left clean. */
	kvmk_irqchip_free(chip);
	return r;
}

void kvmk_irqchip_free(struct kvmkit_irqchip *chip)
{
	if (!chip)
		return;
	split_teardown(chip);
	pthread_mutex_destroy(&chip->mirror_lock);
	free(chip->staged);
	free(chip->committed);
	free(chip->kroutes);
	pthread_mutex_destroy(&chip->lock);
	free(chip);
}

struct kvmkit_irqchip *kvmkit_vm_irqchip(struct kvmkit_vm *vm)
{
	return vm->irqchip;
}

unsigned int kvmkit_irqchip_pins(const struct kvmkit_irqchip *chip)
{
	return KVMKIT_IOAPIC_PINS;
}

unsigned int kvmkit_irqchip_route_capacity(const struct kvmkit_irqchip *chip)
{
	return chip->capacity;
}

/* ---- routing ------------------------------------------------------------ */

static int check_gsi(const char *op, uint32_t gsi)
{
	if (gsi >= KVMKIT_MAX_GSI)
		return kvmk_err_param(op, "gsi", "beyond kvmkit's GSI range", "%u (max %u)", gsi,
				      KVMKIT_MAX_GSI - 1);
	return 0;
}

static int stage(struct kvmkit_irqchip *chip, const struct kvm_irq_routing_entry *e)
{
	if (chip->nstaged >= chip->capacity)
		return kvmk_err_resource("kvmkit_irq_route", ENOSPC,
					 "routing table full (%u entries, KVM_CAP_IRQ_ROUTING)",
					 chip->capacity);
	chip->staged[chip->nstaged++] = *e;
	return 0;
}

static void unstage_gsi(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	unsigned int j = 0;

	for (unsigned int i = 0; i < chip->nstaged; i++)
		if (chip->staged[i].gsi != gsi)
			chip->staged[j++] = chip->staged[i];
	chip->nstaged = j;
}

int kvmkit_irq_route_irqchip(struct kvmkit_irqchip *chip, uint32_t gsi, uint32_t irqchip,
			     uint32_t pin)
{
	const char *op = "kvmkit_irq_route_irqchip";
	struct kvm_irq_routing_entry e = { .gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP };
	int r = check_gsi(op, gsi);

	if (r)
		return r;
	if (irqchip > KVMKIT_IRQCHIP_IOAPIC)
		return kvmk_err_param(op, "irqchip", "must be 0 (PIC master), 1 (PIC slave) or 2 (IOAPIC)",
				      "%u", irqchip);
	if (chip->mode == KVMKIT_IRQCHIP_SPLIT && irqchip != KVMKIT_IRQCHIP_IOAPIC && !chip->pic)
		return kvmk_err_unsupported(op, ENOTSUP, "no PIC in this split irqchip (cfg.pic off)");
	if (pin >= (irqchip == KVMKIT_IRQCHIP_IOAPIC ? KVMKIT_IOAPIC_PINS : 8u))
		return kvmk_err_param(op, "pin", "beyond the chip's pins", "%u (chip %u)", pin,
				      irqchip);
	e.u.irqchip.irqchip = irqchip;
	e.u.irqchip.pin = pin;
	pthread_mutex_lock(&chip->lock);
	/* An irqchip route may sit beside other irqchip routes of the same GSI
	 * (PIC + IOAPIC), but replaces an MSI route; the same (chip, pin) is not
	 * added twice. */
	for (unsigned int i = 0; i < chip->nstaged; i++) {
		const struct kvm_irq_routing_entry *s = &chip->staged[i];

		if (s->gsi != gsi)
			continue;
		if (s->type != KVM_IRQ_ROUTING_IRQCHIP) {
			unstage_gsi(chip, gsi);
			break;
		}
		if (s->u.irqchip.irqchip == irqchip) {
			/* one pin per chip per GSI: replace it */
			chip->staged[i].u.irqchip.pin = pin;
			pthread_mutex_unlock(&chip->lock);
			return 0;
		}
	}
	r = stage(chip, &e);
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int kvmkit_irq_route_msi(struct kvmkit_irqchip *chip, uint32_t gsi, uint64_t address,
			 uint32_t data, int32_t devid)
{
	const char *op = "kvmkit_irq_route_msi";
	struct kvm_irq_routing_entry e = { .gsi = gsi, .type = KVM_IRQ_ROUTING_MSI };
	int r = check_gsi(op, gsi);

	if (r)
		return r;
	e.u.msi.address_lo = (uint32_t)address;
	e.u.msi.address_hi = (uint32_t)(address >> 32);
	e.u.msi.data = data;
	if (devid >= 0) {
		/* api.rst 4.52: only where the VM reports KVM_CAP_MSI_DEVID. */
		if (!chip->has_msi_devid)
			return kvmk_err_unsupported(op, ENOTSUP, "MSI device ids (KVM_CAP_MSI_DEVID)");
		e.flags = KVM_MSI_VALID_DEVID;
		e.u.msi.devid = (uint32_t)devid;
	}
	pthread_mutex_lock(&chip->lock);
	unstage_gsi(chip, gsi); /* an MSI route is the GSI's only entry */
	r = stage(chip, &e);
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int kvmkit_irq_route_remove(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	int r = check_gsi("kvmkit_irq_route_remove", gsi);

	if (r)
		return r;
	pthread_mutex_lock(&chip->lock);
	if (chip->irqfds[gsi]) {
		pthread_mutex_unlock(&chip->lock);
		/* Pitfall: deassign irqfds before their route goes away. */
		return kvmk_err_state("gsi", "has irqfds bound", "no irqfd bound", "route_remove");
	}
	unstage_gsi(chip, gsi);
	pthread_mutex_unlock(&chip->lock);
	return 0;
}

/* The one MSI entry of @gsi in @tab, or NULL if @gsi has none or more. */
static const struct kvm_irq_routing_entry *only_msi(const struct kvm_irq_routing_entry *tab,
						    unsigned int n, uint32_t gsi)
{
	const struct kvm_irq_routing_entry *found = NULL;

	for (unsigned int i = 0; i < n; i++) {
		if (tab[i].gsi != gsi)
			continue;
		if (found || tab[i].type != KVM_IRQ_ROUTING_MSI)
			return NULL;
		found = &tab[i];
	}
	return found;
}

static int split_irqfd_add(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd);
static int split_kernel_irqfd_add(struct kvmkit_irqchip *chip, uint32_t gsi, int fd);

/* Split mode, chip->lock held: deassigns kernel-bound irqfd @k. */
static int kernel_irqfd_drop(struct kvmkit_irqchip *chip, struct kernel_irqfd *k)
{
	struct kvm_irqfd d = { .fd = (uint32_t)k->fd, .gsi = k->gsi,
			       .flags = KVM_IRQFD_FLAG_DEASSIGN };

	if (ioctl(chip->vm->fd, KVM_IRQFD, &d) < 0)
		return kvmk_err_ioctl("KVM_IRQFD", errno, "deassign gsi %u fd %d", k->gsi, k->fd);
	k->used = false;
	chip->irqfds[k->gsi]--;
	return 0;
}

/*
 * Split mode (chip->lock held). kvmkit interprets its table itself; the
 * kernel gets the MSI routes of GSIs past the IOAPIC's, for irqfds bound
 * there. A kernel-bound irqfd whose GSI stops being a plain MSI moves to
 * kvmkit's thread first: deassigned before its kernel route goes (a
 * signal in between waits in the eventfd and is seen by the thread); one
 * whose GSI becomes a plain MSI moves to the kernel after the route is in.
 */
static int split_commit(struct kvmkit_irqchip *chip)
{
	unsigned int nk = 0;
	int r;

	for (unsigned int i = 0; i < MAX_USER_IRQFDS; i++) {
		struct kernel_irqfd *k = &chip->kernel_irqfd[i];

		if (!k->used || only_msi(chip->staged, chip->nstaged, k->gsi))
			continue;
		r = kernel_irqfd_drop(chip, k);
		if (!r)
			r = split_irqfd_add(chip, k->gsi, k->fd, -1);
		if (r)
			return r;
		kvmk_debug("irqfd %d of gsi %u moved to the interrupt thread", k->fd, k->gsi);
	}
	pthread_mutex_lock(&chip->mirror_lock);
	for (unsigned int i = 0; i < chip->nstaged; i++) {
		const struct kvm_irq_routing_entry *e = &chip->staged[i];

		if (e->gsi >= chip->split_routes && e->type == KVM_IRQ_ROUTING_MSI &&
		    only_msi(chip->staged, chip->nstaged, e->gsi))
			chip->kroutes[nk++] = *e;
	}
	chip->nkroutes = nk;
	r = commit_mirrors(chip);
	pthread_mutex_unlock(&chip->mirror_lock);
	if (r)
		return r;
	/* The other way: a thread-serviced edge irqfd whose GSI is now a plain
	 * MSI route in the kernel's table goes to the kernel. Out of epoll
	 * first; KVM picks up a signal that came in between when assigned.
	 * The table is committed by now: a failure here only leaves the irqfd
	 * with the thread (delivered, just slower), it does not fail the
	 * commit. */
	for (unsigned int i = 0; i < MAX_USER_IRQFDS; i++) {
		struct user_irqfd *u = &chip->user_irqfds[i];

		if (!u->used || u->resample_fd >= 0 || u->gsi < chip->split_routes ||
		    !only_msi(chip->staged, chip->nstaged, u->gsi))
			continue;
		epoll_ctl(chip->epfd, EPOLL_CTL_DEL, u->fd, NULL);
		u->used = false;
		chip->irqfds[u->gsi]--;
		if (split_kernel_irqfd_add(chip, u->gsi, u->fd)) {
			kvmk_warn("irqfd %d of gsi %u stays with the interrupt thread: %s", u->fd,
				  u->gsi, kvmkit_strerror());
			/* Its slot and epoll entry were just freed: this cannot fail. */
			split_irqfd_add(chip, u->gsi, u->fd, -1);
			continue;
		}
		kvmk_debug("irqfd %d of gsi %u moved to the kernel", u->fd, u->gsi);
	}
	return 0;
}

/* Kernel mode (chip->lock held): the staged table is the kernel's. */
static int kernel_commit(struct kvmkit_irqchip *chip)
{
	struct kvm_irq_routing *tab;
	int r = 0;

	tab = calloc(1, sizeof(*tab) + chip->nstaged * sizeof(tab->entries[0]));
	if (!tab)
		return kvmk_err_resource("kvmkit_irq_routes_commit", ENOMEM, NULL);
	tab->nr = chip->nstaged;
	memcpy(tab->entries, chip->staged, chip->nstaged * sizeof(tab->entries[0]));
	if (ioctl(chip->vm->fd, KVM_SET_GSI_ROUTING, tab) < 0)
		r = kvmk_err_ioctl("KVM_SET_GSI_ROUTING", errno, "%u entries", chip->nstaged);
	free(tab);
	return r;
}

int kvmkit_irq_routes_commit(struct kvmkit_irqchip *chip)
{
	int r;

	pthread_mutex_lock(&chip->lock);
	r = chip->mode == KVMKIT_IRQCHIP_SPLIT ? split_commit(chip) : kernel_commit(chip);
	if (r) {
		/* The kernel kept its previous table; so do we. */
		memcpy(chip->staged, chip->committed, chip->ncommitted * sizeof(*chip->staged));
		chip->nstaged = chip->ncommitted;
	} else {
		memcpy(chip->committed, chip->staged, chip->nstaged * sizeof(*chip->staged));
		chip->ncommitted = chip->nstaged;
	}
	pthread_mutex_unlock(&chip->lock);
	return r;
}

unsigned int kvmkit_irq_route_count(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	unsigned int n = 0;

	pthread_mutex_lock(&chip->lock);
	for (unsigned int i = 0; i < chip->ncommitted; i++)
		n += chip->committed[i].gsi == gsi;
	pthread_mutex_unlock(&chip->lock);
	return n;
}

int kvmkit_setup_irq_routing(struct kvmkit_irqchip *chip, uint32_t gsi, uint32_t irqchip,
			     uint32_t pin)
{
	int r = kvmkit_irq_route_irqchip(chip, gsi, irqchip, pin);

	return r ? r : kvmkit_irq_routes_commit(chip);
}

/* ---- allocator ---------------------------------------------------------- */

static int alloc_in(struct kvmkit_irqchip *chip, uint32_t lo, uint32_t hi, const char *what)
{
	pthread_mutex_lock(&chip->lock);
	for (uint32_t g = lo; g < hi; g++) {
		if (!chip->allocated[g]) {
			chip->allocated[g] = 1;
			memset(&chip->stats[g], 0, sizeof(chip->stats[g]));
			pthread_mutex_unlock(&chip->lock);
			return (int)g;
		}
	}
	pthread_mutex_unlock(&chip->lock);
	return kvmk_err_resource("kvmkit_gsi_alloc", ENOSPC, "no free %s GSI in %u..%u", what, lo,
				 hi - 1);
}

int kvmkit_gsi_alloc_line(struct kvmkit_irqchip *chip)
{
	return alloc_in(chip, 16, KVMKIT_IOAPIC_PINS, "IOAPIC line");
}

int kvmkit_gsi_alloc_msi(struct kvmkit_irqchip *chip)
{
	uint32_t hi = chip->capacity < KVMKIT_MAX_GSI ? chip->capacity : KVMKIT_MAX_GSI;

	return alloc_in(chip, KVMKIT_IOAPIC_PINS, hi, "MSI");
}

int kvmkit_gsi_free(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	int r = check_gsi("kvmkit_gsi_free", gsi);

	if (r)
		return r;
	if (gsi < 16)
		return kvmk_err_param("kvmkit_gsi_free", "gsi", "legacy ISA GSIs are not allocated",
				      "%u", gsi);
	pthread_mutex_lock(&chip->lock);
	if (!chip->allocated[gsi] || chip->irqfds[gsi]) {
		bool bound = chip->allocated[gsi];

		pthread_mutex_unlock(&chip->lock);
		return bound ? kvmk_err_state("gsi", "has irqfds bound", "no irqfd bound", "gsi_free")
			     : kvmk_err_param("kvmkit_gsi_free", "gsi", "not allocated", "%u", gsi);
	}
	chip->allocated[gsi] = 0;
	pthread_mutex_unlock(&chip->lock);
	return 0;
}

/* ---- lines and MSIs ----------------------------------------------------- */

static void account(struct kvmkit_irqchip *chip, uint32_t gsi, int status)
{
	struct kvmkit_gsi_stats *s = &chip->stats[gsi];

	__atomic_add_fetch(&s->asserts, 1, __ATOMIC_RELAXED);
	if (status > 0)
		__atomic_add_fetch(&s->deliveries, 1, __ATOMIC_RELAXED);
	else if (status == 0)
		__atomic_add_fetch(&s->coalesced, 1, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&s->masked, 1, __ATOMIC_RELAXED);
}

int kvmkit_irq_line(struct kvmkit_irqchip *chip, uint32_t gsi, bool level)
{
	struct kvm_irq_level il = { .irq = gsi, .level = level };
	int r = check_gsi("kvmkit_irq_line", gsi);

	if (r)
		return r;
	if (chip->mode == KVMKIT_IRQCHIP_SPLIT) {
		int st = split_set_gsi(chip, gsi, level, -1);

		if (!level)
			return 0;
		account(chip, gsi, st);
		return st < 0 ? KVMKIT_IRQ_MASKED : st;
	}
	if (ioctl(chip->vm->fd, KVM_IRQ_LINE_STATUS, &il) < 0)
		return kvmk_err_ioctl("KVM_IRQ_LINE_STATUS", errno, "gsi %u level %d", gsi, level);
	/* The kernel's status only means something for an assertion (a
	 * de-assert always reports 1). */
	if (!level)
		return 0;
	account(chip, gsi, il.status);
	return il.status < 0 ? KVMKIT_IRQ_MASKED : il.status;
}

int kvmkit_irq_pulse(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	int r = kvmkit_irq_line(chip, gsi, true);
	int r2;

	if (r < 0 && r != KVMKIT_IRQ_MASKED)
		return r;
	/* api.rst 4.25: an edge is level 1 followed by level 0. */
	r2 = kvmkit_irq_line(chip, gsi, false);
	if (r2 < 0)
		return r2;
	return r;
}

int kvmkit_set_irq_line(struct kvmkit_irqchip *chip, uint32_t irq, bool active)
{
	int r = kvmkit_irq_line(chip, irq, active);

	return (r < 0 && r != KVMKIT_IRQ_MASKED) ? r : 0;
}

int kvmkit_signal_msi(struct kvmkit_irqchip *chip, uint64_t address, uint32_t data, int32_t devid)
{
	int r;

	if (devid >= 0 && !chip->has_msi_devid)
		return kvmk_err_unsupported("kvmkit_signal_msi", ENOTSUP,
					    "MSI device ids (KVM_CAP_MSI_DEVID)");
	r = send_msi(chip, address, data, devid >= 0 ? KVM_MSI_VALID_DEVID : 0,
		     devid >= 0 ? (uint32_t)devid : 0);
	if (r < 0)
		return kvmk_err_ioctl("KVM_SIGNAL_MSI", -r, "address 0x%llx data 0x%x",
				      (unsigned long long)address, data);
	return r;
}

/* ---- irqfd -------------------------------------------------------------- */

/* Split mode: the irqfd thread watches @fd (chip->lock held). */
static int split_irqfd_add(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd)
{
	struct epoll_event ev = { .events = EPOLLIN };

	for (uint32_t i = 0; i < MAX_USER_IRQFDS; i++) {
		struct user_irqfd *u = &chip->user_irqfds[i];

		if (u->used)
			continue;
		ev.data.u32 = i;
		*u = (struct user_irqfd){ .used = true, .fd = fd, .resample_fd = resample_fd, .gsi = gsi };
		if (epoll_ctl(chip->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			u->used = false;
			return kvmk_err_sys("epoll_ctl", errno, "irqfd %d of gsi %u", fd, gsi);
		}
		chip->irqfds[gsi]++;
		return 0;
	}
	return kvmk_err_resource("kvmkit_irqfd_bind", ENOSPC, "more than %d irqfds in split mode",
				 MAX_USER_IRQFDS);
}

static int split_irqfd_remove(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	struct user_irqfd u = { 0 };

	pthread_mutex_lock(&chip->lock);
	for (uint32_t i = 0; i < MAX_USER_IRQFDS; i++) {
		struct kernel_irqfd *k = &chip->kernel_irqfd[i];
		int r;

		if (!k->used || k->fd != fd || k->gsi != gsi)
			continue;
		r = kernel_irqfd_drop(chip, k);
		pthread_mutex_unlock(&chip->lock);
		return r;
	}
	for (uint32_t i = 0; i < MAX_USER_IRQFDS; i++) {
		if (chip->user_irqfds[i].used && chip->user_irqfds[i].fd == fd &&
		    chip->user_irqfds[i].gsi == gsi) {
			u = chip->user_irqfds[i];
			chip->user_irqfds[i].used = false;
			epoll_ctl(chip->epfd, EPOLL_CTL_DEL, fd, NULL);
			if (chip->irqfds[gsi])
				chip->irqfds[gsi]--;
			break;
		}
	}
	pthread_mutex_unlock(&chip->lock);
	if (!u.used)
		return kvmk_err_param("kvmkit_irqfd_unbind", "fd", "not bound to this gsi", "%d (gsi %u)",
				      fd, gsi);
	/* As in KVM: deassigning a level irqfd de-asserts its line. */
	if (u.resample_fd >= 0 && clear_resample_slots(chip, u.resample_fd))
		split_set_gsi(chip, gsi, false, -1);
	return 0;
}

/* Split mode, chip->lock held: the GSI's kernel route exists (split_commit
 * put it there when it was committed). */
static int split_kernel_irqfd_add(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };

	for (uint32_t i = 0; i < MAX_USER_IRQFDS; i++) {
		struct kernel_irqfd *k = &chip->kernel_irqfd[i];

		if (k->used)
			continue;
		if (ioctl(chip->vm->fd, KVM_IRQFD, &irqfd) < 0)
			return kvmk_err_ioctl("KVM_IRQFD", errno, "gsi %u fd %d (split, MSI)", gsi,
					      fd);
		*k = (struct kernel_irqfd){ .used = true, .fd = fd, .gsi = gsi };
		chip->irqfds[gsi]++;
		return 0;
	}
	return kvmk_err_resource("kvmkit_irqfd_bind", ENOSPC, "more than %d kernel irqfds in split mode",
				 MAX_USER_IRQFDS);
}

int kvmkit_irqfd_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };
	bool routed = false;
	int r = check_gsi("kvmkit_irqfd_bind", gsi);

	if (r)
		return r;
	if (fd < 0)
		return kvmk_err_param("kvmkit_irqfd_bind", "fd", "not a file descriptor", "%d", fd);
	if (resample_fd >= 0 && chip->mode == KVMKIT_IRQCHIP_KERNEL) {
		if (kvmk_check_extension(chip->vm->fd, KVM_CAP_IRQFD_RESAMPLE) <= 0)
			return kvmk_err_unsupported("kvmkit_irqfd_bind", ENOTSUP,
						    "KVM_CAP_IRQFD_RESAMPLE");
		irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irqfd.resamplefd = (uint32_t)resample_fd;
	}
	pthread_mutex_lock(&chip->lock);
	for (unsigned int i = 0; i < chip->ncommitted && !routed; i++)
		routed = chip->committed[i].gsi == gsi;
	if (!routed) {
		pthread_mutex_unlock(&chip->lock);
		/* Pitfall: an irqfd only after its route exists. */
		return kvmk_err_state("gsi", "unrouted", "a committed route", "irqfd_bind");
	}
	if (chip->mode == KVMKIT_IRQCHIP_SPLIT) {
		if (resample_fd < 0 && gsi >= chip->split_routes &&
		    only_msi(chip->committed, chip->ncommitted, gsi))
			r = split_kernel_irqfd_add(chip, gsi, fd);
		else
			r = split_irqfd_add(chip, gsi, fd, resample_fd);
	} else if (ioctl(chip->vm->fd, KVM_IRQFD, &irqfd) < 0) {
		r = kvmk_err_ioctl("KVM_IRQFD", errno, "gsi %u fd %d%s", gsi, fd,
				   resample_fd >= 0 ? " (resample)" : "");
	} else {
		chip->irqfds[gsi]++;
	}
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int kvmkit_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN };
	int r = check_gsi("kvmkit_irqfd_unbind", gsi);

	if (r)
		return r;
	if (chip->mode == KVMKIT_IRQCHIP_SPLIT)
		return split_irqfd_remove(chip, gsi, fd);
	pthread_mutex_lock(&chip->lock);
	if (ioctl(chip->vm->fd, KVM_IRQFD, &irqfd) < 0) {
		r = kvmk_err_ioctl("KVM_IRQFD", errno, "deassign gsi %u fd %d", gsi, fd);
	} else if (chip->irqfds[gsi]) {
		chip->irqfds[gsi]--;
	}
	pthread_mutex_unlock(&chip->lock);
	return r;
}

int kvmkit_irqfd_signal(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	uint64_t one = 1;
	int r = check_gsi("kvmkit_irqfd_signal", gsi);

	if (r)
		return r;
	/* An eventfd write only fails if the counter would overflow, i.e. the
	 * interrupt is already pending: not an error for an edge. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return kvmk_err_sys("write", errno, "irqfd %d of gsi %u", fd, gsi);
	__atomic_add_fetch(&chip->stats[gsi].irqfd_signals, 1, __ATOMIC_RELAXED);
	return 0;
}

/* ---- ioeventfd ---------------------------------------------------------- */

static int ioeventfd(struct kvmkit_vm *vm, uint64_t addr, uint32_t len, unsigned int flags,
		     uint64_t datamatch, int fd, bool assign)
{
	const char *op = assign ? "kvmkit_ioeventfd_add" : "kvmkit_ioeventfd_remove";
	struct kvm_ioeventfd io = { .datamatch = datamatch, .addr = addr, .len = len, .fd = fd };

	if (len != 0 && len != 1 && len != 2 && len != 4 && len != 8)
		return kvmk_err_param(op, "len", "must be 0, 1, 2, 4 or 8", "%u", len);
	if ((flags & KVMKIT_IOEVENTFD_PIO) && (len == 8 || addr + (len ? len : 1) > 0x10000))
		return kvmk_err_param(op, "addr", "port I/O is at most 4 bytes below 0x10000",
				      "0x%llx len %u", (unsigned long long)addr, len);
	if (len == 0 && (flags & KVMKIT_IOEVENTFD_DATAMATCH))
		return kvmk_err_param(op, "len", "datamatch needs a length", "0");
	if (len == 0 && kvmk_check_extension(vm->fd, KVM_CAP_IOEVENTFD_ANY_LENGTH) <= 0)
		return kvmk_err_unsupported(op, ENOTSUP, "KVM_CAP_IOEVENTFD_ANY_LENGTH");
	if (fd < 0)
		return kvmk_err_param(op, "fd", "not a file descriptor", "%d", fd);
	if (flags & KVMKIT_IOEVENTFD_PIO)
		io.flags |= KVM_IOEVENTFD_FLAG_PIO;
	if (flags & KVMKIT_IOEVENTFD_DATAMATCH)
		io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (!assign)
		io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	if (ioctl(vm->fd, KVM_IOEVENTFD, &io) < 0)
		return kvmk_err_ioctl("KVM_IOEVENTFD", errno, "%s %s 0x%llx len %u",
				      assign ? "assign" : "deassign",
				      (flags & KVMKIT_IOEVENTFD_PIO) ? "pio" : "mmio",
				      (unsigned long long)addr, len);
	return 0;
}

int kvmkit_ioeventfd_add(struct kvmkit_vm *vm, uint64_t addr, uint32_t len, unsigned int flags,
			 uint64_t datamatch, int fd)
{
	return ioeventfd(vm, addr, len, flags, datamatch, fd, true);
}

int kvmkit_ioeventfd_remove(struct kvmkit_vm *vm, uint64_t addr, uint32_t len,
			    unsigned int flags, uint64_t datamatch, int fd)
{
	return ioeventfd(vm, addr, len, flags, datamatch, fd, false);
}

/* ---- statistics --------------------------------------------------------- */

int kvmkit_irq_gsi_stats(struct kvmkit_irqchip *chip, uint32_t gsi, struct kvmkit_gsi_stats *out)
{
	int r = check_gsi("kvmkit_irq_gsi_stats", gsi);

	if (r)
		return r;
	out->asserts = __atomic_load_n(&chip->stats[gsi].asserts, __ATOMIC_RELAXED);
	out->deliveries = __atomic_load_n(&chip->stats[gsi].deliveries, __ATOMIC_RELAXED);
	out->coalesced = __atomic_load_n(&chip->stats[gsi].coalesced, __ATOMIC_RELAXED);
	out->masked = __atomic_load_n(&chip->stats[gsi].masked, __ATOMIC_RELAXED);
	out->irqfd_signals = __atomic_load_n(&chip->stats[gsi].irqfd_signals, __ATOMIC_RELAXED);
	pthread_mutex_lock(&chip->lock);
	/* Kernel mode: all of them; split mode: those on the kernel list. */
	out->irqfds_kernel = chip->mode == KVMKIT_IRQCHIP_KERNEL ? chip->irqfds[gsi] : 0;
	for (unsigned int i = 0; chip->mode == KVMKIT_IRQCHIP_SPLIT && i < MAX_USER_IRQFDS; i++)
		out->irqfds_kernel += chip->kernel_irqfd[i].used && chip->kernel_irqfd[i].gsi == gsi;
	out->irqfds_thread = chip->irqfds[gsi] - out->irqfds_kernel;
	pthread_mutex_unlock(&chip->lock);
	return 0;
}
