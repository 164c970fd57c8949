// SPDX-License-Identifier: MIT
/*
 * The source of a live migration (include/kvmkit/migrate.h): pre-copy of
 * guest RAM under dirty logging while the vCPUs run, then the paused
 * remainder and the machine state (the snapshot's state file), then the
 * target's confirmation. Runs on the caller's thread; the vCPU threads
 * never wait for it except during the final paused pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "migrate"
#include "core/internal.h"
#include "kvm/arch.h"
#include "kvm/vm_ext.h"
#include "migration/machine_state.h"
#include "migration/mig_net.h"
#include "migration/mig_wire.h"
#include "vmm/machine_internal.h"
#include <kvmkit/kvmkit.h>
#include <kvmkit/migrate.h>

#define OP "kvmkit_machine_migrate"

struct sender {
	struct kvmkit_vm *vm;
	int fd;
	const char *to;
	struct kvmkit_migrate_params p;
	struct kvmkit_migrate_stats *st;
	uint8_t *buf; /* KVMK_MIG_BATCH pages: what a record carries, copied first */
	unsigned int pass;
	uint64_t pass_pages;
	uint64_t t0;
	int err; /* a failure inside a harvest callback */
};

void kvmkit_migrate_params_init(struct kvmkit_migrate_params *p)
{
	memset(p, 0, sizeof(*p));
	p->max_passes = 30;
	p->stop_pages = 256;
	p->timeout_ms = 30000;
}

/* One record: header, two payload pieces, CRC. */
static int send_rec(struct sender *s, uint32_t type, const void *a, size_t alen, const void *b,
		    size_t blen)
{
	uint8_t hdr[KVMK_MIG_REC_HDR], tail[4];
	struct iovec iov[4];
	uint32_t crc;
	int r;

	kvmk_mig_put32(hdr, type);
	kvmk_mig_put32(hdr + 4, (uint32_t)(alen + blen));
	crc = kvmk_mig_crc(kvmk_mig_crc(kvmk_mig_crc(0, hdr, sizeof(hdr)), a, alen), b, blen);
	kvmk_mig_put32(tail, crc);
	iov[0] = (struct iovec){ hdr, sizeof(hdr) };
	iov[1] = (struct iovec){ (void *)a, alen };
	iov[2] = (struct iovec){ (void *)b, blen };
	iov[3] = (struct iovec){ tail, sizeof(tail) };
	r = kvmk_mig_net_send(s->fd, iov, 4, OP);
	if (!r)
		s->st->bytes += sizeof(hdr) + alen + blen + sizeof(tail);
	return r;
}

static void count_pass(struct sender *s, uint64_t n)
{
	unsigned int i = s->pass - 1;

	s->pass_pages += n;
	s->st->pass_pages[i < KVMKIT_MIGRATE_PASSES_MAX ? i : KVMKIT_MIGRATE_PASSES_MAX - 1] += n;
}

/* The pages are copied first: the guest may write them while they go out,
 * and the CRC must cover the bytes sent (a page changed meanwhile is dirty
 * again and goes in a later pass). */
static int send_pages(struct sender *s, uint64_t gpa, const uint8_t *hva, uint32_t n)
{
	uint8_t h[KVMK_MIG_PAGES_HDR];
	int r;

	memcpy(s->buf, hva, (size_t)n * KVMK_MIG_PAGE);
	kvmk_mig_put64(h, gpa);
	kvmk_mig_put32(h + 8, n);
	kvmk_mig_put32(h + 12, s->pass);
	r = send_rec(s, KVMK_MIG_PAGES, h, sizeof(h), s->buf, (size_t)n * KVMK_MIG_PAGE);
	if (!r) {
		s->st->pages += n;
		count_pass(s, n);
	}
	return r;
}

static int send_zero(struct sender *s, uint64_t gpa, uint64_t n)
{
	uint8_t h[16];
	int r;

	kvmk_mig_put64(h, gpa);
	kvmk_mig_put64(h + 8, n);
	r = send_rec(s, KVMK_MIG_ZERO, h, sizeof(h), NULL, 0);
	if (!r) {
		s->st->zero_pages += n;
		count_pass(s, n);
	}
	return r;
}

/* Most pages with data differ from zero in their first words: the scan
 * stops there; only zero pages are read whole. */
static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < KVMK_MIG_PAGE / 8; i += 4)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3])
			return false;
	return true;
}

/*
 * @npages pages from @gpa (@hva): runs of data pages as PAGES records of
 * at most KVMK_MIG_BATCH, runs of zero pages as one ZERO record each, or
 * skipped when @skip_zero (the first pass: the target's RAM starts zeroed).
 */
static int send_run(struct sender *s, uint64_t gpa, const uint8_t *hva, uint64_t npages,
		    bool skip_zero)
{
	uint64_t i = 0;
	int r = 0;

	while (!r && i < npages) {
		bool zero = page_is_zero(hva + i * KVMK_MIG_PAGE);
		uint64_t j = i + 1;

		while (j < npages && (zero || j - i < KVMK_MIG_BATCH) &&
		       page_is_zero(hva + j * KVMK_MIG_PAGE) == zero)
			j++;
		if (!zero)
			r = send_pages(s, gpa + i * KVMK_MIG_PAGE, hva + i * KVMK_MIG_PAGE,
				       (uint32_t)(j - i));
		else if (!skip_zero)
			r = send_zero(s, gpa + i * KVMK_MIG_PAGE, j - i);
		i = j;
	}
	return r;
}

static int full_pass(struct sender *s)
{
	struct kvmkit_mem_region reg[KVMK_MIG_MAX_REGIONS];
	unsigned int n = kvmkit_vm_memory_regions(s->vm, reg, KVMK_MIG_MAX_REGIONS);
	int r = 0;

	for (unsigned int i = 0; !r && i < n && i < KVMK_MIG_MAX_REGIONS; i++) {
		const uint8_t *hva = kvmkit_vm_gpa_to_hva(s->vm, reg[i].gpa, reg[i].size);

		r = hva ? send_run(s, reg[i].gpa, hva, reg[i].size / KVMK_MIG_PAGE, true) : -EFAULT;
	}
	return r;
}

static int dirty_run(uint64_t gpa, uint64_t npages, void *opaque)
{
	struct sender *s = opaque;
	/* Harvests count host pages (64 KiB on some arm64 hosts); the stream
	 * counts 4 KiB ones. */
	uint64_t len = npages * kvmkit_dirty_page_size(s->vm);
	const uint8_t *hva = kvmkit_vm_gpa_to_hva(s->vm, gpa, len);

	s->err = hva ? send_run(s, gpa, hva, len / KVMK_MIG_PAGE, false) : -EFAULT;
	return s->err ? 1 : 0; /* positive: stop the harvest, the error is in s->err */
}

static int dirty_pass(struct sender *s)
{
	int r = kvmkit_dirty_harvest(s->vm, dirty_run, s, NULL);

	return r > 0 ? s->err : r;
}

static int end_pass(struct sender *s, bool paused)
{
	struct kvmkit_migrate_progress pr = { s->pass, paused, s->pass_pages, s->st->bytes,
					      (kvmk_now_ns() - s->t0) / 1000 };
	uint8_t b[16];
	int r;

	kvmk_mig_put32(b, s->pass);
	kvmk_mig_put32(b + 4, 0);
	kvmk_mig_put64(b + 8, s->pass_pages);
	r = send_rec(s, KVMK_MIG_PASS_END, b, sizeof(b), NULL, 0);
	if (r)
		return r;
	s->st->passes = s->pass;
	kvmk_info("migration to %s: pass %u%s: %llu pages, %llu MiB sent in all, %llu ms", s->to,
		  s->pass, paused ? " (paused)" : "", (unsigned long long)s->pass_pages,
		  (unsigned long long)(s->st->bytes >> 20),
		  (unsigned long long)(pr.elapsed_us / 1000));
	if (s->p.progress)
		s->p.progress(&pr, s->p.opaque);
	return 0;
}

static int sock_read(void *ctx, void *buf, size_t len)
{
	return kvmk_mig_net_recv(((struct sender *)ctx)->fd, buf, len, OP);
}

/* The target's answer: 0 for @want, else its refusal (or a bad reply) as
 * the error. */
static int await_reply(struct sender *s, uint32_t want, struct kvmk_mig_reply *rep)
{
	struct kvmk_mig_in in = { sock_read, s, 0 };
	int r = kvmk_mig_reply_read(&in, rep);

	if (r)
		return r;
	if (rep->type == want)
		return 0;
	if (rep->type == KVMK_MIG_REFUSE && rep->kind == KVMKIT_ERR_FORMAT)
		return kvmk_err_format(OP, "%s refused the stream: %s", s->to, rep->msg);
	if (rep->type == KVMK_MIG_REFUSE)
		return kvmk_err_sys(OP, ECONNREFUSED, "%s refused: %s", s->to, rep->msg);
	return kvmk_err_format(OP, "%s answered with record type %u, expected %u", s->to, rep->type,
			       want);
}

static int send_hello(struct sender *s, struct kvmkit_machine *m)
{
	struct kvmkit_mem_region reg[KVMK_MIG_MAX_REGIONS];
	struct kvmkit_irqchip *chip = kvmkit_machine_irqchip(m);
	struct kvmk_mig_hello h = { 0 };
	uint8_t b[KVMK_MIG_HELLO_MAX];
	struct iovec iov;

	h.version = KVMK_MIG_VERSION;
	h.arch = (uint32_t)kvmk_arch_host();
	h.vcpus = kvmkit_vm_vcpu_count(s->vm);
	h.irqchip = chip ? 1 + (uint32_t)kvmkit_irqchip_mode(chip) : 0;
	h.machine_flags = kvmk_machine_has_testdev(m) ? KVMK_SNAP_F_TESTDEV : 0;
	h.mem_size = kvmkit_vm_ram_size(s->vm);
	h.page_size = KVMK_MIG_PAGE;
	h.nr_regions = kvmkit_vm_memory_regions(s->vm, reg, KVMK_MIG_MAX_REGIONS);
	if (h.nr_regions > KVMK_MIG_MAX_REGIONS)
		return kvmk_err_unsupported(OP, ENOTSUP, "%u memory regions (at most %u)",
					    h.nr_regions, KVMK_MIG_MAX_REGIONS);
	for (uint32_t i = 0; i < h.nr_regions; i++)
		h.regions[i] = (struct kvmk_mig_region){ reg[i].gpa, reg[i].size };
	iov = (struct iovec){ b, kvmk_mig_hello_build(&h, b) };
	s->st->bytes += iov.iov_len;
	return kvmk_mig_net_send(s->fd, &iov, 1, OP);
}

/* The snapshot's state file, as one record. */
static int send_state(struct sender *s, struct kvmkit_machine *m)
{
	struct kvmk_snap snap = { 0 };
	struct kvmk_blob b = { 0 };
	int r = kvmk_snap_gather(m, &snap);

	if (!r)
		r = kvmk_snap_build(&snap, &b);
	if (!r && b.len > KVMK_MIG_MAX_STATE)
		r = kvmk_err_resource(OP, E2BIG, "machine state of %zu bytes (at most %u)", b.len,
				      KVMK_MIG_MAX_STATE);
	if (!r)
		r = send_rec(s, KVMK_MIG_STATE, b.data, b.len, NULL, 0);
	if (!r)
		s->st->state_bytes = b.len;
	kvmk_blob_free(&b);
	kvmk_snap_gathered_free(&snap);
	return r;
}

static void merge_params(struct kvmkit_migrate_params *p, const struct kvmkit_migrate_params *in)
{
	kvmkit_migrate_params_init(p);
	if (!in)
		return;
	if (in->max_passes)
		p->max_passes = in->max_passes;
	if (in->stop_pages)
		p->stop_pages = in->stop_pages;
	if (in->timeout_ms)
		p->timeout_ms = in->timeout_ms;
	p->progress = in->progress;
	p->opaque = in->opaque;
}

/* Everything from the connection to the target's confirmation. *@paused_at
 * is set once the VM is paused (0 before); *@paused_here when this call
 * paused it. */
static int migrate(struct sender *s, struct kvmkit_machine *m, const struct kvmk_mig_addr *a,
		   bool *logging, bool *paused_here, uint64_t *paused_at)
{
	struct kvmk_mig_reply rep;
	int r;

	r = kvmk_mig_connect(a, s->p.timeout_ms, OP, &s->fd);
	if (!r)
		r = kvmk_mig_set_timeout(s->fd, s->p.timeout_ms, OP);
	if (!r)
		r = send_hello(s, m);
	if (!r)
		r = await_reply(s, KVMK_MIG_ACCEPT, &rep);
	if (r)
		return r;
	/* From here on every write is logged: a page copied below and
	 * written afterwards is sent again. */
	r = kvmkit_dirty_enable(s->vm);
	if (r)
		return r;
	*logging = true;
	s->pass = 1;
	r = full_pass(s);
	if (!r)
		r = end_pass(s, false);
	while (!r && s->pass_pages > s->p.stop_pages && s->pass < s->p.max_passes) {
		s->pass++;
		s->pass_pages = 0;
		r = dirty_pass(s);
		if (!r)
			r = end_pass(s, false);
	}
	if (r)
		return r;
	if (kvmkit_vm_state(s->vm) == KVMKIT_VM_RUNNING) {
		r = kvmkit_vm_pause(s->vm);
		if (r)
			return r;
		*paused_here = true;
	}
	*paused_at = kvmk_now_ns();
	if (kvmkit_vm_state(s->vm) != KVMKIT_VM_PAUSED)
		return kvmk_err_state("vm", kvmkit_vm_state_name(kvmkit_vm_state(s->vm)), "paused",
				      OP);
	s->pass++;
	s->pass_pages = 0;
	r = send_rec(s, KVMK_MIG_PAUSED, NULL, 0, NULL, 0);
	if (!r)
		r = dirty_pass(s);
	if (!r)
		r = end_pass(s, true);
	if (!r)
		r = send_state(s, m);
	if (!r)
		r = send_rec(s, KVMK_MIG_END, NULL, 0, NULL, 0);
	if (!r)
		r = await_reply(s, KVMK_MIG_DONE, &rep);
	if (!r)
		s->st->downtime_us = rep.downtime_us;
	return r;
}

int kvmkit_machine_migrate(struct kvmkit_machine *m, const char *to,
			   const struct kvmkit_migrate_params *params,
			   struct kvmkit_migrate_stats *stats)
{
	struct kvmkit_migrate_stats local;
	struct sender s = { .fd = -1, .to = to };
	struct kvmk_mig_addr addr;
	enum kvmkit_vm_state st0;
	bool logging = false, paused_here = false;
	uint64_t paused_at = 0;
	char detail[KVMK_MIG_ADDR_MAX + 32];
	int r;

	if (!m)
		return kvmk_err_param(OP, "m", "is NULL", "%s", "NULL");
	s.vm = kvmkit_machine_vm(m);
	s.st = stats ? stats : &local;
	memset(s.st, 0, sizeof(*s.st));
	s.t0 = kvmk_now_ns();
	merge_params(&s.p, params);
	r = kvmk_mig_addr_parse(to, false, OP, &addr);
	if (r)
		return r;
	if (kvmk_vcpu_self())
		return kvmk_err_state_code(EDEADLK, "thread", "a vCPU thread", "another thread",
					   OP);
	st0 = kvmkit_vm_state(s.vm);
	if (st0 != KVMKIT_VM_RUNNING && st0 != KVMKIT_VM_PAUSED)
		return kvmk_err_state("vm", kvmkit_vm_state_name(st0), "running or paused", OP);
	if (kvmkit_dirty_enabled(s.vm))
		return kvmk_err_state("dirty logging", "on (another user)", "off", OP);
	s.buf = malloc((size_t)KVMK_MIG_BATCH * KVMK_MIG_PAGE);
	if (!s.buf)
		return kvmk_err_resource(OP, ENOMEM, "page buffer");
	kvmk_info("migrating to %s", to);
	r = migrate(&s, m, &addr, &logging, &paused_here, &paused_at);
	if (r) {
		struct kvmkit_error saved;

		/* Back to how the VM was: it never stopped being the VM. */
		kvmk_err_save(&saved);
		if (logging)
			kvmkit_dirty_disable(s.vm);
		if (paused_here)
			kvmkit_vm_resume(s.vm);
		kvmk_err_restore(&saved);
		kvmk_info("migration to %s failed, the VM stays here: %s", to, kvmkit_strerror());
	} else {
		s.st->source_downtime_us = (kvmk_now_ns() - paused_at) / 1000;
		kvmkit_dirty_disable(s.vm);
		snprintf(detail, sizeof(detail), "migrated to %s", to);
		kvmkit_vm_request_stop(s.vm, KVMKIT_STOP_MIGRATED, 0, detail);
		kvmkit_vm_stop(s.vm);
	}
	if (s.fd >= 0)
		close(s.fd);
	free(s.buf);
	s.st->total_us = (kvmk_now_ns() - s.t0) / 1000;
	if (!r)
		kvmk_info("migrated to %s: downtime %llu us (target), %llu us (source), %llu MiB, "
			  "%u passes, %llu ms",
			  to, (unsigned long long)s.st->downtime_us,
			  (unsigned long long)s.st->source_downtime_us,
			  (unsigned long long)(s.st->bytes >> 20), s.st->passes,
			  (unsigned long long)(s.st->total_us / 1000));
	return r;
}
