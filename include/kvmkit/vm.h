/* SPDX-License-Identifier: MIT */
/*
 * A KVM virtual machine: its memory, its buses, its vCPUs and its lifecycle.
 *
 * Lifecycle:  CREATED --start--> RUNNING <--pause/resume--> PAUSED
 *             RUNNING|PAUSED --stop (or guest exit)--> STOPPED
 *             any state --fatal error--> ERROR
 * kvmkit_vm_destroy() is valid in every state: it stops and joins the vCPU
 * threads and releases every fd, thread and mapping the VM owns.
 *
 * Threads: set-up (the calls marked "CREATED only": vCPUs, irqchip,
 * extension points) is made before kvmkit_vm_start(), normally by the thread
 * that builds the VM. Every other call may come from any thread, except
 * that kvmkit_vm_pause(), _stop(), _wait() and _destroy() wait for the vCPU
 * threads: from one of the VM's own vCPU threads (a device or exit handler,
 * a hook) they are refused with -EDEADLK and a KVMKIT_ERR_STATE record
 * (destroy, which returns nothing, logs and does nothing). A device stops
 * the VM with kvmkit_vm_request_stop(). kvmkit_vm_destroy() comes last, when
 * no other thread is inside a call on the VM.
 *
 * Lifetimes: what the getters return (config, fds, system, buses, vCPUs,
 * irqchip) belongs to the VM until kvmkit_vm_destroy(): never close or free
 * it. Pointers into guest memory: see kvmkit_vm_gpa_to_hva().
 */
#ifndef KVMKIT_VM_H
#define KVMKIT_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvmkit/bus.h>
#include <kvmkit/system.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kvmkit_vm;
struct kvmkit_vcpu;

enum kvmkit_arch {
	KVMKIT_ARCH_HOST = 0, /* the architecture kvmkit was built for */
	KVMKIT_ARCH_X86_64,
	KVMKIT_ARCH_ARM64,
};

/* Default x86 addresses for KVM_SET_TSS_ADDR (3 pages) and
 * KVM_SET_IDENTITY_MAP_ADDR (1 page), just below the 4 GiB BIOS area. */
#define KVMKIT_X86_TSS_ADDR 0xfffbd000ULL
#define KVMKIT_X86_IDENTITY_MAP_ADDR 0xfffbc000ULL
/* RAM above this goes above 4 GiB, leaving room for MMIO devices. */
#define KVMKIT_X86_MMIO_HOLE 0xc0000000ULL

struct kvmkit_vm_config {
	unsigned int vcpus;	 /* 1 .. KVM_CAP_MAX_VCPUS */
	uint64_t mem_size;	 /* bytes of RAM, page multiple, > 0 */
	enum kvmkit_arch arch;	 /* must match the host */
	uint64_t tss_addr;	 /* x86 only */
	uint64_t identity_map_addr; /* x86 only */
	const char *kvm_path;	 /* NULL: $KVMKIT_KVM_PATH, else /dev/kvm */
	int pause_signal;	 /* signal used to kick vCPUs; 0: SIGRTMIN + 1 */
	bool exit_timing;	 /* measure user_ns per exit (two clock reads per exit) */
	const char *cpu_flags;	 /* "+x2apic,-avx" (vcpu.h); arm64: "pmu,sve" */
	/* Dirty-page tracking (dirty.h). 0: the bitmap. Otherwise a dirty ring
	 * of this many entries per vCPU (a power of two; 4096 = 64 KiB is a
	 * good size), enabled right after KVM_CREATE_VM where the host has
	 * one, else the bitmap: kvmkit_dirty_mode() tells which. */
	uint32_t dirty_ring_entries;
	/* The bitmap without KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (comparisons). */
	bool dirty_no_manual_protect;
	/* RAM from a file instead of anonymous memory (a snapshot's memory,
	 * snapshot.h): with ram_from_fd, each RAM region the VM creates maps
	 * ram_fd privately (MAP_PRIVATE: guest writes stay in this process,
	 * pages fault in lazily), the regions one after the other from file
	 * offset 0 in GPA order. The file must hold mem_size bytes. ram_fd is
	 * borrowed and used only inside kvmkit_vm_create() (the mappings keep
	 * the file open). */
	bool ram_from_fd;
	int ram_fd;
};

void kvmkit_vm_config_init(struct kvmkit_vm_config *cfg);

/* Creates the VM and its RAM (at GPA 0; on x86 RAM above
 * KVMKIT_X86_MMIO_HOLE continues at 4 GiB). No vCPU is created yet. @cfg
 * and its strings are copied: the caller may free them once this returns. */
int kvmkit_vm_create(const struct kvmkit_vm_config *cfg, struct kvmkit_vm **out);
/* Not from the VM's vCPU threads, nor while another thread is in a call on
 * @vm (see above). */
void kvmkit_vm_destroy(struct kvmkit_vm *vm);

/* The VM's copy of its config (arch and pause_signal resolved, strings
 * copied); valid until kvmkit_vm_destroy(). */
const struct kvmkit_vm_config *kvmkit_vm_config(const struct kvmkit_vm *vm);
int kvmkit_vm_fd(const struct kvmkit_vm *vm);
struct kvmkit_system *kvmkit_vm_system(struct kvmkit_vm *vm);
/* KVM_CHECK_EXTENSION on the VM fd (per-VM answers, e.g. KVM_CAP_MSI_DEVID). */
int kvmkit_vm_check_cap(struct kvmkit_vm *vm, long cap);

/* ---- guest memory ---------------------------------------------------- */

#define KVMKIT_MEM_READONLY (1u << 0) /* guest writes exit as MMIO */
/* KVM logs the slot from its creation on, whether or not
 * kvmkit_dirty_enable() is on (which logs every slot anyway). */
#define KVMKIT_MEM_LOG_DIRTY (1u << 1)

/*
 * The calls in this section may be made from any thread in any state (KVM
 * lets slots change under running vCPUs).
 */

/* Maps @size bytes at guest-physical @gpa. With @host NULL kvmkit allocates
 * anonymous memory (MAP_NORESERVE, 2 MiB aligned for huge pages) and owns it.
 * A @host mapping (page aligned, readable and writable) stays the caller's:
 * keep it mapped until the region is removed or the VM destroyed; kvmkit
 * never unmaps it. Returns the slot number (>= 0) or a negative error;
 * overlaps with another region, unaligned addresses and exhausted slots are
 * rejected. */
int kvmkit_vm_add_memory(struct kvmkit_vm *vm, uint64_t gpa, uint64_t size, unsigned int flags,
			 void *host);
/* Deletes the slot, then waits out the exit handlers vCPUs are running (as
 * kvmkit_vm_quiesce(), with its rule for handlers), then unmaps the memory
 * if kvmkit allocated it. */
int kvmkit_vm_remove_memory(struct kvmkit_vm *vm, int slot);

/* One memory region as kvmkit_vm_memory_regions() reports it. */
struct kvmkit_mem_region {
	int slot;
	uint64_t gpa;
	uint64_t size;
	unsigned int flags; /* KVMKIT_MEM_* */
};
/* Copies up to @max regions, in slot order, into @out and returns how many
 * the VM has (a consistent snapshot; any thread). */
unsigned int kvmkit_vm_memory_regions(struct kvmkit_vm *vm, struct kvmkit_mem_region *out,
				      unsigned int max);

/*
 * Host address of [gpa, gpa + len), or NULL if that range is not wholly
 * inside one memory region (then the thread's error says why).
 * The pointer is valid until the region is removed or the VM destroyed. An
 * exit handler may use it until it returns, even if another thread removes
 * the region meanwhile (removal waits for handlers). Anyone keeping it
 * longer (a device's own thread, the application) must stop using it
 * before removing the region: kvmkit cannot see such holders, and unmaps
 * the memory it allocated on removal. While vCPUs run the guest may change
 * the memory at any moment: copy what you check before you trust it.
 */
void *kvmkit_vm_gpa_to_hva(struct kvmkit_vm *vm, uint64_t gpa, uint64_t len);
/* Copy under the memory lock: a removal on another thread either waits for
 * the copy or makes it fail with -EFAULT, never unmaps memory under it. */
int kvmkit_vm_read(struct kvmkit_vm *vm, uint64_t gpa, void *buf, size_t len);
/* Copies into guest RAM and, while dirty logging is on (dirty.h), marks the
 * pages dirty after the copy. Any thread. */
int kvmkit_vm_write(struct kvmkit_vm *vm, uint64_t gpa, const void *buf, size_t len);
/* For a device that writes guest RAM through a kvmkit_vm_gpa_to_hva()
 * pointer (DMA): call it after each write, so that a dirty-log harvest
 * (dirty.h) reports the pages; KVM does not see writes made from the host.
 * Marking after the write matters: a harvest between the mark and the write
 * could copy the page before it changed. Any thread, any VM state; does
 * nothing while logging is off. -EFAULT (nothing marked) unless
 * [gpa, gpa + len) lies wholly inside one memory region. */
int kvmkit_vm_mark_dirty(struct kvmkit_vm *vm, uint64_t gpa, uint64_t len);

/* Makes KVM drop its translation of the guest-physical page holding @gpa,
 * so the guest's next access to it faults into KVM again (the test
 * device's page flush). The page keeps its contents and host address, the
 * RAM keeps its madvise flags, and no host mapping is left behind. May be
 * called while vCPUs run. Only for memory kvmkit allocated: -EFAULT when
 * @gpa is not in guest RAM, -EOPNOTSUPP for memory the caller supplied (or
 * in a READ_IMPLIES_EXEC process), another negative errno when the host
 * refuses (e.g. -ENOMEM at the process's memory-map limit). */
int kvmkit_vm_flush_page(struct kvmkit_vm *vm, uint64_t gpa);

/* Bytes of RAM created from the config. */
uint64_t kvmkit_vm_ram_size(const struct kvmkit_vm *vm);

/* ---- buses ----------------------------------------------------------- */

/* The VM's buses, owned by it (never kvmkit_bus_destroy() them). */
struct kvmkit_bus *kvmkit_vm_pio_bus(struct kvmkit_vm *vm);
struct kvmkit_bus *kvmkit_vm_mmio_bus(struct kvmkit_vm *vm);

/* ---- lifecycle ------------------------------------------------------- */

enum kvmkit_vm_state {
	KVMKIT_VM_CREATED = 0,
	KVMKIT_VM_RUNNING,
	KVMKIT_VM_PAUSED,
	KVMKIT_VM_STOPPED,
	KVMKIT_VM_ERROR,
};

/* Static strings. */
const char *kvmkit_vm_state_name(enum kvmkit_vm_state s);
/* Any thread: the state at the time of the call. */
enum kvmkit_vm_state kvmkit_vm_state(struct kvmkit_vm *vm);

/* Pure transition check used by the lifecycle calls: 0 if @op ("start",
 * "pause", "resume", "stop") is valid from @from, else -EBUSY with a
 * KVMKIT_ERR_STATE record naming the current and the expected state. */
int kvmkit_vm_check_transition(enum kvmkit_vm_state from, const char *op,
			       enum kvmkit_vm_state *to);

/* Starts one thread per created vCPU. All vCPUs must exist. */
int kvmkit_vm_start(struct kvmkit_vm *vm);
/* Returns once every vCPU thread is outside KVM_RUN and parked. Not from
 * the VM's vCPU threads (-EDEADLK). */
int kvmkit_vm_pause(struct kvmkit_vm *vm);
int kvmkit_vm_resume(struct kvmkit_vm *vm);
/* Stops every vCPU and joins its thread. Not from the VM's vCPU threads
 * (-EDEADLK). Stop and wait may run on several threads at once: each
 * returns only once every vCPU thread has been joined. */
int kvmkit_vm_stop(struct kvmkit_vm *vm);

/* Why the VM stopped. */
enum kvmkit_stop_reason {
	KVMKIT_STOP_NONE = 0,
	KVMKIT_STOP_REQUESTED,	   /* kvmkit_vm_stop() */
	KVMKIT_STOP_GUEST_EXIT,	   /* a device or a system-event power-off requested it */
	KVMKIT_STOP_SHUTDOWN,	   /* KVM_EXIT_SHUTDOWN: triple fault */
	KVMKIT_STOP_HALT,	   /* every vCPU halted with nothing to wake it */
	KVMKIT_STOP_UNHANDLED_EXIT, /* an exit kvmkit cannot handle */
	KVMKIT_STOP_INTERNAL_ERROR, /* KVM_EXIT_INTERNAL_ERROR / FAIL_ENTRY */
	KVMKIT_STOP_TIMEOUT,	   /* kvmkit_vm_wait() timed out */
	KVMKIT_STOP_HOST_ERROR,	   /* host-side failure; the detail says what */
	KVMKIT_STOP_GUEST_RESET,   /* KVM_EXIT_SYSTEM_EVENT reset: the guest asked for a reboot */
	KVMKIT_STOP_GUEST_CRASH,   /* KVM_EXIT_SYSTEM_EVENT crash: the guest reported a panic */
	KVMKIT_STOP_MIGRATED,	   /* moved to another kvmkit (migrate.h); detail: where */
};

struct kvmkit_stop_info {
	enum kvmkit_stop_reason reason;
	int status;	      /* GUEST_EXIT: the status the device gave */
	int vcpu;	      /* vCPU that caused it, or -1 */
	uint32_t exit_reason; /* KVM exit reason for SHUTDOWN/UNHANDLED/INTERNAL/RESET/CRASH */
	char detail[512];     /* one line; for faults, a register summary */
};

const char *kvmkit_stop_reason_name(enum kvmkit_stop_reason r);

/* Asks the VM to stop with @reason and returns at once (the first request
 * wins; @detail is copied): any thread, the VM's vCPU threads included. */
void kvmkit_vm_request_stop(struct kvmkit_vm *vm, enum kvmkit_stop_reason reason, int status,
			    const char *detail);

/* Waits until the VM leaves RUNNING/PAUSED on its own, or @timeout_ms
 * passes (-1: forever). On timeout returns -ETIMEDOUT with the VM still
 * running. Fills @info (may be NULL). Not from the VM's vCPU threads
 * (-EDEADLK). */
int kvmkit_vm_wait(struct kvmkit_vm *vm, int timeout_ms, struct kvmkit_stop_info *info);

/* ---- ioeventfd -------------------------------------------------------- */

#define KVMKIT_IOEVENTFD_PIO (1u << 0)
#define KVMKIT_IOEVENTFD_DATAMATCH (1u << 1)
/* Guest writes of @len bytes (1, 2, 4, 8, or 0: any, with
 * KVM_CAP_IOEVENTFD_ANY_LENGTH) at @addr (a port with KVMKIT_IOEVENTFD_PIO)
 * signal eventfd @fd inside KVM, without an exit to userspace; with
 * DATAMATCH only writes of @datamatch do. Any thread, any VM state. @fd is
 * borrowed: KVM holds its own reference to the eventfd (closing @fd does
 * not remove it; removing takes an fd of the same eventfd). The VM drops
 * them all when destroyed. */
int kvmkit_ioeventfd_add(struct kvmkit_vm *vm, uint64_t addr, uint32_t len, unsigned int flags,
			 uint64_t datamatch, int fd);
int kvmkit_ioeventfd_remove(struct kvmkit_vm *vm, uint64_t addr, uint32_t len,
			    unsigned int flags, uint64_t datamatch, int fd);

/* ---- extension points --------------------------------------------------
 * For components that live as long as the VM (irqchip back ends, devices
 * that need per-run work). Registration is only allowed while the VM is
 * CREATED; -EBUSY otherwise, -ENOSPC past a small fixed number. */

typedef void (*kvmkit_teardown_fn)(void *opaque);
/* kvmkit_vm_destroy() calls @fn, on its own thread, after the vCPU threads
 * have stopped and before vCPUs, memory and buses are freed, in reverse
 * registration order. */
int kvmkit_vm_add_teardown(struct kvmkit_vm *vm, kvmkit_teardown_fn fn, void *opaque);

/* Returns once no vCPU (other than the caller's own) is still inside an
 * exit handler it entered before the call: every running vCPU is kicked
 * and has re-entered KVM_RUN, parked or stopped. kvmkit_bus_unregister() on
 * the VM's buses does this, so a device may be freed as soon as its ranges
 * are unregistered, even while the VM runs. Any thread; from an exit
 * handler it waits for the other vCPUs, so handlers on two vCPUs must not
 * quiesce (unregister ranges, remove memory) at the same time: each would
 * wait for the other. Hold no lock a handler may need. */
int kvmkit_vm_quiesce(struct kvmkit_vm *vm);

/* Kicks vCPU @id out of KVM_RUN (no-op if its thread is not running); any
 * thread. Its pre-run hooks then run before it re-enters the guest. */
void kvmkit_vm_kick_vcpu(struct kvmkit_vm *vm, unsigned int id);

/* ---- vCPUs ----------------------------------------------------------- */

/* Creates vCPU @id. Fails for id >= config vcpus, >= KVM_CAP_MAX_VCPUS or
 * KVM_CAP_MAX_VCPU_ID, a duplicate id, or a VM that is not CREATED. */
int kvmkit_vm_create_vcpu(struct kvmkit_vm *vm, unsigned int id, struct kvmkit_vcpu **out);
/* vCPU @id (the VM's, freed by kvmkit_vm_destroy()) or NULL; any thread. */
struct kvmkit_vcpu *kvmkit_vm_vcpu(struct kvmkit_vm *vm, unsigned int id);
unsigned int kvmkit_vm_vcpu_count(const struct kvmkit_vm *vm);

#ifdef __cplusplus
}
#endif
#endif
