// SPDX-License-Identifier: MIT
/*
 * The control commands on a VM: query reads the VM's state and statistics,
 * pause, resume and stop are the lifecycle calls, snapshot pauses a running
 * VM, saves its machine and resumes it (when the server serves a machine),
 * migrate answers "unsupported" until that feature exists. Every refusal is the
 * library's own structured error, so a request in the wrong state changes
 * nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvmkit/irq.h>
#include <kvmkit/migrate.h>
#include <kvmkit/snapshot.h>
#include <kvmkit/vcpu.h>

#include "api/api_internal.h"
#include "core/internal.h"
#include "kvm/vm_ext.h"

#define KVMK_LOG_MODULE "api"

/* How long a stop waits for another thread's join of the vCPUs. */
#define STOP_WAIT_MS 10000

static struct json_object *u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

/* A number a reply carries, under its name. */
struct num {
	const char *key;
	uint64_t v;
};

/* @n numbers into @o; nonzero if any could not be put. */
static int put_nums(struct json_object *o, const struct num *nums, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++)
		bad |= kvmk_api_put(o, nums[i].key, u64(nums[i].v));
	return bad;
}

/* put_nums() of the { key, value } pairs that follow @o. */
#define PUT_NUMS(o, ...)                                 \
	put_nums(o, (const struct num[]){ __VA_ARGS__ }, \
		 sizeof((const struct num[]){ __VA_ARGS__ }) / sizeof(struct num))

/* Appends @o (NULL: it could not be made) to @list, which then owns it;
 * nonzero if it could not. */
static int append(struct json_object *list, struct json_object *o)
{
	if (o && !json_object_array_add(list, o))
		return 0;
	json_object_put(o);
	return 1;
}

static int query_vcpus(struct kvmkit_vm *vm, struct json_object *reply)
{
	struct json_object *list = json_object_new_array();
	int bad = 0;

	for (unsigned int i = 0; list && i < kvmkit_vm_config(vm)->vcpus; i++) {
		struct kvmkit_vcpu *v = kvmkit_vm_vcpu(vm, i);
		struct json_object *o;
		struct kvmkit_vcpu_stats st;

		if (!v)
			continue;
		kvmkit_vcpu_get_stats(v, &st);
		o = json_object_new_object();
		bad |= PUT_NUMS(o, { "id", i }, { "runs", st.runs }, { "exits_io", st.exits_io },
				{ "exits_mmio", st.exits_mmio }, { "exits_hlt", st.exits_hlt },
				{ "exits_intr", st.exits_intr }, { "exits_other", st.exits_other },
				{ "user_ns", st.user_ns });
		bad |= append(list, o);
	}
	bad |= kvmk_api_put(reply, "vcpu_count", u64(kvmkit_vm_vcpu_count(vm)));
	bad |= kvmk_api_put(reply, "vcpus", list);
	return bad;
}

#define MAX_REGIONS 64

/* The VM's memory regions (kvmkit_vm_memory_regions). */
static int query_memory(struct kvmkit_vm *vm, struct json_object *reply)
{
	struct json_object *list = json_object_new_array();
	struct json_object *mem = json_object_new_object();
	struct kvmkit_mem_region copy[MAX_REGIONS];
	unsigned int n = kvmkit_vm_memory_regions(vm, copy, MAX_REGIONS);
	uint64_t total = 0;
	int bad = 0;

	for (unsigned int i = 0; list && i < n && i < MAX_REGIONS; i++) {
		const struct kvmkit_mem_region *e = &copy[i];
		struct json_object *o;

		total += e->size;
		o = json_object_new_object();
		bad |= PUT_NUMS(o, { "slot", (uint64_t)e->slot }, { "gpa", e->gpa },
				{ "size", e->size });
		bad |= kvmk_api_put(o, "readonly",
				    json_object_new_boolean(!!(e->flags & KVMKIT_MEM_READONLY)));
		bad |= kvmk_api_put(o, "dirty_log",
				    json_object_new_boolean(!!(e->flags & KVMKIT_MEM_LOG_DIRTY)));
		bad |= append(list, o);
	}
	bad |= kvmk_api_put(mem, "total", u64(total));
	bad |= kvmk_api_put(mem, "regions", list);
	bad |= kvmk_api_put(reply, "memory", mem);
	return bad;
}

static bool gsi_active(const struct kvmkit_gsi_stats *s)
{
	return s->asserts || s->deliveries || s->coalesced || s->masked || s->irqfd_signals ||
	       s->irqfds_kernel || s->irqfds_thread;
}

static int query_irqchip(struct kvmkit_vm *vm, struct json_object *reply)
{
	struct kvmkit_irqchip *chip = kvmkit_vm_irqchip(vm);
	struct json_object *irq = json_object_new_object();
	struct json_object *list = json_object_new_array();
	int bad = 0;

	bad |= kvmk_api_put(
		irq, "mode",
		json_object_new_string(chip ? kvmkit_irqchip_mode_name(kvmkit_irqchip_mode(chip)) :
					      "none"));
	for (uint32_t gsi = 0; chip && list && gsi < KVMKIT_MAX_GSI; gsi++) {
		struct kvmkit_gsi_stats st;
		struct json_object *o;

		if (kvmkit_irq_gsi_stats(chip, gsi, &st) || !gsi_active(&st))
			continue;
		o = json_object_new_object();
		bad |= PUT_NUMS(o, { "gsi", gsi }, { "asserts", st.asserts },
				{ "deliveries", st.deliveries }, { "coalesced", st.coalesced },
				{ "masked", st.masked }, { "irqfd_signals", st.irqfd_signals },
				{ "irqfds_kernel", st.irqfds_kernel },
				{ "irqfds_thread", st.irqfds_thread });
		bad |= append(list, o);
	}
	bad |= kvmk_api_put(irq, "gsis", list);
	bad |= kvmk_api_put(reply, "irqchip", irq);
	return bad;
}

static int do_query(struct kvmkit_vm *vm, struct json_object *reply)
{
	int bad = kvmk_api_put(reply, "protocol", json_object_new_int(KVMKIT_API_PROTOCOL));

	bad |= kvmk_api_put(reply, "state",
			    json_object_new_string(kvmkit_vm_state_name(kvmkit_vm_state(vm))));
	bad |= query_vcpus(vm, reply);
	bad |= query_memory(vm, reply);
	bad |= query_irqchip(vm, reply);
	return bad ? kvmk_err_resource("query", ENOMEM, "building the reply") : 0;
}

static int put_state(struct kvmkit_vm *vm, struct json_object *reply, const char *op)
{
	if (kvmk_api_put(reply, "state",
			 json_object_new_string(kvmkit_vm_state_name(kvmkit_vm_state(vm)))))
		return kvmk_err_resource(op, ENOMEM, "building the reply");
	return 0;
}

static int do_stop(struct kvmkit_vm *vm)
{
	/* kvmkit_vm_stop() on a VM that never started refuses, but also
	 * rules out any later start: a refused request must change nothing,
	 * so that case is answered here. The state cannot go back to CREATED,
	 * so nothing slips in between. */
	enum kvmkit_vm_state s;
	int r;

	if (kvmkit_vm_state(vm) == KVMKIT_VM_CREATED)
		return kvmkit_vm_check_transition(KVMKIT_VM_CREATED, "stop", NULL);
	r = kvmkit_vm_stop(vm);
	/* When another thread (the owner's kvmkit_vm_wait()) is joining the
	 * vCPUs already, kvmkit_vm_stop() returns before that join ends and
	 * the state turns STOPPED. The vCPUs have been told to stop; wait
	 * (bounded) for the state, so that the reply and any later query
	 * agree on it. */
	for (int i = 0; !r && i < STOP_WAIT_MS; i++) {
		s = kvmkit_vm_state(vm);
		if (s != KVMKIT_VM_RUNNING && s != KVMKIT_VM_PAUSED)
			break;
		usleep(1000);
	}
	return r;
}

/*
 * Pauses a running VM, saves the machine into the request's directory and
 * resumes the VM, unless "resume" is false; a VM paused already stays
 * paused unless "resume" is true. A failed save resumes what this request
 * paused, whatever "resume" says, and answers the save's error.
 */
static int do_snapshot(struct kvmkit_vm *vm, struct kvmkit_machine *m,
		       const struct kvmk_api_request *req, struct json_object *reply)
{
	enum kvmkit_vm_state s = kvmkit_vm_state(vm);
	bool paused_here = false, resume;
	struct kvmkit_error saved;
	int r;

	if (!m)
		return kvmk_err_unsupported("snapshot", ENOTSUP,
					    "this server serves a VM without its machine");
	if (s == KVMKIT_VM_RUNNING) {
		r = kvmkit_vm_pause(vm);
		if (r)
			return r;
		paused_here = true;
	} else if (s != KVMKIT_VM_PAUSED && s != KVMKIT_VM_STOPPED) {
		return kvmk_err_state("vm", kvmkit_vm_state_name(s), "running, paused or stopped",
				      "snapshot");
	}
	resume = req->resume < 0 ? paused_here : req->resume == 1;
	r = kvmkit_machine_snapshot(m, req->arg);
	kvmk_err_save(&saved);
	/* An error reply leaves the VM as it was: resume what was paused here. */
	if (r)
		resume = paused_here;
	if (resume && kvmkit_vm_state(vm) == KVMKIT_VM_PAUSED) {
		int e = kvmkit_vm_resume(vm);

		if (!r)
			r = e;
		else
			kvmk_err_restore(&saved);
	}
	if (r)
		return r;
	if (kvmk_api_put(reply, "dir", json_object_new_string(req->arg)))
		return kvmk_err_resource("snapshot", ENOMEM, "building the reply");
	return put_state(vm, reply, "snapshot");
}

/*
 * Live migration to the request's address (kvmkit_machine_migrate(), on
 * this server thread: other clients wait until it ends). Success: the VM
 * runs on the target, this one is stopped, and the reply carries the
 * statistics. A failure leaves the VM as it was and answers the error.
 */
static int do_migrate(struct kvmkit_vm *vm, struct kvmkit_machine *m,
		      const struct kvmk_api_request *req, struct json_object *reply)
{
	struct kvmkit_migrate_stats st;
	int r, bad = 0;

	if (!m)
		return kvmk_err_unsupported("migrate", ENOTSUP,
					    "this server serves a VM without its machine");
	r = kvmkit_machine_migrate(m, req->arg, NULL, &st);
	if (r)
		return r;
	bad |= kvmk_api_put(reply, "to", json_object_new_string(req->arg));
	bad |= PUT_NUMS(reply, { "downtime_us", st.downtime_us },
			{ "source_downtime_us", st.source_downtime_us },
			{ "total_us", st.total_us }, { "bytes", st.bytes }, { "pages", st.pages },
			{ "zero_pages", st.zero_pages }, { "passes", st.passes });
	if (bad)
		return kvmk_err_resource("migrate", ENOMEM, "building the reply");
	return put_state(vm, reply, "migrate");
}

int kvmk_api_execute(struct kvmkit_vm *vm, const struct kvmk_api_request *req,
		     struct json_object *reply)
{
	return kvmk_api_execute_machine(vm, NULL, req, reply);
}

int kvmk_api_execute_machine(struct kvmkit_vm *vm, struct kvmkit_machine *m,
			     const struct kvmk_api_request *req, struct json_object *reply)
{
	const char *name = kvmk_api_cmd_name(req->cmd);
	int r;

	/* A vCPU waiting for all vCPUs to park (or to be joined) would wait
	 * for itself. */
	if (req->cmd != KVMK_API_QUERY && kvmk_vcpu_self())
		return kvmk_err_state("thread", "a vCPU thread", "another thread", name);
	switch (req->cmd) {
	case KVMK_API_QUERY:
		return do_query(vm, reply);
	case KVMK_API_PAUSE:
		r = kvmkit_vm_pause(vm);
		break;
	case KVMK_API_RESUME:
		r = kvmkit_vm_resume(vm);
		break;
	case KVMK_API_STOP:
		r = do_stop(vm);
		break;
	case KVMK_API_SNAPSHOT:
		return do_snapshot(vm, m, req, reply);
	case KVMK_API_MIGRATE:
		return do_migrate(vm, m, req, reply);
	default:
		return kvmk_err_param("request", "cmd", "unknown command", "%d", (int)req->cmd);
	}
	return r ? r : put_state(vm, reply, name);
}

int kvmkit_api_handle(struct kvmkit_vm *vm, const char *line, size_t len, char **reply)
{
	return kvmk_api_handle(vm, NULL, line, len, reply);
}

int kvmk_api_handle(struct kvmkit_vm *vm, struct kvmkit_machine *m, const char *line, size_t len,
		    char **reply)
{
	struct kvmk_api_request req;
	struct json_object *obj = NULL;
	int r;

	*reply = NULL;
	if (!vm || (!line && len))
		return kvmk_err_param("kvmkit_api_handle", vm ? "line" : "vm", "is NULL", "%s",
				      "NULL");
	r = kvmk_api_parse(line ? line : "", len, &req);
	if (r == 1)
		return 0;
	if (!r) {
		obj = kvmk_api_reply_ok(req.id);
		r = obj ? kvmk_api_execute_machine(vm, m, &req, obj) :
			  kvmk_err_resource("kvmkit_api_handle", ENOMEM, "reply");
		if (r) {
			json_object_put(obj);
			obj = NULL;
		}
	}
	if (r)
		obj = kvmk_api_reply_error(req.id, kvmkit_last_error());
	kvmk_api_request_release(&req);
	*reply = kvmk_api_reply_line(obj, NULL);
	return *reply ? 0 : kvmk_err_resource("kvmkit_api_handle", ENOMEM, "reply line");
}
