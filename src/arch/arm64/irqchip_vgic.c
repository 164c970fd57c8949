// SPDX-License-Identifier: MIT
/*
 * arm64 interrupt back end: KVM's vGIC through KVM_CREATE_DEVICE, GICv3
 * first and GICv2 where the host cannot (or the one the config forces),
 * placed by kvmkit's map (include/kvmkit/arm64.h).
 *
 * Order (devices/arm-vgic-v3.rst, arm-vgic.rst): the device and its
 * addresses at irqchip creation, before any vCPU; NR_IRQS and CTRL_INIT
 * once every vCPU exists (vcpus_ready). Until then KVM refuses irqfds
 * (-EAGAIN) and would replace a routing table at init with its default:
 * irqfds are queued and bound, and a table committed early is sent, right
 * after the init.
 *
 * Numbering: kvmkit's GSIs are routes; a route's pin p is SPI p, GIC INTID
 * p + 32. KVM_IRQFD takes the GSI (KVM applies the route), KVM_IRQ_LINE
 * takes the raw INTID (routing does not apply to it, api.rst 4.25/4.52):
 * spi_intid() is the one place that adds the 32.
 *
 * The ITS (created here, with the GICv3), MSIs and PPIs: vgic_its.c.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "vgic"
#include "core/internal.h"
#include "kvm/arch.h"
#include "arch/arm64/arm64_vm.h"
#include "arch/arm64/vgic.h"
#include <kvmkit/arm64.h>

/* SPIs one line may fan out to (a GSI with several irqchip routes). */
#define MAX_LINE_ROUTES 16

static uint32_t spi_intid(uint32_t pin)
{
	return pin + KVMKIT_ARM64_SPI_BASE;
}

static int set_attr(struct vgic *g, uint32_t group, uint64_t attr, void *val, const char *what)
{
	return kvmk_vgic_dev_attr(g->dev_fd, group, attr, val, what);
}

/* KVM_CREATE_DEVICE of one version; -errno (nothing recorded) on refusal. */
static int create_device(struct vgic *g, int version)
{
	struct kvm_create_device cd = {
		.type = version == 3 ? KVM_DEV_TYPE_ARM_VGIC_V3 : KVM_DEV_TYPE_ARM_VGIC_V2,
	};

	if (ioctl(g->vm_fd, KVM_CREATE_DEVICE, &cd) < 0)
		return -errno;
	g->dev_fd = (int)cd.fd;
	g->version = version;
	return 0;
}

static int check_config(const struct kvmkit_irqchip_config *cfg, unsigned int vcpus)
{
	const char *op = "kvmkit_irqchip_create";

	/* The kernel docs say 64..1024, but KVM refuses more than 1023
	 * (VGIC_MAX_RESERVED: INTIDs 1020..1023 are special), so the largest
	 * count it takes is 992 (measured on 6.1: 1024 fails NR_IRQS). */
	if (cfg->gic_nr_irqs < 64 || cfg->gic_nr_irqs > KVMKIT_GIC_MAX_IRQS ||
	    cfg->gic_nr_irqs % 32)
		return kvmk_err_param(op, "gic_nr_irqs",
				      "a multiple of 32 in 64..992 (KVM's largest)", "%u",
				      cfg->gic_nr_irqs);
	if (cfg->gic_version != KVMKIT_GIC_AUTO && cfg->gic_version != KVMKIT_GIC_V2 &&
	    cfg->gic_version != KVMKIT_GIC_V3)
		return kvmk_err_param(op, "gic_version", "0 (GICv3, else v2), 2 or 3", "%u",
				      cfg->gic_version);
	if (cfg->gic_version == KVMKIT_GIC_V2 && vcpus > KVMKIT_ARM64_GICV2_MAX_VCPUS)
		return kvmk_err_param(op, "vcpus", "a GICv2 serves at most 8 vCPUs", "%u", vcpus);
	if (vcpus > KVMKIT_ARM64_GICV3_MAX_VCPUS)
		return kvmk_err_param(op, "vcpus",
				      "beyond the redistributor window of kvmkit's map (123 vCPUs)",
				      "%u", vcpus);
	return 0;
}

static int pick_version(struct vgic *g, const struct kvmkit_irqchip_config *cfg, unsigned int vcpus)
{
	const char *op = "kvmkit_irqchip_create";
	int e3 = 0, e2;

	if (cfg->gic_version != KVMKIT_GIC_V2) {
		e3 = create_device(g, 3);
		if (!e3)
			return 0;
		if (cfg->gic_version == KVMKIT_GIC_V3)
			return kvmk_err_unsupported(op, -e3,
						    "GICv3 (KVM_CREATE_DEVICE refused it)");
		kvmk_debug("no GICv3 (%s): trying GICv2", strerror(-e3));
		if (vcpus > KVMKIT_ARM64_GICV2_MAX_VCPUS)
			return kvmk_err_param(op, "vcpus",
					      "the host has no GICv3 and a GICv2 serves at most 8",
					      "%u", vcpus);
	}
	e2 = create_device(g, 2);
	if (!e2)
		return 0;
	if (cfg->gic_version == KVMKIT_GIC_V2)
		return kvmk_err_unsupported(op, -e2, "GICv2 (KVM_CREATE_DEVICE refused it)");
	return kvmk_err_unsupported(op, -e2, "a vGIC (GICv3: %s; GICv2: %s)", strerror(-e3),
				    strerror(-e2));
}

static int vgic_create(struct kvmkit_irqchip *chip, const struct kvmkit_irqchip_config *cfg)
{
	unsigned int vcpus = kvmkit_vm_config(chip->vm)->vcpus;
	struct vgic *g;
	uint64_t dist = KVMKIT_ARM64_GIC_DIST;
	uint64_t other;
	int r = check_config(cfg, vcpus);

	if (r)
		return r;
	g = calloc(1, sizeof(*g));
	if (!g)
		return kvmk_err_resource("kvmkit_irqchip_create", ENOMEM, NULL);
	chip->priv = g;
	g->vm_fd = kvmkit_vm_fd(chip->vm);
	g->dev_fd = -1;
	g->its_fd = -1;
	g->nr_irqs = cfg->gic_nr_irqs;
	g->resample = kvmkit_vm_check_cap(chip->vm, KVM_CAP_IRQFD_RESAMPLE) > 0;
	r = pick_version(g, cfg, vcpus);
	if (r)
		return r;
	if (g->version == 3) {
		/* One region for every vCPU's two frames, contiguous. */
		other = KVMKIT_ARM64_GICV3_REDIST;
		r = set_attr(g, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
			     "distributor address");
		if (!r)
			r = set_attr(g, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST,
				     &other, "redistributor address");
		if (!r)
			r = kvmk_vgic_create_its(g);
	} else {
		other = KVMKIT_ARM64_GICV2_CPU;
		r = set_attr(g, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, &dist,
			     "distributor address");
		if (!r)
			r = set_attr(g, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU,
				     &other, "CPU interface address");
	}
	if (r)
		return r;
	/* GSIs are SPIs; 0..15 are the platform's fixed lines (the UART's is
	 * 1), devices get theirs from 16 up; MSI GSIs (routes to the ITS)
	 * past the SPIs. */
	/* INTIDs 1020..1023 are special (spurious, ...): with 1024 interrupts
	 * the last SPI is 1019. */
	chip->pins = (g->nr_irqs < KVMKIT_ARM64_SPI_END ? g->nr_irqs : KVMKIT_ARM64_SPI_END) -
		     KVMKIT_ARM64_SPI_BASE;
	chip->line_lo = 16;
	chip->line_hi = chip->pins;
	chip->pins_are_lines = true; /* virtio-mmio and the like get SPIs from 16 */
	chip->msi_lo = chip->pins;
	kvmk_info("GICv%d created: %u interrupts, %u vCPU(s)%s", g->version, g->nr_irqs, vcpus,
		  g->its_fd >= 0 ? ", ITS" : "");
	return 0;
}

static void drop_queue(struct vgic *g)
{
	for (unsigned int i = 0; i < g->nqueue; i++) {
		close(g->queue[i].fd);
		if (g->queue[i].resample_fd >= 0)
			close(g->queue[i].resample_fd);
	}
	free(g->queue);
	g->queue = NULL;
	g->nqueue = 0;
}

static void vgic_destroy(struct kvmkit_irqchip *chip)
{
	struct vgic *g = chip->priv;

	if (!g)
		return;
	drop_queue(g);
	if (g->its_fd >= 0)
		close(g->its_fd);
	if (g->dev_fd >= 0)
		close(g->dev_fd);
	free(g);
	chip->priv = NULL;
}

/* KVM's own default after init: GSI n to pin n for every SPI. */
static void vgic_default_routes(struct kvmkit_irqchip *chip, struct kvm_irq_routing_entry *tab,
				unsigned int *n)
{
	*n = 0;
	for (uint32_t pin = 0; pin < chip->pins && *n < chip->capacity; pin++) {
		struct kvm_irq_routing_entry *e = &tab[(*n)++];

		memset(e, 0, sizeof(*e));
		e->gsi = pin;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = 0;
		e->u.irqchip.pin = pin;
	}
}

static int vgic_check_route(struct kvmkit_irqchip *chip, uint32_t irqchip, uint32_t pin)
{
	if (irqchip != 0)
		return kvmk_err_param("kvmkit_irq_route_irqchip", "irqchip",
				      "must be 0 (the GIC) on arm64", "%u", irqchip);
	if (pin >= chip->pins)
		return kvmk_err_param("kvmkit_irq_route_irqchip", "pin",
				      "beyond the GIC's SPIs (pin p is INTID p + 32)",
				      "%u (%u SPIs)", pin, chip->pins);
	return 0;
}

static int send_table(struct vgic *g, const struct kvm_irq_routing_entry *tab, unsigned int n)
{
	struct kvm_irq_routing *rt = calloc(1, sizeof(*rt) + n * sizeof(rt->entries[0]));
	int r = 0;

	if (!rt)
		return kvmk_err_resource("KVM_SET_GSI_ROUTING", ENOMEM, "%u entries", n);
	rt->nr = n;
	memcpy(rt->entries, tab, n * sizeof(*tab));
	if (ioctl(g->vm_fd, KVM_SET_GSI_ROUTING, rt) < 0)
		r = kvmk_err_ioctl("KVM_SET_GSI_ROUTING", errno, "%u entries", n);
	free(rt);
	return r;
}

static int vgic_commit(struct kvmkit_irqchip *chip, const struct kvm_irq_routing_entry *tab,
		       unsigned int n)
{
	struct vgic *g = chip->priv;

	if (!kvmk_vgic_ready(g)) {
		/* kvmkit's committed copy is the table; KVM gets it at init. */
		g->table_pending = true;
		return 0;
	}
	return send_table(g, tab, n);
}

static int vgic_set_line(struct kvmkit_irqchip *chip, uint32_t gsi, bool level, bool *failed)
{
	struct kvm_irq_routing_entry e[MAX_LINE_ROUTES + 1];
	struct vgic *g = chip->priv;
	unsigned int n, lines = 0;

	if (!kvmk_vgic_ready(g)) {
		*failed = true;
		return kvmk_err_state("vgic", "not initialised", "every vCPU created",
				      "kvmkit_irq_line");
	}
	/* KVM_IRQ_LINE bypasses routing: follow kvmkit's routes here, so a
	 * line and an irqfd on one GSI reach the same SPI. */
	n = kvmk_irq_routes_of(chip, gsi, e, KVMKIT_ARRAY_SIZE(e));
	if (n > MAX_LINE_ROUTES) {
		*failed = true;
		return kvmk_err_param("kvmkit_irq_line", "gsi",
				      "has more GIC routes than a line drives", "%u (max %d)", gsi,
				      MAX_LINE_ROUTES);
	}
	for (unsigned int i = 0; i < n; i++) {
		struct kvm_irq_level il = { .level = level };

		if (e[i].type != KVM_IRQ_ROUTING_IRQCHIP)
			continue;
		il.irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) |
			 spi_intid(e[i].u.irqchip.pin);
		if (ioctl(g->vm_fd, KVM_IRQ_LINE, &il) < 0) {
			*failed = true;
			return kvmk_err_ioctl("KVM_IRQ_LINE", errno, "gsi %u (INTID %u) level %d",
					      gsi, spi_intid(e[i].u.irqchip.pin), level);
		}
		lines++;
	}
	if (!lines) {
		*failed = true;
		return kvmk_err_param("kvmkit_irq_line", "gsi", "has no GIC route", "%u", gsi);
	}
	/* The vGIC reports no delivery status: accepted counts as one CPU. */
	return 1;
}

static int bind_now(struct vgic *g, uint32_t gsi, int fd, int resample_fd)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi };

	if (resample_fd >= 0) {
		irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irqfd.resamplefd = (uint32_t)resample_fd;
	}
	if (ioctl(g->vm_fd, KVM_IRQFD, &irqfd) < 0)
		return kvmk_err_ioctl("KVM_IRQFD", errno, "gsi %u fd %d%s", gsi, fd,
				      resample_fd >= 0 ? " (resample)" : "");
	return 0;
}

static int queue_irqfd(struct vgic *g, uint32_t gsi, int fd, int resample_fd)
{
	struct queued_irqfd *q = realloc(g->queue, (g->nqueue + 1) * sizeof(*q));
	struct queued_irqfd e = { gsi, fd, -1, -1 };

	if (!q)
		return kvmk_err_resource("kvmkit_irqfd_bind", ENOMEM, "irqfd queue");
	g->queue = q;
	e.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (e.fd >= 0 && resample_fd >= 0)
		e.resample_fd = fcntl(resample_fd, F_DUPFD_CLOEXEC, 0);
	if (e.fd < 0 || (resample_fd >= 0 && e.resample_fd < 0)) {
		int err = errno;

		if (e.fd >= 0)
			close(e.fd);
		return kvmk_err_sys("fcntl", err, "keeping irqfd %d until the vGIC init", fd);
	}
	g->queue[g->nqueue++] = e;
	kvmk_debug("irqfd on gsi %u queued until the vGIC init", gsi);
	return 0;
}

static int vgic_irqfd_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd)
{
	struct vgic *g = chip->priv;

	if (resample_fd >= 0 && !g->resample)
		return kvmk_err_unsupported("kvmkit_irqfd_bind", ENOTSUP, "KVM_CAP_IRQFD_RESAMPLE");
	/* Under chip->lock, as vcpus_ready: no bind falls between the two. */
	if (!g->ready)
		return queue_irqfd(g, gsi, fd, resample_fd);
	return bind_now(g, gsi, fd, resample_fd);
}

/* The queued entry of (@gsi, @fd) as the caller named it, or -1. */
static int find_queued(struct vgic *g, uint32_t gsi, int fd)
{
	for (unsigned int i = 0; i < g->nqueue; i++)
		if (g->queue[i].gsi == gsi && g->queue[i].caller_fd == fd)
			return (int)i;
	return -1;
}

static int vgic_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd)
{
	struct kvm_irqfd d = { .fd = (uint32_t)fd, .gsi = gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN };
	struct vgic *g = chip->priv;
	int i;

	pthread_mutex_lock(&chip->lock);
	i = g->ready ? -1 : find_queued(g, gsi, fd);
	if (i >= 0) {
		close(g->queue[i].fd);
		if (g->queue[i].resample_fd >= 0)
			close(g->queue[i].resample_fd);
		g->queue[i] = g->queue[--g->nqueue];
	}
	pthread_mutex_unlock(&chip->lock);
	if (i >= 0)
		return 0;
	/* EBADF: the owner closed the eventfd first; KVM dropped it with it. */
	if (ioctl(g->vm_fd, KVM_IRQFD, &d) < 0 && errno != EBADF)
		return kvmk_err_ioctl("KVM_IRQFD", errno, "deassign gsi %u fd %d", gsi, fd);
	return 0;
}

static unsigned int vgic_irqfds_in_kernel(struct kvmkit_irqchip *chip, uint32_t gsi)
{
	return chip->irqfds[gsi];
}

static int vgic_vcpus_ready(struct kvmkit_irqchip *chip)
{
	struct vgic *g = chip->priv;
	uint32_t nr = g->nr_irqs;
	int r;

	pthread_mutex_lock(&chip->lock);
	r = set_attr(g, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr, "NR_IRQS");
	if (!r)
		r = set_attr(g, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
			     "CTRL_INIT");
	if (!r && g->its_fd >= 0)
		r = kvmk_vgic_dev_attr(g->its_fd, KVM_DEV_ARM_VGIC_GRP_CTRL,
				       KVM_DEV_ARM_VGIC_CTRL_INIT, NULL, "ITS CTRL_INIT");
	/* A PMU needs the initialised vGIC for its PPI (pmu-emul.c). */
	for (unsigned int i = 0;
	     !r && kvmk_vm_arch(chip->vm)->pmu && i < kvmkit_vm_vcpu_count(chip->vm); i++)
		r = kvmk_arm64_pmu_init(kvmkit_vm_vcpu(chip->vm, i), true);
	if (!r) {
		__atomic_store_n(&g->ready, true, __ATOMIC_RELEASE);
		/* The init installed KVM's default table over an earlier one. */
		if (g->table_pending)
			r = send_table(g, chip->committed, chip->ncommitted);
	}
	for (unsigned int i = 0; !r && i < g->nqueue; i++)
		r = bind_now(g, g->queue[i].gsi, g->queue[i].fd, g->queue[i].resample_fd);
	if (!r)
		drop_queue(g); /* bound: KVM holds its own references now */
	pthread_mutex_unlock(&chip->lock);
	if (!r)
		kvmk_debug("GICv%d initialised", g->version);
	return r;
}

const struct kvmk_irqchip_ops kvmk_arm64_vgic = {
	.name = "vgic",
	.create = vgic_create,
	.destroy = vgic_destroy,
	.default_routes = vgic_default_routes,
	.check_route = vgic_check_route,
	.commit = vgic_commit,
	.set_line = vgic_set_line,
	.signal_msi = kvmk_vgic_signal_msi,
	.irqfd_bind = vgic_irqfd_bind,
	.irqfd_unbind = vgic_irqfd_unbind,
	.irqfds_in_kernel = vgic_irqfds_in_kernel,
	.vcpus_ready = vgic_vcpus_ready,
	.save = kvmk_vgic_save,
	.restore = kvmk_vgic_restore,
};

const struct kvmk_irqchip_ops *kvmk_arch_irqchip_ops(enum kvmkit_irqchip_mode mode)
{
	return mode == KVMKIT_IRQCHIP_KERNEL ? &kvmk_arm64_vgic : NULL;
}

int kvmkit_irqchip_gic_version(const struct kvmkit_irqchip *chip)
{
	return chip && chip->ops == &kvmk_arm64_vgic ? ((struct vgic *)chip->priv)->version : 0;
}
