/* SPDX-License-Identifier: MIT */
/*
 * Live migration: a running machine moved to another kvmkit over a stream
 * socket (docs/MIGRATION.md has the protocol and the stream format).
 *
 * The source, kvmkit_machine_migrate(), copies guest RAM while the guest
 * runs (pre-copy): it turns dirty logging on (dirty.h), sends every page
 * that is not zero, then, pass after pass, the pages written meanwhile,
 * until a pass leaves few enough (params.stop_pages) or params.max_passes
 * is reached. Then it pauses the VM, sends the last dirty pages and the
 * machine's state (what a snapshot saves: snapshot.h), and waits for the
 * target's word that the VM runs there. Then the source VM stops with
 * reason KVMKIT_STOP_MIGRATED.
 *
 * The target, kvmkit_machine_incoming(), listens, takes one source, checks
 * its stream header against its own configuration (refusing, with one line
 * that the source also reports, a stream of another version or machine),
 * builds the machine, writes the pages into its RAM, restores the state,
 * starts the VM and tells the source how long the VM was stopped.
 *
 * Failure. Until the target's confirmation arrives, any failure (the
 * connection breaks or times out, the target refuses or fails) leaves the
 * source VM as it was: resumed if this call paused it, dirty logging off
 * again, one error recorded. The target starts nothing it has not received
 * whole and checked; on failure it destroys what it built. One window is
 * left, as in every two-party hand-over: when the connection breaks after
 * the target has started the VM and before its confirmation reaches the
 * source, both run. Stop the target when the source reports an error.
 *
 * Addresses: "unix:PATH" (a stream socket at PATH, shorter than 108
 * bytes) or "tcp:HOST:PORT" (HOST an IPv4 address, a name, or an IPv6
 * address in brackets; PORT 1..65535, or 0 for a target to take any free
 * port). Nothing else is accepted. The stream is neither encrypted nor
 * authenticated: use unix sockets or trusted networks (the tests use
 * loopback only).
 *
 * Threads: kvmkit_machine_migrate() runs on the caller's thread (never a
 * vCPU thread: -EDEADLK) while the vCPUs go on; the progress callback runs
 * on it. No other thread may pause, resume, stop, snapshot or destroy the
 * machine, or use dirty logging, meanwhile (a stop meanwhile makes the
 * migration fail). kvmkit_machine_incoming() blocks its caller until the
 * VM runs or the attempt failed.
 */
#ifndef KVMKIT_MIGRATE_H
#define KVMKIT_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include <kvmkit/machine.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Passes counted in kvmkit_migrate_stats.pass_pages (more are allowed;
 * their pages go into the last entry). */
#define KVMKIT_MIGRATE_PASSES_MAX 64

/* What the progress callback sees, after each pass and at the end. */
struct kvmkit_migrate_progress {
	unsigned int pass; /* 1: the full copy; the last one runs paused */
	bool paused; /* this pass ran with the VM paused (the final one) */
	uint64_t pass_pages; /* pages this pass sent (data and zero) */
	uint64_t bytes; /* bytes sent so far */
	uint64_t elapsed_us; /* since the call began */
};

typedef void (*kvmkit_migrate_progress_fn)(const struct kvmkit_migrate_progress *p, void *opaque);

struct kvmkit_migrate_params {
	/* Live passes at most, the full copy included, before the VM is
	 * paused whatever remains. 0: 30. */
	unsigned int max_passes;
	/* A live pass that sent at most this many pages is the last one.
	 * 0: 256 (1 MiB of 4 KiB pages). */
	uint64_t stop_pages;
	/* Longest wait for the peer on any send or receive, the connection
	 * and the target's final confirmation included. 0: 30000; -1: none. */
	int timeout_ms;
	kvmkit_migrate_progress_fn progress; /* may be NULL */
	void *opaque;
};

void kvmkit_migrate_params_init(struct kvmkit_migrate_params *p);

struct kvmkit_migrate_stats {
	/* The target's measure: from the arrival of the source's "paused"
	 * record to the VM running there (what the guest lost). */
	uint64_t downtime_us;
	/* The source's measure: from its pause to the target's confirmation
	 * (downtime_us plus the network's round trip). */
	uint64_t source_downtime_us;
	uint64_t total_us; /* the whole call */
	uint64_t bytes; /* bytes sent on the stream */
	uint64_t pages; /* RAM pages sent with their contents */
	uint64_t zero_pages; /* dirty pages sent as "zero" (no contents) */
	uint64_t state_bytes; /* the machine state record */
	unsigned int passes; /* passes made, the final paused one included */
	uint64_t pass_pages[KVMKIT_MIGRATE_PASSES_MAX]; /* pages sent per pass */
};

/*
 * Moves @m, RUNNING (or PAUSED: then nothing runs during the copy), to the
 * target listening at @to. @params may be NULL (defaults), @stats may be
 * NULL. On success the source VM is STOPPED with reason
 * KVMKIT_STOP_MIGRATED (kvmkit_machine_run() returns that) and the machine
 * only waits to be destroyed. Errors: -EINVAL (KVMKIT_ERR_PARAM) for a bad
 * address; -EBUSY when the VM is in another state or dirty logging is on
 * already; the socket's errno when the connection fails or breaks
 * (-EPIPE, -ECONNRESET, -ETIMEDOUT...); a bad reply, or a target that could
 * not read the stream (e.g. another version), as KVMKIT_ERR_FORMAT
 * (-ENOEXEC) with the target's reason; any other refusal as -ECONNREFUSED
 * with its reason. Each leaves the VM as it was (see above).
 */
int kvmkit_machine_migrate(struct kvmkit_machine *m, const char *to,
			   const struct kvmkit_migrate_params *params,
			   struct kvmkit_migrate_stats *stats);

/* Take these from the stream instead of @cfg (a target that does not know
 * the machine it receives, as `kvmkit run --incoming` without --vcpus). */
#define KVMKIT_INCOMING_ADOPT_VCPUS (1u << 0)
#define KVMKIT_INCOMING_ADOPT_MEM (1u << 1)
#define KVMKIT_INCOMING_ADOPT_IRQCHIP (1u << 2)

struct kvmkit_incoming_params {
	/* How long to wait for a source to connect; -1 (the default) or 0:
	 * no limit. */
	int accept_timeout_ms;
	/* Longest wait for the source once connected, on any receive. 0:
	 * 30000; -1: none. */
	int timeout_ms;
	unsigned int adopt; /* KVMKIT_INCOMING_ADOPT_* */
	/* Called once the socket listens, with the address a source should
	 * use (tcp port 0 resolved); may be NULL. */
	void (*listening)(const char *addr, void *opaque);
	void *opaque;
};

void kvmkit_incoming_params_init(struct kvmkit_incoming_params *p);

/* What a target measured. */
struct kvmkit_incoming_stats {
	uint64_t downtime_us; /* as kvmkit_migrate_stats.downtime_us */
	uint64_t bytes; /* bytes received */
	uint64_t pages; /* pages received with contents */
	uint64_t zero_pages;
	unsigned int passes;
};

/*
 * Listens at @from (a unix socket path must not exist yet; it is removed
 * once a source connected or the call failed), takes one source and
 * receives its machine into a new one built from @cfg (what a restore
 * takes from it: console_fd, cpu_flags, kvm_path, dirty tracking; vCPU
 * count, memory size and irqchip must match the source's unless @params
 * adopts them; cfg->kernel and cfg->testdev are ignored). Returns the
 * machine RUNNING: wait for it with kvmkit_machine_run() (which then only
 * waits) or kvmkit_vm_wait(). @params and @stats may be NULL.
 *
 * A stream of another format version, a machine that differs, a bad
 * checksum or record, or a source that disconnects or stalls: the target
 * tells the source why (when it can), destroys what it built, leaves *@out
 * untouched and returns the error (KVMKIT_ERR_FORMAT for the stream,
 * KVMKIT_ERR_PARAM naming both values for the configuration, the socket's
 * errno for the connection).
 */
int kvmkit_machine_incoming(const struct kvmkit_machine_config *cfg, const char *from,
			    const struct kvmkit_incoming_params *params,
			    struct kvmkit_incoming_stats *stats, struct kvmkit_machine **out);

/* Checks @addr as both calls do: 0, or -EINVAL with the reason recorded.
 * @listen allows tcp port 0. */
int kvmkit_migrate_check_address(const char *addr, bool listen);

#ifdef __cplusplus
}
#endif
#endif
