// SPDX-License-Identifier: MIT
/* vCPUs: creation, the per-vCPU thread, exit dispatch, register access. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "vcpu"
#include "core/internal.h"
#include "kvm/kvm_internal.h"
#include "kvm/vm_ext.h"

int kvmkit_vm_create_vcpu(struct kvmkit_vm *vm, unsigned int id, struct kvmkit_vcpu **out)
{
	const char *op = "kvmkit_vm_create_vcpu";
	struct kvmkit_vcpu *v;
	enum kvmkit_vm_state st = kvmkit_vm_state(vm);
	bool all;
	int r;

	if (st != KVMKIT_VM_CREATED)
		return kvmk_err_state("vm", kvmkit_vm_state_name(st), "created", "create_vcpu");
	if (id >= vm->cfg.vcpus)
		return kvmk_err_param(op, "id", "not below the configured vCPU count",
				      "%u (vcpus=%u)", id, vm->cfg.vcpus);
	if (id >= (unsigned int)vm->max_vcpu_id || id >= (unsigned int)vm->max_vcpus)
		return kvmk_err_param(op, "id", "beyond the host's KVM_CAP_MAX_VCPU_ID/MAX_VCPUS",
				      "%u (max id %d, max vcpus %d)", id, vm->max_vcpu_id - 1,
				      vm->max_vcpus);
	if (vm->vcpus[id])
		return kvmk_err_param(op, "id", "a vCPU with this id already exists", "%u", id);

	/* Aligned: the loop's hot block and counters share one page. */
	if (posix_memalign((void **)&v, 128, sizeof(*v)))
		return kvmk_err_resource(op, ENOMEM, "allocating vCPU %u", id);
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->id = id;
	v->pio = vm->pio;
	v->mmio = vm->mmio;
	v->exit_timing = vm->cfg.exit_timing;
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		r = kvmk_err_ioctl("KVM_CREATE_VCPU", errno, "vcpu id=%u", id);
		free(v);
		return r;
	}
	v->run_size = (size_t)vm->run_size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		r = kvmk_err_sys("mmap", errno, "kvm_run area of vCPU %u", id);
		close(v->fd);
		free(v);
		return r;
	}
	r = kvmk_arch_vcpu_init(v, vm->arch);
	if (r) {
		kvmk_vcpu_free(v);
		return r;
	}
	pthread_mutex_lock(&vm->lock);
	v->req = vm->pause_req || vm->stop_req;
	kvmk_vcpu_take_hooks(v);
	vm->vcpus[id] = v;
	vm->nr_created++;
	all = vm->nr_created == vm->cfg.vcpus;
	pthread_mutex_unlock(&vm->lock);
	if (out)
		*out = v;
	/* An irqchip may need every vCPU before it can be initialised (the
	 * arm64 vGIC); if that fails the VM cannot take interrupts. */
	return all ? kvmk_irqchip_vcpus_ready(vm->irqchip) : 0;
}

void kvmk_vcpu_free(struct kvmkit_vcpu *v)
{
	if (!v)
		return;
	if (v->run && v->run != MAP_FAILED)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}

unsigned int kvmkit_vcpu_id(const struct kvmkit_vcpu *vcpu)
{
	return vcpu->id;
}

int kvmkit_vcpu_fd(const struct kvmkit_vcpu *vcpu)
{
	return vcpu->fd;
}

struct kvmkit_vm *kvmkit_vcpu_vm(struct kvmkit_vcpu *vcpu)
{
	return vcpu->vm;
}

struct kvm_run *kvmkit_vcpu_run_area(struct kvmkit_vcpu *vcpu)
{
	return vcpu->run;
}

void kvmkit_vcpu_set_exit_hook(struct kvmkit_vcpu *vcpu, kvmkit_exit_hook hook, void *opaque)
{
	vcpu->exit_hook = hook;
	vcpu->exit_hook_opaque = opaque;
}

/* Each counter is loaded on its own (relaxed), pairing with kvmk_stat_add():
 * never torn, but not one snapshot across counters (see vcpu.h). */
#define STAT_GET(v, field) __atomic_load_n(&(v)->stats.field, __ATOMIC_RELAXED)

void kvmkit_vcpu_get_stats(struct kvmkit_vcpu *vcpu, struct kvmkit_vcpu_stats *out)
{
	*out = (struct kvmkit_vcpu_stats){
		.runs = STAT_GET(vcpu, runs),
		.exits_io = STAT_GET(vcpu, exits_io),
		.exits_mmio = STAT_GET(vcpu, exits_mmio),
		.exits_hlt = STAT_GET(vcpu, exits_hlt),
		.exits_intr = STAT_GET(vcpu, exits_intr),
		.exits_other = STAT_GET(vcpu, exits_other),
		.user_ns = STAT_GET(vcpu, user_ns),
	};
}

/* ---- exit handling ------------------------------------------------------ */

static __attribute__((cold)) void stop_with_dump(struct kvmkit_vcpu *v,
						 enum kvmkit_stop_reason reason, const char *what)
{
	char dump[400];
	char detail[512];

	kvmkit_vcpu_dump(v, dump, sizeof(dump));
	snprintf(detail, sizeof(detail), "vCPU %u: %s; %s", v->id, what, dump);
	pthread_mutex_lock(&v->vm->lock);
	if (!v->vm->stop_req) {
		v->vm->stop.vcpu = (int)v->id;
		v->vm->stop.exit_reason = v->run->exit_reason;
	}
	pthread_mutex_unlock(&v->vm->lock);
	kvmkit_vm_request_stop(v->vm, reason, 0, detail);
}

static int handle_io(struct kvmkit_vcpu *v)
{
	struct kvm_run *run = v->run;
	uint64_t size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset;
	uint16_t port = run->io.port;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;

	/* The kernel fills these, but a corrupt value must not walk us off the
	 * mapping, nor let the data (a device's reads) overwrite the fields
	 * being decoded: it lies past struct kvm_run (a page of its own). */
	if ((size != 1 && size != 2 && size != 4) || count == 0 ||
	    run->io.direction > KVM_EXIT_IO_OUT || off < sizeof(*run) || off > v->run_size ||
	    size * count > v->run_size - off)
		return -EINVAL;
	for (uint64_t i = 0; i < count; i++)
		kvmkit_bus_dispatch(v->pio, port, (uint8_t *)run + off + i * size,
				    (unsigned int)size, write);
	return 0;
}

static int handle_mmio(struct kvmkit_vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned int len = run->mmio.len;

	if (len == 0 || len > sizeof(run->mmio.data))
		return -EINVAL;
	kvmkit_bus_dispatch(v->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
	return 0;
}

static void vcpu_halt(struct kvmkit_vcpu *v)
{
	struct kvmkit_vm *vm = v->vm;
	bool all;

	pthread_mutex_lock(&vm->lock);
	v->halted = true;
	vm->nr_halted++;
	all = vm->nr_halted == vm->nr_created;
	pthread_mutex_unlock(&vm->lock);
	if (all)
		kvmkit_vm_request_stop(vm, KVMKIT_STOP_HALT, 0, "every vCPU executed HLT");
}

/*
 * Handles the exit in v->run; 0 to continue, <0 when the VM must stop.
 * hot: the exit path (this, the loop, kvmkit_bus_dispatch) is grouped in
 * .text.hot, one code page to fault in after a world switch. Device
 * accesses are tested before the switch, whose jump table would be one
 * more page.
 */
__attribute__((hot)) int kvmk_vcpu_handle_exit(struct kvmkit_vcpu *v)
{
	const struct kvmk_exit_handler *h;
	struct kvm_run *run = v->run;
	char what[160];

	if (run->exit_reason == KVM_EXIT_MMIO) {
		kvmk_stat_add(&v->stats.exits_mmio, 1);
		if (handle_mmio(v) == 0)
			return 0;
		stop_with_dump(v, KVMKIT_STOP_INTERNAL_ERROR, "malformed KVM_EXIT_MMIO");
		return -EIO;
	}
	if (run->exit_reason == KVM_EXIT_IO) {
		kvmk_stat_add(&v->stats.exits_io, 1);
		if (handle_io(v) == 0)
			return 0;
		stop_with_dump(v, KVMKIT_STOP_INTERNAL_ERROR, "malformed KVM_EXIT_IO");
		return -EIO;
	}
	switch (run->exit_reason) {
	case KVM_EXIT_HLT:
		kvmk_stat_add(&v->stats.exits_hlt, 1);
		vcpu_halt(v);
		return 0;
	case KVM_EXIT_INTR:
		kvmk_stat_add(&v->stats.exits_intr, 1);
		return 0;
	case KVM_EXIT_SHUTDOWN:
		stop_with_dump(v, KVMKIT_STOP_SHUTDOWN, "KVM_EXIT_SHUTDOWN (triple fault)");
		return -EIO;
	case KVM_EXIT_SYSTEM_EVENT:
		/* Only a power-off is a clean exit. kvmkit does not reboot a
		 * guest: a reset or a crash stops the VM and says which. */
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			snprintf(what, sizeof(what), "vCPU %u: system event: power off", v->id);
			kvmkit_vm_request_stop(v->vm, KVMKIT_STOP_GUEST_EXIT, 0, what);
			break;
		case KVM_SYSTEM_EVENT_RESET:
			snprintf(what, sizeof(what), "system event: reset (data[0] 0x%llx)",
				 (unsigned long long)run->system_event.data[0]);
			stop_with_dump(v, KVMKIT_STOP_GUEST_RESET, what);
			break;
		case KVM_SYSTEM_EVENT_CRASH:
			snprintf(what, sizeof(what), "system event: crash (data[0] 0x%llx)",
				 (unsigned long long)run->system_event.data[0]);
			stop_with_dump(v, KVMKIT_STOP_GUEST_CRASH, what);
			break;
		default:
			snprintf(what, sizeof(what), "unhandled system event type %u",
				 run->system_event.type);
			stop_with_dump(v, KVMKIT_STOP_UNHANDLED_EXIT, what);
			break;
		}
		return -EIO;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "KVM_EXIT_FAIL_ENTRY (hardware reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		stop_with_dump(v, KVMKIT_STOP_INTERNAL_ERROR, what);
		return -EIO;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM_EXIT_INTERNAL_ERROR (suberror %u)",
			 run->internal.suberror);
		stop_with_dump(v, KVMKIT_STOP_INTERNAL_ERROR, what);
		return -EIO;
	default:
		kvmk_stat_add(&v->stats.exits_other, 1);
		h = kvmk_vm_exit_handler(v->vm, run->exit_reason);
		if (h && h->fn(v, run, h->opaque) == 0)
			return 0;
		if (!h && v->exit_hook && v->exit_hook(v, run, v->exit_hook_opaque) == 0)
			return 0;
		snprintf(what, sizeof(what), "unhandled exit reason %u", run->exit_reason);
		stop_with_dump(v, KVMKIT_STOP_UNHANDLED_EXIT, what);
		return -EIO;
	}
}

/* Runs KVM_RUN once and handles the exit; returns the exit reason, -EINTR
 * for a kick, or another negative error. */
static __attribute__((hot)) int run_one(struct kvmkit_vcpu *v)
{
	bool timing = v->exit_timing;
	int r;

	if (timing && v->last_return_ns)
		kvmk_stat_add(&v->stats.user_ns, kvmk_now_ns() - v->last_return_ns);
	kvmk_stat_add(&v->stats.runs, 1);
	for (unsigned int i = 0; i < v->nr_pre_run; i++)
		v->pre_run[i].fn(v, v->run, v->pre_run[i].opaque);
	r = ioctl(v->fd, KVM_RUN, 0);
	v->exit_pending = false; /* entering KVM_RUN completed the last one */
	if (timing)
		v->last_return_ns = kvmk_now_ns();
	if (r < 0) {
		if (errno == EINTR || errno == EAGAIN) {
			kvmk_stat_add(&v->stats.exits_intr, 1);
			return -EINTR;
		}
		return kvmk_err_ioctl("KVM_RUN", errno, "vcpu %u", v->id);
	}
	r = kvmk_vcpu_handle_exit(v);
	if (r < 0)
		return r;
	v->exit_pending = true;
	return (int)v->run->exit_reason;
}

/*
 * After KVM_EXIT_IO, KVM_EXIT_MMIO and the other exits userspace serves,
 * "the corresponding operations are complete (and guest state is
 * consistent) only after userspace has re-entered the kernel with KVM_RUN"
 * (api.rst, 5. The kvm_run structure): until then RIP still points at the
 * instruction and an IN or MMIO read has not reached its register. A vCPU
 * therefore re-enters once with immediate_exit set before it parks or
 * leaves its loop, and before its state is saved or replaced: KVM finishes
 * the instruction and returns -EINTR without running the guest. If that
 * yields another exit (a string I/O instruction going on past a page),
 * it is served like any other; KVM ends a string instruction's run after a
 * bounded number of iterations, so the loop ends.
 */
int kvmk_vcpu_complete_exit(struct kvmkit_vcpu *v)
{
	while (v->exit_pending) {
		int r;

		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		r = ioctl(v->fd, KVM_RUN, 0);
		v->exit_pending = false;
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			return 0;
		if (r < 0)
			return kvmk_err_ioctl("KVM_RUN", errno, "vcpu %u: completing exit %u",
					      v->id, v->run->exit_reason);
		r = kvmk_vcpu_handle_exit(v);
		if (r < 0)
			return r;
		v->exit_pending = true;
	}
	return 0;
}

int kvmk_vcpu_state_check(struct kvmkit_vcpu *v, bool restore)
{
	enum kvmkit_vm_state st = kvmkit_vm_state(kvmkit_vcpu_vm(v));

	if (st == KVMKIT_VM_CREATED || st == KVMKIT_VM_PAUSED ||
	    (!restore && st == KVMKIT_VM_STOPPED))
		return 0;
	return kvmk_err_state("vm", kvmkit_vm_state_name(st),
			      restore ? "created or paused" : "created, paused or stopped",
			      restore ? "vcpu_restore" : "vcpu_save");
}

int kvmkit_vcpu_run_once(struct kvmkit_vcpu *vcpu)
{
	enum kvmkit_vm_state st;
	bool threaded;
	int r;

	pthread_mutex_lock(&vcpu->vm->lock);
	st = vcpu->vm->state;
	threaded = vcpu->thread_started;
	pthread_mutex_unlock(&vcpu->vm->lock);
	if (threaded || st == KVMKIT_VM_RUNNING)
		return kvmk_err_state("vm", kvmkit_vm_state_name(st), "not running threads",
				      "run_once");
	do {
		vcpu->run->immediate_exit = 0;
		r = run_one(vcpu);
	} while (r == -EINTR);
	return r;
}

/* The vCPU whose thread this is (NULL on other threads). */
static __thread struct kvmkit_vcpu *self_vcpu;

struct kvmkit_vcpu *kvmk_vcpu_self(void)
{
	return self_vcpu;
}

__attribute__((hot)) void *kvmk_vcpu_thread(void *arg)
{
	struct kvmkit_vcpu *v = arg;
	struct kvmkit_vm *vm = v->vm;
	sigset_t set;

	self_vcpu = v;
	/* The kick signal must be deliverable on this thread. */
	sigemptyset(&set);
	sigaddset(&set, vm->cfg.pause_signal);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	for (;;) {
		int r;

		/*
		 * The exit fast path takes no lock. Clearing immediate_exit and
		 * then reading the flags (both seq_cst) pairs with pause/stop,
		 * which set a flag and then immediate_exit: either this thread
		 * sees the flag, or KVM_RUN sees immediate_exit = 1 (or the
		 * signal, if already inside), so no kick is ever lost. The flag
		 * read here is this vCPU's copy of pause_req || stop_req, set
		 * with them (vm.c: set_request()), so that the fast path touches
		 * no VM memory; the slow path reads the VM's under the lock.
		 */
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&v->req, __ATOMIC_SEQ_CST) || v->halted) {
			bool stop;

			/* A paused or stopped vCPU's state is whole (see
			 * kvmk_vcpu_complete_exit). */
			if (v->exit_pending && kvmk_vcpu_complete_exit(v) < 0)
				kvmkit_vm_request_stop(vm, KVMKIT_STOP_INTERNAL_ERROR, 0,
						       kvmkit_strerror());
			pthread_mutex_lock(&vm->lock);
			while ((vm->pause_req || v->halted) && !vm->stop_req) {
				if (!v->parked) {
					v->parked = true;
					vm->nr_parked++;
					pthread_cond_broadcast(&vm->cond);
				}
				pthread_cond_wait(&vm->cond, &vm->lock);
			}
			if (v->parked) {
				v->parked = false;
				vm->nr_parked--;
			}
			stop = vm->stop_req;
			if (stop) {
				/* From here on no kick targets this thread. */
				v->thread_exited = true;
				pthread_cond_broadcast(&vm->cond);
			}
			pthread_mutex_unlock(&vm->lock);
			if (stop)
				break;
			continue; /* re-arm from the top */
		}

		r = run_one(v);
		if (r < 0 && r != -EINTR) {
			const struct kvmkit_error *e = kvmkit_last_error();
			char detail[256];

			if (e->kind == KVMKIT_ERR_IOCTL) {
				snprintf(detail, sizeof(detail), "vCPU %u: %s", v->id,
					 kvmkit_strerror());
				kvmkit_vm_request_stop(vm, KVMKIT_STOP_INTERNAL_ERROR, 0, detail);
			}
			/* Otherwise the exit handler already requested the stop. */
		}
	}
	return NULL;
}
