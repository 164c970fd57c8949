// SPDX-License-Identifier: MIT
/*
 * dirty_lab: writes the pages the host names, on every vCPU, at CPL3, so
 * that the host can compare a dirty-log harvest with the pages actually
 * written (see dirty_abi.h). The loop keeps its state in registers and
 * writes only ACK in its mailbox: its own footprint in guest memory is
 * that page and whatever the runtime's stack frame needs, the same for
 * every command, so the host can measure it with a NOP.
 */
#include "guest.h"
#include "dirty_abi.h"

struct dirty_mailbox {
	uint32_t seq;
	uint32_t ack;
	uint32_t cmd;
	uint32_t ready;
	uint64_t args[4];
};

_Static_assert(__builtin_offsetof(struct dirty_mailbox, seq) == DIRTY_LAB_MB_SEQ, "seq");
_Static_assert(__builtin_offsetof(struct dirty_mailbox, ack) == DIRTY_LAB_MB_ACK, "ack");
_Static_assert(__builtin_offsetof(struct dirty_mailbox, cmd) == DIRTY_LAB_MB_CMD, "cmd");
_Static_assert(__builtin_offsetof(struct dirty_mailbox, ready) == DIRTY_LAB_MB_READY, "ready");
_Static_assert(__builtin_offsetof(struct dirty_mailbox, args) == DIRTY_LAB_MB_ARG(0), "args");

static void write_pages(uint64_t base, uint64_t count, uint64_t stride, uint64_t value)
{
	for (uint64_t i = 0; i < count; i++)
		*(volatile uint64_t *)(base + i * stride) = value + i;
}

int guest_main(unsigned int id, unsigned int count)
{
	struct dirty_mailbox *mb = (struct dirty_mailbox *)(uintptr_t)DIRTY_LAB_MAILBOX(id);
	uint32_t seen = atomic_load_acquire(&mb->seq);

	(void)count;
	atomic_store_release(&mb->ack, seen);
	atomic_store_release(&mb->ready, 1);
	for (;;) {
		uint32_t seq, cmd;

		while ((seq = atomic_load_acquire(&mb->seq)) == seen)
			cpu_relax();
		seen = seq;
		cmd = mb->cmd;
		if (cmd == DIRTY_LAB_WRITE)
			write_pages(mb->args[0], mb->args[1], mb->args[2], mb->args[3]);
		atomic_store_release(&mb->ack, seq);
		if (cmd == DIRTY_LAB_EXIT) {
			if (id == 0)
				return (int)mb->args[0];
			guest_park();
		}
	}
}
