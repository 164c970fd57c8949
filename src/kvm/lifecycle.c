// SPDX-License-Identifier: MIT
/*
 * The VM's lifecycle: the transition table, start, pause, resume, stop,
 * wait, kicks, and the grace period for exit handlers (quiesce). The
 * threads' side of the handshakes is the vCPU loop in vcpu.c.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KVMK_LOG_MODULE "vm"
#include "core/internal.h"
#include "kvm/kvm_internal.h"

/*
 * Refuses a call that would wait for the calling thread itself: pause (until
 * every vCPU parks), stop and wait (until every vCPU thread is joined) and
 * destroy, made from one of the VM's own vCPU threads (an exit handler, a
 * device handler, a pre-run hook).
 */
int kvmk_vm_refuse_on_own_vcpu(struct kvmkit_vm *vm, const char *op)
{
	struct kvmkit_vcpu *self = kvmk_vcpu_self();

	if (!self || self->vm != vm)
		return 0;
	return kvmk_err_state_code(
		EDEADLK, "caller", "a vCPU thread of this VM",
		"a thread that is not one of its vCPUs (it would wait for itself)", op);
}

/*
 * A grace period for exit handlers: for each vCPU that may be inside one
 * (its thread runs, is not parked, and is not the caller), kick it and wait
 * until it has re-entered KVM_RUN (its run counter moved), parked or left
 * its loop. One vCPU at a time, so nothing is allocated and the call cannot
 * fail; rare (device or memory removal), so it polls.
 */
/* Marks the calling vCPU thread as waiting in a grace period (any VM's). */
static void set_quiescing(struct kvmkit_vcpu *self, bool on)
{
	pthread_mutex_lock(&self->vm->lock);
	self->quiescing = on;
	pthread_mutex_unlock(&self->vm->lock);
}

int kvmkit_vm_quiesce(struct kvmkit_vm *vm)
{
	struct kvmkit_vcpu *self = kvmk_vcpu_self();

	/* Called on a vCPU thread, it does not wait for vCPUs that are
	 * themselves waiting in one: each is stuck in its handler until its
	 * own wait ends, so two handlers unregistering at once would wait for
	 * each other for ever. A caller that is no vCPU thread is in no such
	 * cycle and waits for them too. */
	if (self)
		set_quiescing(self, true);
	pthread_mutex_lock(&vm->lock);
	for (unsigned int i = 0; i < vm->cfg.vcpus; i++) {
		struct kvmkit_vcpu *v = vm->vcpus[i];
		uint64_t snap;

		if (!v || v == self || !v->thread_started || v->thread_exited || v->parked)
			continue;
		snap = __atomic_load_n(&v->stats.runs, __ATOMIC_ACQUIRE);
		kvmk_vm_kick(vm, v);
		while (!v->parked && !v->thread_exited && !(self && v->quiescing) &&
		       __atomic_load_n(&v->stats.runs, __ATOMIC_ACQUIRE) == snap) {
			struct timespec ts = { 0, 20000 };

			pthread_mutex_unlock(&vm->lock);
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&vm->lock);
		}
	}
	pthread_mutex_unlock(&vm->lock);
	if (self)
		set_quiescing(self, false);
	return 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

int kvmkit_vm_check_transition(enum kvmkit_vm_state from, const char *op, enum kvmkit_vm_state *to)
{
	static const struct {
		const char *op;
		unsigned int from_mask;
		enum kvmkit_vm_state to;
		const char *expected;
	} table[] = {
		{ "start", 1u << KVMKIT_VM_CREATED, KVMKIT_VM_RUNNING, "created" },
		{ "pause", 1u << KVMKIT_VM_RUNNING, KVMKIT_VM_PAUSED, "running" },
		{ "resume", 1u << KVMKIT_VM_PAUSED, KVMKIT_VM_RUNNING, "paused" },
		{ "stop", (1u << KVMKIT_VM_RUNNING) | (1u << KVMKIT_VM_PAUSED), KVMKIT_VM_STOPPED,
		  "running or paused" },
	};

	for (unsigned int i = 0; i < KVMKIT_ARRAY_SIZE(table); i++) {
		if (strcmp(table[i].op, op))
			continue;
		if (!((1u << from) & table[i].from_mask))
			return kvmk_err_state("vm", kvmkit_vm_state_name(from), table[i].expected,
					      op);
		if (to)
			*to = table[i].to;
		return 0;
	}
	return kvmk_err_param("kvmkit_vm_check_transition", "op", "unknown lifecycle operation",
			      "%s", op);
}

/* Kicks one vCPU out of KVM_RUN (vm->lock held). A thread sets
 * thread_exited under the lock before it returns, so one that has not set it
 * is alive and not yet joined while we hold the lock: pthread_kill is safe. */
void kvmk_vm_kick(struct kvmkit_vm *vm, struct kvmkit_vcpu *v)
{
	if (!v || !v->thread_started || v->thread_exited)
		return;
	/* immediate_exit covers a vCPU about to enter KVM_RUN; the signal
	 * covers one already inside it. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, vm->cfg.pause_signal);
}

/* Sets pause_req or stop_req (vm->lock held) and every vCPU's copy, which
 * the vCPU loop reads so that its fast path touches no VM memory. Both are
 * stored (seq_cst) before the caller kicks: see the loop in vcpu.c. */
static void set_request(struct kvmkit_vm *vm, bool *flag, bool value)
{
	bool any;

	__atomic_store_n(flag, value, __ATOMIC_SEQ_CST);
	any = vm->pause_req || vm->stop_req;
	for (unsigned int i = 0; vm->vcpus && i < vm->cfg.vcpus; i++)
		if (vm->vcpus[i])
			__atomic_store_n(&vm->vcpus[i]->req, any, __ATOMIC_SEQ_CST);
}

void kvmk_vm_kick_all(struct kvmkit_vm *vm)
{
	for (unsigned int i = 0; i < vm->cfg.vcpus; i++)
		kvmk_vm_kick(vm, vm->vcpus[i]);
}

struct kvmk_arch_vm *kvmk_vm_arch(struct kvmkit_vm *vm)
{
	return vm->arch;
}

void kvmkit_vm_kick_vcpu(struct kvmkit_vm *vm, unsigned int id)
{
	if (id >= vm->cfg.vcpus)
		return;
	pthread_mutex_lock(&vm->lock);
	kvmk_vm_kick(vm, vm->vcpus[id]);
	pthread_mutex_unlock(&vm->lock);
}

int kvmkit_vm_start(struct kvmkit_vm *vm)
{
	enum kvmkit_vm_state to;
	int r;

	pthread_mutex_lock(&vm->lock);
	r = kvmkit_vm_check_transition(vm->state, "start", &to);
	if (r)
		goto out;
	/* A stop() of the created VM already ran join_all: threads started
	 * now would never be joined. */
	if (vm->joined) {
		r = kvmk_err_state("vm", "stopped before start", "created", "start");
		goto out;
	}
	if (vm->nr_created != vm->cfg.vcpus) {
		r = kvmk_err_state("vm", "missing vCPUs", "all configured vCPUs created", "start");
		goto out;
	}
	for (unsigned int i = 0; i < vm->cfg.vcpus; i++) {
		struct kvmkit_vcpu *v = vm->vcpus[i];
		int e = pthread_create(&v->thread, NULL, kvmk_vcpu_thread, v);

		if (e) {
			r = kvmk_err_sys("pthread_create", e, "vCPU %u thread", i);
			set_request(vm, &vm->stop_req, true);
			vm->stop.reason = KVMKIT_STOP_INTERNAL_ERROR;
			snprintf(vm->stop.detail, sizeof(vm->stop.detail),
				 "vCPU thread creation failed");
			kvmk_vm_kick_all(vm);
			vm->state = KVMKIT_VM_ERROR;
			goto out;
		}
		v->thread_started = true;
	}
	vm->state = to;
	kvmk_debug("started %u vCPU thread(s)", vm->cfg.vcpus);
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/* vCPU threads still in their loop (vm->lock held). */
static unsigned int live_threads(struct kvmkit_vm *vm)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < vm->cfg.vcpus; i++)
		if (vm->vcpus[i] && vm->vcpus[i]->thread_started && !vm->vcpus[i]->thread_exited)
			n++;
	return n;
}

int kvmkit_vm_pause(struct kvmkit_vm *vm)
{
	int r = kvmk_vm_refuse_on_own_vcpu(vm, "pause");

	if (r)
		return r;
	pthread_mutex_lock(&vm->lock);
	r = kvmkit_vm_check_transition(vm->state, "pause", NULL);
	if (r || vm->stop_req) {
		if (!r)
			r = kvmk_err_state("vm", "stopping", "running", "pause");
		pthread_mutex_unlock(&vm->lock);
		return r;
	}
	/* Stored before the kicks (seq_cst): see the vCPU loop in vcpu.c. */
	set_request(vm, &vm->pause_req, true);
	kvmk_vm_kick_all(vm);
	while (vm->nr_parked < live_threads(vm) && !vm->stop_req)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (vm->stop_req) {
		set_request(vm, &vm->pause_req, false);
		r = kvmk_err_state("vm", "stopping", "running", "pause");
	} else {
		vm->state = KVMKIT_VM_PAUSED;
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int kvmkit_vm_resume(struct kvmkit_vm *vm)
{
	int r;

	pthread_mutex_lock(&vm->lock);
	r = kvmkit_vm_check_transition(vm->state, "resume", NULL);
	if (!r) {
		set_request(vm, &vm->pause_req, false);
		vm->state = KVMKIT_VM_RUNNING;
		pthread_cond_broadcast(&vm->cond);
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

void kvmkit_vm_request_stop(struct kvmkit_vm *vm, enum kvmkit_stop_reason reason, int status,
			    const char *detail)
{
	pthread_mutex_lock(&vm->lock);
	if (!vm->stop_req) {
		set_request(vm, &vm->stop_req, true);
		vm->stop.reason = reason;
		vm->stop.status = status;
		snprintf(vm->stop.detail, sizeof(vm->stop.detail), "%s", detail ? detail : "");
		kvmk_debug("stop requested: %s (status %d)", kvmkit_stop_reason_name(reason),
			   status);
	}
	kvmk_vm_kick_all(vm);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

/* vCPU threads started and not yet joined (vm->lock held). */
static bool any_unjoined(struct kvmkit_vm *vm)
{
	for (unsigned int i = 0; i < vm->cfg.vcpus; i++)
		if (vm->vcpus[i] && vm->vcpus[i]->thread_started)
			return true;
	return false;
}

/*
 * Joins every vCPU thread once stop_req is set and sets the final state.
 * One caller joins; any other (stop and wait on two threads) waits until
 * that join is complete, so no caller returns while a vCPU still runs.
 */
static void join_all(struct kvmkit_vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->joined) {
		while (any_unjoined(vm))
			pthread_cond_wait(&vm->cond, &vm->lock);
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	vm->joined = true;
	pthread_mutex_unlock(&vm->lock);

	/* Other threads (a vCPU still handling its exit, the irqchip thread)
	 * may kick meanwhile: thread_started is only read and written under
	 * the lock, and kick() skips threads that have left their loop. */
	for (unsigned int i = 0; i < vm->cfg.vcpus; i++) {
		struct kvmkit_vcpu *v = vm->vcpus[i];
		bool started;

		if (!v)
			continue;
		pthread_mutex_lock(&vm->lock);
		started = v->thread_started;
		pthread_mutex_unlock(&vm->lock);
		if (started)
			pthread_join(v->thread, NULL);
	}
	/* Cleared together with the final state, which the waiters above
	 * must see once they return. */
	pthread_mutex_lock(&vm->lock);
	for (unsigned int i = 0; i < vm->cfg.vcpus; i++)
		if (vm->vcpus[i])
			vm->vcpus[i]->thread_started = false;
	if (vm->stop.reason == KVMKIT_STOP_UNHANDLED_EXIT ||
	    vm->stop.reason == KVMKIT_STOP_INTERNAL_ERROR)
		vm->state = KVMKIT_VM_ERROR;
	else if (vm->state != KVMKIT_VM_CREATED || vm->stop.reason != KVMKIT_STOP_NONE)
		vm->state = KVMKIT_VM_STOPPED;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

int kvmkit_vm_stop(struct kvmkit_vm *vm)
{
	int r = kvmk_vm_refuse_on_own_vcpu(vm, "stop");

	if (r)
		return r;
	pthread_mutex_lock(&vm->lock);
	r = kvmkit_vm_check_transition(vm->state, "stop", NULL);
	if (r && vm->stop_req && !vm->joined)
		r = 0; /* the guest already asked to stop: just join */
	if (r && vm->state == KVMKIT_VM_CREATED) {
		vm->joined = true; /* nothing to join; destroy relies on this */
		pthread_mutex_unlock(&vm->lock);
		return r;
	}
	pthread_mutex_unlock(&vm->lock);
	if (r)
		return r;
	kvmkit_vm_request_stop(vm, KVMKIT_STOP_REQUESTED, 0, "kvmkit_vm_stop");
	join_all(vm);
	return 0;
}

enum kvmkit_vm_state kvmkit_vm_state(struct kvmkit_vm *vm)
{
	enum kvmkit_vm_state s;

	pthread_mutex_lock(&vm->lock);
	s = vm->state;
	pthread_mutex_unlock(&vm->lock);
	return s;
}

int kvmkit_vm_wait(struct kvmkit_vm *vm, int timeout_ms, struct kvmkit_stop_info *info)
{
	struct timespec deadline;
	int r = kvmk_vm_refuse_on_own_vcpu(vm, "wait");

	if (r)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ms >= 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&vm->lock);
	if (vm->state == KVMKIT_VM_CREATED) {
		pthread_mutex_unlock(&vm->lock);
		return kvmk_err_state("vm", "created", "running or paused", "wait");
	}
	while (!vm->stop_req) {
		int e;

		if (timeout_ms < 0) {
			pthread_cond_wait(&vm->cond, &vm->lock);
			continue;
		}
		e = pthread_cond_timedwait(&vm->cond, &vm->lock, &deadline);
		if (e == ETIMEDOUT && !vm->stop_req) {
			pthread_mutex_unlock(&vm->lock);
			if (info) {
				memset(info, 0, sizeof(*info));
				info->reason = KVMKIT_STOP_TIMEOUT;
				info->vcpu = -1;
			}
			return kvmk_err_resource("kvmkit_vm_wait", ETIMEDOUT, "after %d ms",
						 timeout_ms);
		}
	}
	pthread_mutex_unlock(&vm->lock);
	join_all(vm);
	if (info) {
		pthread_mutex_lock(&vm->lock);
		*info = vm->stop;
		pthread_mutex_unlock(&vm->lock);
	}
	return 0;
}
