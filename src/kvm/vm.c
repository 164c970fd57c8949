// SPDX-License-Identifier: MIT
/* VM creation, RAM set-up and the lifecycle state machine. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "vm"
#include "core/internal.h"
#include "kvm/kvm_internal.h"
#include "kvm/dirty_internal.h"
#include "bus/bus_internal.h"

static const char *const state_names[] = {
	[KVMKIT_VM_CREATED] = "created", [KVMKIT_VM_RUNNING] = "running",
	[KVMKIT_VM_PAUSED] = "paused",	 [KVMKIT_VM_STOPPED] = "stopped",
	[KVMKIT_VM_ERROR] = "error",
};

static const char *const reason_names[] = {
	[KVMKIT_STOP_NONE] = "none",
	[KVMKIT_STOP_REQUESTED] = "stop requested",
	[KVMKIT_STOP_GUEST_EXIT] = "guest exit",
	[KVMKIT_STOP_SHUTDOWN] = "shutdown (triple fault)",
	[KVMKIT_STOP_HALT] = "all vCPUs halted",
	[KVMKIT_STOP_UNHANDLED_EXIT] = "unhandled exit",
	[KVMKIT_STOP_INTERNAL_ERROR] = "KVM internal error",
	[KVMKIT_STOP_TIMEOUT] = "timeout",
	[KVMKIT_STOP_HOST_ERROR] = "host-side failure",
	[KVMKIT_STOP_GUEST_RESET] = "guest reset",
	[KVMKIT_STOP_GUEST_CRASH] = "guest crash",
};

const char *kvmkit_vm_state_name(enum kvmkit_vm_state s)
{
	if ((unsigned int)s < KVMKIT_ARRAY_SIZE(state_names))
		return state_names[s];
	return "?";
}

const char *kvmkit_stop_reason_name(enum kvmkit_stop_reason r)
{
	if ((unsigned int)r < KVMKIT_ARRAY_SIZE(reason_names))
		return reason_names[r];
	return "?";
}

void kvmkit_vm_config_init(struct kvmkit_vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vcpus = 1;
	cfg->mem_size = 128ull << 20;
	cfg->arch = KVMKIT_ARCH_HOST;
	cfg->tss_addr = KVMKIT_X86_TSS_ADDR;
	cfg->identity_map_addr = KVMKIT_X86_IDENTITY_MAP_ADDR;
}

/* The signal handler only exists to make KVM_RUN return -EINTR. */
static void kick_handler(int sig)
{
	(void)sig;
}

static int install_kick_signal(int sig)
{
	struct sigaction sa, old;

	if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == kick_handler)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the point is to interrupt KVM_RUN. */
	if (sigaction(sig, &sa, NULL) < 0)
		return kvmk_err_sys("sigaction", errno, "installing the vCPU kick signal %d", sig);
	return 0;
}

static int probe_limits(struct kvmkit_vm *vm)
{
	int sfd = kvmkit_system_fd(vm->sys);
	int r;

	vm->run_size = ioctl(sfd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run))
		return kvmk_err_ioctl("KVM_GET_VCPU_MMAP_SIZE", vm->run_size < 0 ? errno : EINVAL,
				      "size %d", vm->run_size);
	r = kvmk_check_extension(vm->fd, KVM_CAP_MAX_VCPUS);
	if (r <= 0)
		r = kvmk_check_extension(vm->fd, KVM_CAP_NR_VCPUS);
	vm->max_vcpus = r > 0 ? r : 4; /* api.rst: assume 4 if neither cap answers */
	r = kvmk_check_extension(vm->fd, KVM_CAP_MAX_VCPU_ID);
	vm->max_vcpu_id = r > 0 ? r : vm->max_vcpus;
	r = kvmk_check_extension(vm->fd, KVM_CAP_NR_MEMSLOTS);
	vm->max_slots = r > 0 ? r : 32;
	return 0;
}

static int validate_config(const struct kvmkit_vm_config *cfg)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)page;

	if (cfg->arch != KVMKIT_ARCH_HOST && cfg->arch != kvmk_arch_host())
		return kvmk_err_unsupported("kvmkit_vm_create", ENOTSUP,
					    "arch %d is not this host's architecture", cfg->arch);
	if (cfg->vcpus == 0)
		return kvmk_err_param("kvmkit_vm_create", "vcpus", "must be at least 1", "%u",
				      cfg->vcpus);
	if (cfg->mem_size == 0 || cfg->mem_size % (uint64_t)page)
		return kvmk_err_param("kvmkit_vm_create", "mem_size",
				      "must be a non-zero multiple of the page size", "%llu",
				      (unsigned long long)cfg->mem_size);
	if (cfg->mem_size > phys)
		return kvmk_err_param("kvmkit_vm_create", "mem_size",
				      "larger than the host's physical memory", "%llu",
				      (unsigned long long)cfg->mem_size);
	return 0;
}

static void kick(struct kvmkit_vm *vm, struct kvmkit_vcpu *v);

/*
 * Refuses a call that would wait for the calling thread itself: pause (until
 * every vCPU parks), stop and wait (until every vCPU thread is joined) and
 * destroy, made from one of the VM's own vCPU threads (an exit handler, a
 * device handler, a pre-run hook).
 */
static int refuse_on_own_vcpu(struct kvmkit_vm *vm, const char *op)
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
		kick(vm, v);
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

static void vm_sync(void *opaque)
{
	struct kvmkit_error saved;

	kvmk_err_save(&saved);
	kvmkit_vm_quiesce(opaque);
	kvmk_err_restore(&saved);
}

int kvmkit_vm_create(const struct kvmkit_vm_config *cfg, struct kvmkit_vm **out)
{
	struct kvmkit_vm *vm;
	int r;

	r = validate_config(cfg);
	if (r)
		return r;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return kvmk_err_resource("kvmkit_vm_create", ENOMEM, "allocating the VM");
	vm->cfg = *cfg;
	vm->cfg.arch = kvmk_arch_host();
	/* kvmkit_vm_config() returns the VM's own copies of the strings. */
	vm->cfg.kvm_path = cfg->kvm_path ? strdup(cfg->kvm_path) : NULL;
	vm->cfg.cpu_flags = cfg->cpu_flags ? strdup(cfg->cpu_flags) : NULL;
	if (!vm->cfg.pause_signal)
		vm->cfg.pause_signal = SIGRTMIN + 1;
	vm->fd = -1;
	pthread_rwlock_init(&vm->mem_lock, NULL);
	pthread_mutex_init(&vm->lock, NULL);
	/* kvmkit_vm_wait() computes deadlines on CLOCK_MONOTONIC. */
	kvmk_cond_init_monotonic(&vm->cond);
	vm->state = KVMKIT_VM_CREATED;
	vm->stop.vcpu = -1;
	if ((cfg->kvm_path && !vm->cfg.kvm_path) || (cfg->cpu_flags && !vm->cfg.cpu_flags)) {
		r = kvmk_err_resource("kvmkit_vm_create", ENOMEM, "copying the config");
		goto fail;
	}

	r = kvmk_arch_vm_prepare(cfg, &vm->arch);
	if (r)
		goto fail;
	r = kvmkit_system_open(cfg->kvm_path, &vm->sys);
	if (r)
		goto fail;
	vm->fd = ioctl(kvmkit_system_fd(vm->sys), KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		r = kvmk_err_ioctl("KVM_CREATE_VM", errno, NULL);
		goto fail;
	}
	/* The dirty ring must be enabled before any vCPU exists. */
	r = kvmk_dirty_vm_init(vm);
	if (r)
		goto fail;
	r = probe_limits(vm);
	if (r)
		goto fail;
	if (cfg->vcpus > (unsigned int)vm->max_vcpus) {
		r = kvmk_err_param("kvmkit_vm_create", "vcpus",
				   "more than KVM_CAP_MAX_VCPUS allows", "%u (host max %d)",
				   cfg->vcpus, vm->max_vcpus);
		goto fail;
	}
	vm->vcpus = calloc(cfg->vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		r = kvmk_err_resource("kvmkit_vm_create", ENOMEM, "allocating vCPU table");
		goto fail;
	}
	r = install_kick_signal(vm->cfg.pause_signal);
	if (r)
		goto fail;
	r = kvmkit_bus_create(KVMKIT_BUS_PIO, &vm->pio);
	if (r)
		goto fail;
	r = kvmkit_bus_create(KVMKIT_BUS_MMIO, &vm->mmio);
	if (r)
		goto fail;
	/* A device unregistered from a running VM may be freed right after:
	 * wait out the handlers vCPUs are still running. */
	kvmk_bus_set_sync(vm->pio, vm_sync, vm);
	kvmk_bus_set_sync(vm->mmio, vm_sync, vm);

	/* Arch set-up ioctls and the RAM layout, before any vCPU. */
	r = kvmk_arch_vm_init(vm, vm->arch);
	if (r)
		goto fail;
	vm->ram_size = cfg->mem_size;
	kvmk_debug("VM created: %u vCPU(s), %llu MiB RAM", cfg->vcpus,
		   (unsigned long long)(cfg->mem_size >> 20));
	*out = vm;
	return 0;
fail:
	kvmkit_vm_destroy(vm);
	return r;
}

void kvmkit_vm_destroy(struct kvmkit_vm *vm)
{
	struct kvmkit_error saved;

	if (!vm)
		return;
	/* Freeing the VM under its own running vCPU: leak it instead. */
	if (refuse_on_own_vcpu(vm, "destroy")) {
		kvmk_error("kvmkit_vm_destroy called from one of the VM's vCPU threads: refused");
		return;
	}
	kvmk_err_save(&saved);
	pthread_mutex_lock(&vm->lock);
	bool running = vm->state == KVMKIT_VM_RUNNING || vm->state == KVMKIT_VM_PAUSED;
	bool joined = vm->joined;
	pthread_mutex_unlock(&vm->lock);
	if (running || !joined)
		kvmkit_vm_stop(vm);

	/* Components first (the irqchip: a back end's thread may still kick
	 * vCPUs), newest first. */
	kvmk_vm_run_teardown(vm);
	vm->irqchip = NULL;
	kvmk_dirty_vm_free(vm);
	for (unsigned int i = 0; vm->vcpus && i < vm->cfg.vcpus; i++)
		kvmk_vcpu_free(vm->vcpus[i]);
	free(vm->vcpus);
	for (int i = 0; i < KVMK_MAX_REGIONS; i++)
		if (vm->regions[i].map_base)
			munmap(vm->regions[i].map_base, vm->regions[i].map_len);
	kvmkit_bus_destroy(vm->pio);
	kvmkit_bus_destroy(vm->mmio);
	kvmk_arch_vm_free(vm->arch);
	if (vm->fd >= 0)
		close(vm->fd);
	kvmkit_system_close(vm->sys);
	pthread_rwlock_destroy(&vm->mem_lock);
	pthread_mutex_destroy(&vm->lock);
	pthread_cond_destroy(&vm->cond);
	free((char *)vm->cfg.kvm_path);
	free((char *)vm->cfg.cpu_flags);
	free(vm);
	kvmk_err_restore(&saved);
}

const struct kvmkit_vm_config *kvmkit_vm_config(const struct kvmkit_vm *vm)
{
	return &vm->cfg;
}

int kvmkit_vm_fd(const struct kvmkit_vm *vm)
{
	return vm->fd;
}

struct kvmkit_system *kvmkit_vm_system(struct kvmkit_vm *vm)
{
	return vm->sys;
}

int kvmkit_vm_check_cap(struct kvmkit_vm *vm, long cap)
{
	return kvmk_check_extension(vm->fd, cap);
}

uint64_t kvmkit_vm_ram_size(const struct kvmkit_vm *vm)
{
	return vm->ram_size;
}

struct kvmkit_bus *kvmkit_vm_pio_bus(struct kvmkit_vm *vm)
{
	return vm->pio;
}

struct kvmkit_bus *kvmkit_vm_mmio_bus(struct kvmkit_vm *vm)
{
	return vm->mmio;
}

/* kvmkit_vm_create_vcpu() publishes under the lock: read under it too. */
unsigned int kvmkit_vm_vcpu_count(const struct kvmkit_vm *vm)
{
	pthread_mutex_t *lock = (pthread_mutex_t *)&vm->lock;
	unsigned int n;

	pthread_mutex_lock(lock);
	n = vm->nr_created;
	pthread_mutex_unlock(lock);
	return n;
}

struct kvmkit_vcpu *kvmkit_vm_vcpu(struct kvmkit_vm *vm, unsigned int id)
{
	struct kvmkit_vcpu *v;

	if (id >= vm->cfg.vcpus)
		return NULL;
	pthread_mutex_lock(&vm->lock);
	v = vm->vcpus[id];
	pthread_mutex_unlock(&vm->lock);
	return v;
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
static void kick(struct kvmkit_vm *vm, struct kvmkit_vcpu *v)
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
		kick(vm, vm->vcpus[i]);
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
	kick(vm, vm->vcpus[id]);
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
	int r = refuse_on_own_vcpu(vm, "pause");

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
	int r = refuse_on_own_vcpu(vm, "stop");

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
	int r = refuse_on_own_vcpu(vm, "wait");

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
