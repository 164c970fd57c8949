// SPDX-License-Identifier: MIT
/*
 * x86 split irqchip back end (KVM_CAP_SPLIT_IRQCHIP): the LAPICs stay in
 * KVM; the IOAPIC (ioapic.c), and optionally the 8259 pair and the 8254
 * (split_legacy.c), are kvmkit's models. kvmkit interprets its own routing
 * table: a line drives model pins, an MSI route becomes KVM_SIGNAL_MSI.
 * The kernel's table holds only the IOAPIC pins' MSI *mirrors* (KVM builds
 * its EOI-exit sets from them, so level EOIs reach kvmkit as
 * KVM_EXIT_IOAPIC_EOI) and the MSI routes of kernel-bound irqfds.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "irq-split"
#include "core/internal.h"
#include <kvmkit/vcpu.h>
#include "arch/x86/split.h"
#include "kvm/vm_ext.h"

/* ---- the kernel's table: mirrors and kernel irqfd routes ------------------ */

int kvmk_split_commit_mirrors(struct kvmk_split *s)
{
	struct kvm_irq_routing_entry m[KVMKIT_IOAPIC_PINS];
	unsigned int n = 0;

	for (unsigned int pin = 0; pin < KVMKIT_IOAPIC_PINS; pin++)
		if (s->mirror_valid[pin])
			m[n++] = s->mirrors[pin];
	return kvmk_x86_set_gsi_routing(s->vm_fd, m, n, s->kroutes, s->nkroutes);
}

/*
 * Model callback (model lock held): pin @pin's EOI route changed (ioapic.h:
 * an entry in service keeps the route it was sent with until its EOI). Its
 * mirror follows, and edge irqfds on the pin move between kvmkit's thread
 * and the kernel as the mirror allows (split_irqfd.c).
 */
static void ioapic_route_changed(void *opaque, unsigned int pin, const struct kvmk_ioapic_msi *msg,
				 bool masked)
{
	struct kvmk_split *s = opaque;
	struct kvmkit_irqchip *chip = s->chip;
	struct kvm_irq_routing_entry *e;

	if (pin >= KVMKIT_IOAPIC_PINS || pin >= s->split_routes)
		return;
	pthread_mutex_lock(&chip->lock);
	e = &s->mirrors[pin];
	memset(e, 0, sizeof(*e));
	e->gsi = pin;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = (uint32_t)msg->address;
	e->u.msi.address_hi = (uint32_t)(msg->address >> 32);
	e->u.msi.data = msg->data;
	s->mirror_valid[pin] = !masked;
	if (kvmk_split_irqfds_before_commit(s, chip->committed, chip->ncommitted) ||
	    kvmk_split_commit_mirrors(s))
		kvmk_warn("pin %u: %s", pin, kvmkit_strerror());
	else
		kvmk_split_irqfds_after_commit(s, chip->committed, chip->ncommitted);
	pthread_mutex_unlock(&chip->lock);
}

/* Model callback: an IOAPIC message to the in-kernel LAPICs. */
static int ioapic_deliver(void *opaque, const struct kvmk_ioapic_msi *msg)
{
	struct kvmk_split *s = opaque;

	return kvmk_x86_send_msi(s->vm_fd, msg->address, msg->data, 0, 0);
}

/*
 * Resamplefds an EOI exit has to signal, held back until the model is done
 * with the EOI (this vCPU thread's): a device that asks again at once then
 * finds the model's lock free instead of waiting for this thread.
 */
static __thread struct {
	bool active;
	unsigned int n;
	int fd[KVMKIT_IOAPIC_PINS];
} eoi_batch;

static void signal_resamplefd(int rfd)
{
	uint64_t one = 1;

	if (write(rfd, &one, sizeof(one)) < 0)
		kvmk_debug("resamplefd %d: %s", rfd, strerror(errno));
}

/* KVM_EXIT_IOAPIC_EOI: remote IRR clears, the pin's resample notifier runs
 * (the line de-asserts), and a still-asserted level pin fires again; then
 * the devices hear of the EOI. */
static int ioapic_eoi_exit(struct kvmkit_vcpu *vcpu, struct kvm_run *run, void *opaque)
{
	struct kvmk_split *s = opaque;

	eoi_batch.active = true;
	eoi_batch.n = 0;
	kvmk_ioapic_eoi(s->ioapic, run->eoi.vector);
	eoi_batch.active = false;
	for (unsigned int i = 0; i < eoi_batch.n; i++)
		signal_resamplefd(eoi_batch.fd[i]);
	return 0;
}

/* ---- resampling ---------------------------------------------------------- */

bool kvmk_split_clear_resample(struct kvmk_split *s, int rfd)
{
	bool found = false;

	for (unsigned int pin = 0; pin < KVMKIT_IOAPIC_PINS; pin++) {
		int expect = rfd;

		found |= __atomic_compare_exchange_n(&s->pin_resample_fd[pin], &expect, -1, false,
						     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
	}
	for (unsigned int irq = 0; irq < KVMK_PIC_IRQS; irq++) {
		int expect = rfd;

		found |= __atomic_compare_exchange_n(&s->pic_resample_fd[irq], &expect, -1, false,
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
void kvmk_split_resample(struct kvmk_split *s, int *slot, uint32_t gsi)
{
	int rfd = __atomic_exchange_n(slot, -1, __ATOMIC_ACQ_REL);

	if (rfd < 0)
		return;
	kvmk_split_clear_resample(s, rfd);
	kvmk_split_set_gsi(s, gsi, false, -1);
	if (eoi_batch.active && eoi_batch.n < KVMKIT_IOAPIC_PINS)
		eoi_batch.fd[eoi_batch.n++] = rfd;
	else
		signal_resamplefd(rfd);
}

/* Model callback (no model lock): the guest EOI'd level pin @pin. */
static void ioapic_resample(void *opaque, unsigned int pin)
{
	struct kvmk_split *s = opaque;

	kvmk_split_resample(s, &s->pin_resample_fd[pin],
			    __atomic_load_n(&s->pin_resample_gsi[pin], __ATOMIC_ACQUIRE));
}

/* ---- lines ----------------------------------------------------------------- */

/* Combines per-route statuses as kvm_set_irq() does: errors and "masked"
 * (< 0) are ignored, otherwise the CPU counts add up. */
static int combine(int acc, int r)
{
	if (r < 0)
		return acc;
	return r + (acc < 0 ? 0 : acc);
}

static void note_resample(int *fd_slot, uint32_t *gsi_slot, uint32_t gsi, int rfd)
{
	__atomic_store_n(gsi_slot, gsi, __ATOMIC_RELEASE);
	__atomic_store_n(fd_slot, rfd, __ATOMIC_RELEASE);
}

/* Drives GSI @gsi to @level through kvmkit's committed table; a level
 * irqfd passes its resamplefd so the pin's EOI can find it. */
int kvmk_split_set_gsi(struct kvmk_split *s, uint32_t gsi, bool level, int resample_fd)
{
	struct kvm_irq_routing_entry e[4];
	unsigned int n = kvmk_irq_routes_of(s->chip, gsi, e, 4);
	bool assert_level = resample_fd >= 0 && level;
	int status = -1;

	for (unsigned int i = 0; i < n; i++) {
		uint32_t pin = e[i].u.irqchip.pin;
		int r = -1;

		if (e[i].type == KVM_IRQ_ROUTING_MSI) {
			if (level)
				status = combine(
					status,
					kvmk_x86_send_msi(s->vm_fd,
							  ((uint64_t)e[i].u.msi.address_hi << 32) |
								  e[i].u.msi.address_lo,
							  e[i].u.msi.data, e[i].flags,
							  e[i].u.msi.devid));
			continue;
		}
		if (e[i].u.irqchip.irqchip != KVMKIT_IRQCHIP_IOAPIC) {
			unsigned int irq = e[i].u.irqchip.irqchip * 8 + pin;

			if (s->pic && irq < KVMK_PIC_IRQS) {
				if (assert_level)
					note_resample(&s->pic_resample_fd[irq],
						      &s->pic_resample_gsi[irq], gsi, resample_fd);
				r = kvmk_pic_set_irq(s->pic, irq, level);
			}
		} else {
			if (assert_level)
				note_resample(&s->pin_resample_fd[pin], &s->pin_resample_gsi[pin],
					      gsi, resample_fd);
			r = kvmk_ioapic_set_level(s->ioapic, pin, level);
		}
		status = combine(status, r == KVMK_IRQ_MASKED ? -1 : r);
	}
	return status;
}

static int split_set_line(struct kvmkit_irqchip *chip, uint32_t gsi, bool level, bool *failed)
{
	return kvmk_split_set_gsi(chip->priv, gsi, level, -1);
}

/* ---- routing --------------------------------------------------------------- */

static void split_default_routes(struct kvmkit_irqchip *chip, struct kvm_irq_routing_entry *tab,
				 unsigned int *n)
{
	struct kvmk_split *s = chip->priv;

	kvmk_x86_default_routes(tab, n, s->pic != NULL);
}

static int split_check_route(struct kvmkit_irqchip *chip, uint32_t irqchip, uint32_t pin)
{
	struct kvmk_split *s = chip->priv;

	if (irqchip != KVMKIT_IRQCHIP_IOAPIC && irqchip <= KVMKIT_IRQCHIP_PIC_SLAVE && !s->pic)
		return kvmk_err_unsupported("kvmkit_irq_route_irqchip", ENOTSUP,
					    "no PIC in this split irqchip (cfg.pic off)");
	return kvmk_x86_check_route(irqchip, pin);
}

/*
 * kvmkit interprets @tab itself; the kernel gets the MSI routes of GSIs past
 * the IOAPIC's, for irqfds bound there. Irqfds whose GSI stops being a
 * plain MSI leave the kernel before the table changes; those whose GSI
 * becomes one enter it after.
 */
static int split_commit(struct kvmkit_irqchip *chip, const struct kvm_irq_routing_entry *tab,
			unsigned int n)
{
	struct kvmk_split *s = chip->priv;
	struct kvm_irq_routing_entry *kr, *old;
	unsigned int nk = 0, nold;
	int r = kvmk_split_irqfds_before_commit(s, tab, n);

	if (r)
		return r;
	kr = kvmk_zalloc(chip->capacity * sizeof(*kr));
	if (!kr)
		return kvmk_err_resource("kvmkit_irq_routes_commit", ENOMEM, "split routes");
	for (unsigned int i = 0; i < n; i++)
		if (tab[i].gsi >= s->split_routes && kvmk_irq_only_msi(tab, n, tab[i].gsi))
			kr[nk++] = tab[i];
	/* The new list only stays if the kernel takes it: later mirror
	 * updates (under chip->lock, as this) resend whatever s->kroutes
	 * holds. */
	old = s->kroutes;
	nold = s->nkroutes;
	s->kroutes = kr;
	s->nkroutes = nk;
	r = kvmk_split_commit_mirrors(s);
	if (r) {
		s->kroutes = old;
		s->nkroutes = nold;
	}
	kvmk_zfree(r ? kr : old, chip->capacity * sizeof(*kr));
	if (!r)
		kvmk_split_irqfds_after_commit(s, tab, n);
	return r;
}

/* ---- creation ------------------------------------------------------------- */

static int split_create(struct kvmkit_irqchip *chip, const struct kvmkit_irqchip_config *cfg)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_SPLIT_IRQCHIP };
	struct kvmk_ioapic_config icfg = {
		.deliver = ioapic_deliver,
		.route_changed = ioapic_route_changed,
		/* kvmkit devices drive "1 = asserted", as with KVM's IOAPIC. */
		.polarity_ignored = true,
	};
	struct kvmk_split *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return kvmk_err_resource("create_irqchip", ENOMEM, NULL);
	chip->priv = s;
	s->chip = chip;
	s->vm = chip->vm;
	s->vm_fd = kvmkit_vm_fd(chip->vm);
	s->epfd = s->wake[0] = s->wake[1] = s->pit_fd = -1;
	for (unsigned int pin = 0; pin < KVMKIT_IOAPIC_PINS; pin++)
		s->pin_resample_fd[pin] = -1;
	for (unsigned int irq = 0; irq < KVMK_PIC_IRQS; irq++)
		s->pic_resample_fd[irq] = -1;
	kvmk_x86_gsi_layout(chip);
	s->split_routes = cfg->split_routes ? cfg->split_routes : KVMKIT_IOAPIC_PINS;
	if (s->split_routes < KVMKIT_IOAPIC_PINS)
		return kvmk_err_param("create_irqchip", "split_routes",
				      "must cover the IOAPIC's 24 pins", "%u", s->split_routes);
	if (kvmkit_vm_check_cap(s->vm, KVM_CAP_SPLIT_IRQCHIP) <= 0)
		return kvmk_err_unsupported("create_irqchip", ENOTSUP, "KVM_CAP_SPLIT_IRQCHIP");
	cap.args[0] = s->split_routes;
	if (ioctl(s->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return kvmk_err_ioctl("KVM_ENABLE_CAP", errno, "KVM_CAP_SPLIT_IRQCHIP, %u routes",
				      s->split_routes);
	s->kroutes = kvmk_zalloc(chip->capacity * sizeof(*s->kroutes));
	if (!s->kroutes)
		return kvmk_err_resource("create_irqchip", ENOMEM, "split irqchip routes");
	icfg.opaque = s;
	r = kvmk_ioapic_create(&icfg, &s->ioapic);
	if (r)
		return r;
	for (unsigned int pin = 0; pin < KVMKIT_IOAPIC_PINS; pin++)
		kvmk_ioapic_set_resample(s->ioapic, pin, ioapic_resample, s);
	r = kvmkit_bus_register(kvmkit_vm_mmio_bus(s->vm), KVMK_IOAPIC_BASE, KVMK_IOAPIC_MMIO_SIZE,
				"ioapic", &kvmk_ioapic_mmio_ops, s->ioapic);
	if (r)
		return r;
	s->ioapic_mapped = true;
	r = kvmkit_vm_add_exit_handler(s->vm, KVM_EXIT_IOAPIC_EOI, ioapic_eoi_exit, s);
	if (!r)
		r = kvmk_split_thread_setup(s);
	if (!r && cfg->pit)
		r = kvmk_split_pit_setup(s);
	if (!r && cfg->pic)
		r = kvmk_split_pic_setup(s);
	if (r)
		return r;
	/* Last: the thread starts once every source it watches exists. */
	return kvmk_split_thread_start(s);
}

static void split_destroy(struct kvmkit_irqchip *chip)
{
	struct kvmk_split *s = chip->priv;

	if (!s)
		return;
	kvmk_split_thread_stop(s);
	kvmk_vm_drop_hooks(s->vm, s);
	if (s->ioapic_mapped)
		kvmkit_bus_unregister(kvmkit_vm_mmio_bus(s->vm), KVMK_IOAPIC_BASE);
	kvmk_split_legacy_teardown(s);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->wake[0] >= 0)
		close(s->wake[0]);
	if (s->wake[1] >= 0)
		close(s->wake[1]);
	kvmk_ioapic_destroy(s->ioapic);
	kvmk_zfree(s->kroutes, chip->capacity * sizeof(*s->kroutes));
	free(s);
	chip->priv = NULL;
}

/* State: u32 flags (bit 0: a PIC, bit 1: a PIT, bit 2: the IOAPIC's
 * in-service messages), then the models' own state structures (each
 * checked by the model's restore): IOAPIC, PIC, PIT, the IOAPIC's
 * in-service messages. Those messages keep an EOI that ends a level
 * interrupt's service reaching the IOAPIC when the guest re-vectored the
 * entry meanwhile; a blob without them (bit 2 clear, older kvmkit) is
 * still taken, the entries' own messages standing in. */
#define SSTATE_PIC 1u
#define SSTATE_PIT 2u
#define SSTATE_INSERVICE 4u

static int split_save(struct kvmkit_irqchip *chip, struct kvmk_blob *out)
{
	struct kvmk_split *s = chip->priv;
	struct kvmk_ioapic_inservice sent;
	struct kvmk_ioapic_state io;
	struct kvmk_pic_state pic;
	struct kvmk_pit_state pit;
	int r = kvmk_blob_put_u32(out, (s->pic ? SSTATE_PIC : 0) | (s->pit ? SSTATE_PIT : 0) |
					       SSTATE_INSERVICE);

	/* Zeroed first: padding goes into the blob too. */
	memset(&io, 0, sizeof(io));
	memset(&pic, 0, sizeof(pic));
	memset(&pit, 0, sizeof(pit));
	kvmk_ioapic_save_all(s->ioapic, &io, &sent);
	if (!r)
		r = kvmk_blob_put(out, &io, sizeof(io));
	if (!r && s->pic) {
		kvmk_pic_save(s->pic, &pic);
		r = kvmk_blob_put(out, &pic, sizeof(pic));
	}
	if (!r && s->pit) {
		kvmk_pit_save(s->pit, &pit);
		r = kvmk_blob_put(out, &pit, sizeof(pit));
	}
	if (!r)
		r = kvmk_blob_put(out, &sent, sizeof(sent));
	return r;
}

static int split_restore(struct kvmkit_irqchip *chip, const uint8_t *p, size_t len)
{
	struct kvmk_reader rd = { p, len, "kvmkit_irqchip_restore" };
	struct kvmk_split *s = chip->priv;
	struct kvmk_ioapic_inservice sent, sent_old;
	struct kvmk_ioapic_state io, io_old;
	struct kvmk_pic_state pic, pic_old;
	struct kvmk_pit_state pit;
	uint32_t flags, want = (s->pic ? SSTATE_PIC : 0) | (s->pit ? SSTATE_PIT : 0);
	int r = kvmk_reader_u32(&rd, &flags, "split irqchip flags");

	if (!r && (flags & ~SSTATE_INSERVICE) != want)
		r = kvmk_err_format(rd.op, "saved with models 0x%x (1 PIC, 2 PIT), this has 0x%x",
				    flags, want);
	if (!r)
		r = kvmk_reader_get(&rd, &io, sizeof(io), "IOAPIC");
	if (!r && s->pic)
		r = kvmk_reader_get(&rd, &pic, sizeof(pic), "PIC");
	if (!r && s->pit)
		r = kvmk_reader_get(&rd, &pit, sizeof(pit), "PIT");
	if (!r && (flags & SSTATE_INSERVICE))
		r = kvmk_reader_get(&rd, &sent, sizeof(sent), "IOAPIC in-service messages");
	if (!r && rd.left)
		r = kvmk_err_format(rd.op, "%zu bytes past the split irqchip state", rd.left);
	if (r)
		return r;
	/* Each model checks its state and changes nothing if it refuses it;
	 * the ones already loaded are put back then. */
	kvmk_ioapic_save_all(s->ioapic, &io_old, &sent_old);
	r = kvmk_ioapic_restore_all(s->ioapic, &io, flags & SSTATE_INSERVICE ? &sent : NULL);
	if (!r && s->pic) {
		kvmk_pic_save(s->pic, &pic_old);
		r = kvmk_pic_restore(s->pic, &pic);
		if (r)
			kvmk_ioapic_restore_all(s->ioapic, &io_old, &sent_old);
	}
	if (!r && s->pit) {
		r = kvmk_pit_restore(s->pit, &pit);
		if (r) {
			kvmk_ioapic_restore_all(s->ioapic, &io_old, &sent_old);
			if (s->pic)
				kvmk_pic_restore(s->pic, &pic_old);
		}
	}
	return r;
}

const struct kvmk_irqchip_ops kvmk_x86_split_irqchip = {
	.save = split_save,
	.restore = split_restore,
	.name = "split",
	.create = split_create,
	.destroy = split_destroy,
	.default_routes = split_default_routes,
	.check_route = split_check_route,
	.commit = split_commit,
	.set_line = split_set_line,
	.signal_msi = kvmk_x86_signal_msi_op,
	.irqfd_bind = kvmk_split_irqfd_bind,
	.irqfd_unbind = kvmk_split_irqfd_unbind,
	.irqfds_in_kernel = kvmk_split_irqfds_in_kernel,
	.irqfd_signal = kvmk_split_irqfd_signal,
};
