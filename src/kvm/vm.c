// SPDX-License-Identifier: MIT
/* VM creation and destruction, limits, getters; the lifecycle is in
 * lifecycle.c. */
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
	[KVMKIT_STOP_MIGRATED] = "migrated",
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
	r = kvmk_arch_vm_type(cfg, vm->sys, vm->arch);
	if (r < 0)
		goto fail;
	vm->fd = ioctl(kvmkit_system_fd(vm->sys), KVM_CREATE_VM, (unsigned long)r);
	if (vm->fd < 0) {
		r = kvmk_err_ioctl("KVM_CREATE_VM", errno, "type 0x%x", r);
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
	if (kvmk_vm_refuse_on_own_vcpu(vm, "destroy")) {
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
