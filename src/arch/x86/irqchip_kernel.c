// SPDX-License-Identifier: MIT
/*
 * x86 in-kernel irqchip back end: KVM's PIC pair, IOAPIC and LAPICs
 * (KVM_CREATE_IRQCHIP) and optionally its PIT. kvmkit's table goes to KVM
 * whole, lines are KVM_IRQ_LINE_STATUS, irqfds are KVM's own.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#define KVMK_LOG_MODULE "irq-kernel"
#include "core/internal.h"
#include <kvmkit/vcpu.h>
#include "arch/x86/irqchip_x86.h"

struct kernel_chip {
	int vm_fd;
	bool pit;
	bool resample; /* KVM_CAP_IRQFD_RESAMPLE */
	/* KVM_REINJECT_CONTROL waits for SRCU grace periods (0.1-25 ms here,
	 * often 10-15) as it unregisters the PIT's ack and mask notifiers,
	 * holding the PIT's lock throughout. vCPU 0 takes that lock in its
	 * first KVM_RUN (and after each move to another host CPU) to migrate
	 * the PIT timer, so it still waits for what is left: the thread only
	 * overlaps the wait with the rest of set-up (docs/BENCHMARKS.md). So
	 * the thread waits until vCPU 0 has been through its first KVM_RUN:
	 * the guest starts at once, and vCPU 0 meets the lock again at most
	 * once, when it next moves to another host CPU. Until then the PIT
	 * reinjects lost ticks, which a guest that just started has none of. */
	struct kvmkit_vm *vm;
	pthread_t reinject_thread;
	bool reinject_started;
	struct kvm_reinject_control reinject;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping; /* under lock: the irqchip is going away */
};

static bool vcpu0_has_run(struct kernel_chip *k)
{
	struct kvmkit_vcpu *v = kvmkit_vm_vcpu(k->vm, 0);
	struct kvmkit_vcpu_stats st;

	if (!v)
		return false;
	kvmkit_vcpu_get_stats(v, &st);
	return st.runs >= 2; /* back from its first KVM_RUN and in again */
}

static void *reinject_thread(void *arg)
{
	struct kernel_chip *k = arg;
	bool stop;

	pthread_mutex_lock(&k->lock);
	while (!k->stopping && !vcpu0_has_run(k)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&k->cond, &k->lock, &ts);
	}
	stop = k->stopping;
	pthread_mutex_unlock(&k->lock);
	if (!stop && ioctl(k->vm_fd, KVM_REINJECT_CONTROL, &k->reinject) < 0)
		kvmk_warn("KVM_REINJECT_CONTROL: %s", strerror(errno));
	return NULL;
}

static int kernel_create(struct kvmkit_irqchip *chip, const struct kvmkit_irqchip_config *cfg)
{
	struct kernel_chip *k = calloc(1, sizeof(*k));

	if (!k)
		return kvmk_err_resource("create_irqchip", ENOMEM, NULL);
	chip->priv = k;
	k->vm = chip->vm;
	k->vm_fd = kvmkit_vm_fd(chip->vm);
	pthread_mutex_init(&k->lock, NULL);
	kvmk_cond_init_monotonic(&k->cond);
	kvmk_x86_gsi_layout(chip);
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return kvmk_err_ioctl("KVM_CREATE_IRQCHIP", errno, NULL);
	k->resample = kvmkit_vm_check_cap(chip->vm, KVM_CAP_IRQFD_RESAMPLE) > 0;
	if (cfg->pit) {
		struct kvm_pit_config pc = { .flags = KVM_PIT_SPEAKER_DUMMY };

		/* api.rst 4.71: the PIT only after the irqchip. */
		if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pc) < 0)
			return kvmk_err_ioctl("KVM_CREATE_PIT2", errno, NULL);
		k->pit = true;
		/* KVM creates the PIT in reinject mode; only leaving it costs. */
		if (!cfg->pit_reinject &&
		    kvmkit_vm_check_cap(chip->vm, KVM_CAP_REINJECT_CONTROL) > 0) {
			k->reinject.pit_reinject = 0;
			k->reinject_started =
				pthread_create(&k->reinject_thread, NULL, reinject_thread, k) == 0;
			if (!k->reinject_started &&
			    ioctl(k->vm_fd, KVM_REINJECT_CONTROL, &k->reinject) < 0)
				kvmk_warn("KVM_REINJECT_CONTROL: %s", strerror(errno));
		}
	}
	return 0;
}

static void kernel_destroy(struct kvmkit_irqchip *chip)
{
	struct kernel_chip *k = chip->priv;

	if (!k)
		return;
	if (k->reinject_started) {
		pthread_mutex_lock(&k->lock);
		k->stopping = true;
		pthread_cond_signal(&k->cond);
		pthread_mutex_unlock(&k->lock);
		pthread_join(k->reinject_thread, NULL);
	}
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	free(k);
	chip->priv = NULL;
}

static void kernel_default_routes(struct kvmkit_irqchip *chip, struct kvm_irq_routing_entry *tab,
				  unsigned int *n)
{
	kvmk_x86_default_routes(tab, n, true);
}

static int kernel_check_route(struct kvmkit_irqchip *chip, uint32_t irqchip, uint32_t pin)
{
	return kvmk_x86_check_route(irqchip, pin);
}

static int kernel_commit(struct kvmkit_irqchip *chip, const struct kvm_irq_routing_entry *tab,
			 unsigned int n)
{
	struct kernel_chip *k = chip->priv;

	return kvmk_x86_set_gsi_routing(k->vm_fd, tab, n, NULL, 0);
}

static int kernel_set_line(struct kvmkit_irqchip *chip, uint32_t gsi, bool level, bool *failed)
{
	struct kernel_chip *k = chip->priv;
	struct kvm_irq_level il = { .irq = gsi, .level = level };

	if (ioctl(k->vm_fd, KVM_IRQ_LINE_STATUS, &il) < 0) {
		*failed = true;
		return kvmk_err_ioctl("KVM_IRQ_LINE_STATUS", errno, "gsi %u level %d", gsi, level);
	}
	return il.status;
}

static int kernel_irqfd_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd)
{
	struct kernel_chip *k = chip->priv;
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };

	if (resample_fd >= 0) {
		if (!k->resample)
			return kvmk_err_unsupported("kvmkit_irqfd_bind", ENOTSUP,
						    "KVM_CAP_IRQFD_RESAMPLE");
		irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irqfd.resamplefd = (uint32_t)resample_fd;
	}
	if (ioctl(k->vm_fd, KVM_IRQFD, &irqfd) < 0)
		return kvmk_err_ioctl("KVM_IRQFD", errno, "gsi %u fd %d%s", gsi, fd,
				      resample_fd >= 0 ? " (resample)" : "");
	return 0;
}

static int kernel_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	struct kernel_chip *k = chip->priv;

	return kvmk_x86_irqfd_deassign(k->vm_fd, gsi, fd);
}

static unsigned int kernel_irqfds_in_kernel(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	return chip->irqfds[gsi];
}

/* State: u32 flags (bit 0: a PIT), KVM's three chips (PIC master, PIC
 * slave, IOAPIC) as struct kvm_irqchip, then struct kvm_pit_state2. */
#define KSTATE_PIT 1u
#define NR_CHIPS 3

static int kernel_save(struct kvmkit_irqchip *chip, struct kvmk_blob *out)
{
	struct kernel_chip *k = chip->priv;
	int r = kvmk_blob_put_u32(out, k->pit ? KSTATE_PIT : 0);

	for (uint32_t id = 0; !r && id < NR_CHIPS; id++) {
		struct kvm_irqchip c;

		memset(&c, 0, sizeof(c));
		c.chip_id = id;
		if (ioctl(k->vm_fd, KVM_GET_IRQCHIP, &c) < 0)
			return kvmk_err_ioctl("KVM_GET_IRQCHIP", errno, "chip %u", id);
		r = kvmk_blob_put(out, &c, sizeof(c));
	}
	if (!r && k->pit) {
		struct kvm_pit_state2 ps;

		memset(&ps, 0, sizeof(ps));
		if (ioctl(k->vm_fd, KVM_GET_PIT2, &ps) < 0)
			return kvmk_err_ioctl("KVM_GET_PIT2", errno, NULL);
		r = kvmk_blob_put(out, &ps, sizeof(ps));
	}
	return r;
}

static int kernel_restore(struct kvmkit_irqchip *chip, const uint8_t *p, size_t len)
{
	struct kvmk_reader rd = { p, len, "kvmkit_irqchip_restore" };
	struct kernel_chip *k = chip->priv;
	struct kvm_irqchip c[NR_CHIPS];
	struct kvm_pit_state2 ps;
	uint32_t flags;
	int r = kvmk_reader_u32(&rd, &flags, "kernel irqchip flags");

	if (!r && flags & ~KSTATE_PIT)
		r = kvmk_err_format(rd.op, "kernel irqchip flags 0x%x", flags);
	if (!r && !!(flags & KSTATE_PIT) != k->pit)
		r = kvmk_err_format(rd.op, "saved %s a PIT, this irqchip has %s",
				    (flags & KSTATE_PIT) ? "with" : "without",
				    k->pit ? "one" : "none");
	for (uint32_t id = 0; !r && id < NR_CHIPS; id++) {
		r = kvmk_reader_get(&rd, &c[id], sizeof(c[id]), "kernel irqchip");
		if (!r && (c[id].chip_id != id || c[id].pad))
			r = kvmk_err_format(rd.op, "chip %u: id %u pad %u", id, c[id].chip_id,
					    c[id].pad);
	}
	if (!r && k->pit)
		r = kvmk_reader_get(&rd, &ps, sizeof(ps), "PIT");
	if (!r && rd.left)
		r = kvmk_err_format(rd.op, "%zu bytes past the kernel irqchip state", rd.left);
	if (r)
		return r;
	/* Checked whole; KVM checks the register values themselves. */
	for (uint32_t id = 0; id < NR_CHIPS; id++)
		if (ioctl(k->vm_fd, KVM_SET_IRQCHIP, &c[id]) < 0)
			return kvmk_err_ioctl("KVM_SET_IRQCHIP", errno, "chip %u", id);
	if (k->pit && ioctl(k->vm_fd, KVM_SET_PIT2, &ps) < 0)
		return kvmk_err_ioctl("KVM_SET_PIT2", errno, NULL);
	return 0;
}

const struct kvmk_irqchip_ops kvmk_x86_kernel_irqchip = {
	.save = kernel_save,
	.restore = kernel_restore,
	.name = "kernel",
	.create = kernel_create,
	.destroy = kernel_destroy,
	.default_routes = kernel_default_routes,
	.check_route = kernel_check_route,
	.commit = kernel_commit,
	.set_line = kernel_set_line,
	.signal_msi = kvmk_x86_signal_msi_op,
	.irqfd_bind = kernel_irqfd_bind,
	.irqfd_unbind = kernel_irqfd_unbind,
	.irqfds_in_kernel = kernel_irqfds_in_kernel,
};
