// SPDX-License-Identifier: MIT
/*
 * The target of a live migration (include/kvmkit/migrate.h): listens, takes
 * one source, checks its hello against the configuration, builds the
 * machine without a guest image, lets the stream parser (mig_wire.c) write
 * the pages straight into its RAM, restores the state the snapshot code
 * restores, starts the VM and tells the source. Anything wrong on the way:
 * the source is told why, and the machine is destroyed before it ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "migrate"
#include "core/internal.h"
#include "migration/machine_state.h"
#include "migration/mig_net.h"
#include "migration/mig_wire.h"
#include "vmm/machine_internal.h"
#include <kvmkit/kvmkit.h>
#include <kvmkit/migrate.h>

#define OP "kvmkit_machine_incoming"

struct receiver {
	int fd;
	struct kvmkit_machine *m;
	struct kvmkit_vm *vm;
	struct kvmk_mig_hello h;
	uint64_t paused_at;
};

void kvmkit_incoming_params_init(struct kvmkit_incoming_params *p)
{
	memset(p, 0, sizeof(*p));
	p->accept_timeout_ms = -1;
	p->timeout_ms = 30000;
}

static int sock_read(void *ctx, void *buf, size_t len)
{
	return kvmk_mig_net_recv(((struct receiver *)ctx)->fd, buf, len, OP);
}

static void *sink_pages(void *ctx, uint64_t gpa, uint32_t n)
{
	return kvmkit_vm_gpa_to_hva(((struct receiver *)ctx)->vm, gpa, (uint64_t)n * KVMK_MIG_PAGE);
}

static int sink_zero(void *ctx, uint64_t gpa, uint64_t n)
{
	void *p = kvmkit_vm_gpa_to_hva(((struct receiver *)ctx)->vm, gpa, n * KVMK_MIG_PAGE);

	if (!p)
		return -EFAULT;
	memset(p, 0, n * KVMK_MIG_PAGE);
	return 0;
}

static int sink_paused(void *ctx)
{
	((struct receiver *)ctx)->paused_at = kvmk_now_ns();
	return 0;
}

/* The state must describe the machine the hello announced (and the
 * target built): its vCPU and irqchip sections are restored into it. */
static int state_matches(const struct kvmk_snap *s, const struct kvmk_mig_hello *h)
{
	bool same = s->arch == h->arch && s->vcpus == h->vcpus && s->irqchip == h->irqchip &&
		    s->machine_flags == h->machine_flags && s->mem_size == h->mem_size &&
		    s->nr_regions == h->nr_regions;

	for (uint32_t i = 0; same && i < s->nr_regions; i++)
		same = s->regions[i].gpa == h->regions[i].gpa &&
		       s->regions[i].size == h->regions[i].size;
	if (!same)
		return kvmk_err_format(OP,
				       "the state record describes another machine than the "
				       "stream header (%u vCPUs, irqchip %u, %u regions)",
				       s->vcpus, s->irqchip, s->nr_regions);
	return 0;
}

static int sink_state(void *ctx, const uint8_t *buf, size_t len)
{
	struct receiver *rc = ctx;
	struct kvmk_snap s;
	int r = kvmk_snap_parse(buf, len, &s);

	if (r)
		return r;
	r = state_matches(&s, &rc->h);
	if (!r)
		r = kvmk_snap_apply(rc->m, &s);
	kvmk_snap_release(&s);
	return r;
}

_Static_assert(KVMK_MIG_MAX_REGIONS <= KVMK_SNAP_MAX_REGIONS,
	       "a hello's regions fit a description");

/* The source's machine, for the checks a restore makes too. */
static void describe(const struct kvmk_mig_hello *h, struct kvmk_saved_machine *d)
{
	*d = (struct kvmk_saved_machine){
		.op = OP,
		.whose = "source",
		.place = "from the source",
		.kind = "a machine",
		.arch = h->arch,
		.vcpus = h->vcpus,
		.irqchip = h->irqchip,
		.mem_size = h->mem_size,
		.nr_regions = h->nr_regions,
	};
	for (uint32_t i = 0; i < h->nr_regions; i++) {
		d->gpa[i] = h->regions[i].gpa;
		d->size[i] = h->regions[i].size;
	}
}

/* The source's machine against @cfg; what @adopt names is taken from the
 * source into @c. */
static int check_config(const struct kvmk_mig_hello *h, const struct kvmkit_machine_config *cfg,
			unsigned int adopt, struct kvmkit_machine_config *c)
{
	struct kvmk_saved_machine d;
	int r;

	*c = *cfg;
	if (adopt & KVMKIT_INCOMING_ADOPT_VCPUS)
		c->vm.vcpus = h->vcpus;
	if (adopt & KVMKIT_INCOMING_ADOPT_MEM)
		c->vm.mem_size = h->mem_size;
	if (adopt & KVMKIT_INCOMING_ADOPT_IRQCHIP) {
		c->irqchip = h->irqchip != 0;
		c->irqchip_mode = h->irqchip ? (enum kvmkit_irqchip_mode)(h->irqchip - 1) :
					       KVMKIT_IRQCHIP_KERNEL;
	}
	describe(h, &d);
	r = kvmk_saved_check_config(&d, c);
	if (r)
		return r;
	c->kernel = NULL;
	c->kernel_len = 0;
	c->initrd = NULL;
	c->initrd_len = 0;
	c->cmdline = NULL;
	c->testdev =
		(h->machine_flags & KVMK_SNAP_F_TESTDEV) ? KVMKIT_TESTDEV_ON : KVMKIT_TESTDEV_OFF;
	c->vm.ram_from_fd = false;
	return 0;
}

static int check_layout(struct kvmkit_vm *vm, const struct kvmk_mig_hello *h)
{
	struct kvmk_saved_machine d;

	describe(h, &d);
	return kvmk_saved_check_layout(&d, vm);
}

static int send_rec(struct receiver *rc, uint32_t type, const void *p, size_t len)
{
	uint8_t hdr[KVMK_MIG_REC_HDR], tail[4];
	struct iovec iov[3];

	kvmk_mig_put32(hdr, type);
	kvmk_mig_put32(hdr + 4, (uint32_t)len);
	kvmk_mig_put32(tail, kvmk_mig_crc(kvmk_mig_crc(0, hdr, sizeof(hdr)), p, len));
	iov[0] = (struct iovec){ hdr, sizeof(hdr) };
	iov[1] = (struct iovec){ (void *)p, len };
	iov[2] = (struct iovec){ tail, sizeof(tail) };
	return kvmk_mig_net_send(rc->fd, iov, 3, OP);
}

/* Tells the source why (best effort: it may be gone) with the thread's
 * error as one line, without this call's name in front. */
static void send_refusal(struct receiver *rc)
{
	const struct kvmkit_error *e = kvmkit_last_error();
	uint8_t b[8 + KVMK_MIG_MAX_MSG];
	const char *line = kvmkit_strerror();
	struct kvmkit_error saved;
	size_t n;

	if (!strncmp(line, OP ": ", strlen(OP ": ")))
		line += strlen(OP ": ");
	n = strlen(line) < KVMK_MIG_MAX_MSG ? strlen(line) : KVMK_MIG_MAX_MSG;
	kvmk_mig_put32(b, (uint32_t)e->kind);
	kvmk_mig_put32(b + 4, (uint32_t)e->err);
	memcpy(b + 8, line, n);
	kvmk_err_save(&saved);
	send_rec(rc, KVMK_MIG_REFUSE, b, 8 + n);
	kvmk_err_restore(&saved);
}

static int receive(struct receiver *rc, const struct kvmkit_machine_config *cfg,
		   const struct kvmkit_incoming_params *p, struct kvmkit_incoming_stats *st)
{
	struct kvmk_mig_sink sink = { sink_pages, sink_zero, sink_paused, sink_state, rc };
	struct kvmk_mig_in in = { sock_read, rc, 0 };
	struct kvmkit_machine_config c;
	struct kvmk_mig_rx rx = { 0 };
	uint64_t max_gpa = 0;
	uint8_t b[8];
	int r;

	r = kvmk_mig_hello_read(&in, &rc->h);
	if (!r)
		r = check_config(&rc->h, cfg, p->adopt, &c);
	if (!r)
		r = kvmk_machine_create_bare(&c, &rc->m);
	if (!r) {
		rc->vm = kvmkit_machine_vm(rc->m);
		r = check_layout(rc->vm, &rc->h);
	}
	if (!r)
		r = send_rec(rc, KVMK_MIG_ACCEPT, NULL, 0);
	if (r)
		return r;
	for (uint32_t i = 0; i < rc->h.nr_regions; i++)
		if (rc->h.regions[i].gpa + rc->h.regions[i].size > max_gpa)
			max_gpa = rc->h.regions[i].gpa + rc->h.regions[i].size;
	r = kvmk_mig_recv(&in, &sink, max_gpa, &rx);
	st->bytes = in.bytes;
	st->pages = rx.pages;
	st->zero_pages = rx.zero_pages;
	st->passes = rx.passes;
	if (r)
		return r;
	/* Whole and checked: now it may run. */
	r = kvmkit_vm_start(rc->vm);
	if (r)
		return r;
	st->downtime_us = (kvmk_now_ns() - rc->paused_at) / 1000;
	kvmk_mig_put64(b, st->downtime_us);
	/* A source that does not hear this resumes its VM: then this one
	 * must not run (the caller destroys it). */
	return send_rec(rc, KVMK_MIG_DONE, b, sizeof(b));
}

int kvmkit_machine_incoming(const struct kvmkit_machine_config *cfg, const char *from,
			    const struct kvmkit_incoming_params *params,
			    struct kvmkit_incoming_stats *stats, struct kvmkit_machine **out)
{
	struct kvmkit_incoming_params p;
	struct kvmkit_incoming_stats local;
	struct receiver rc = { .fd = -1 };
	struct kvmk_mig_addr a;
	char bound[KVMK_MIG_ADDR_MAX];
	int lfd = -1, r;

	if (!cfg || !out)
		return kvmk_err_param(OP, cfg ? "out" : "cfg", "is NULL", "%s", "NULL");
	if (params)
		p = *params;
	else
		kvmkit_incoming_params_init(&p);
	if (!p.timeout_ms)
		p.timeout_ms = 30000;
	if (p.accept_timeout_ms <= 0)
		p.accept_timeout_ms = -1; /* 0 (a zeroed struct) waits too */
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	r = kvmk_mig_addr_parse(from, true, OP, &a);
	if (!r)
		r = kvmk_mig_listen(&a, OP, &lfd, bound, sizeof(bound));
	if (r)
		return r;
	kvmk_info("waiting for a source on %s", bound);
	if (p.listening)
		p.listening(bound, p.opaque);
	r = kvmk_mig_accept(lfd, p.accept_timeout_ms, OP, &rc.fd);
	close(lfd);
	if (a.is_unix)
		unlink(a.path);
	if (!r)
		r = kvmk_mig_set_timeout(rc.fd, p.timeout_ms, OP);
	if (!r)
		r = receive(&rc, cfg, &p, stats);
	if (r) {
		struct kvmkit_error saved;

		if (rc.fd >= 0)
			send_refusal(&rc);
		kvmk_err_save(&saved);
		kvmkit_machine_destroy(rc.m);
		kvmk_err_restore(&saved);
		kvmk_info("incoming migration on %s failed: %s", bound, kvmkit_strerror());
	} else {
		*out = rc.m;
		kvmk_info("incoming migration: running; downtime %llu us, %llu MiB, %u passes",
			  (unsigned long long)stats->downtime_us,
			  (unsigned long long)(stats->bytes >> 20), stats->passes);
	}
	if (rc.fd >= 0)
		close(rc.fd);
	return r;
}
