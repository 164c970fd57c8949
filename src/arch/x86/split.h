/* SPDX-License-Identifier: MIT */
/*
 * State of the x86 split irqchip back end, shared by its three files:
 * irqchip_split.c (creation, routing mirrors, lines, resample),
 * split_irqfd.c (irqfds and the interrupt thread) and split_legacy.c (the
 * 8259 pair and the 8254 with the INTA on vCPU 0). Internal.
 */
#ifndef KVMKIT_ARCH_X86_SPLIT_H
#define KVMKIT_ARCH_X86_SPLIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "arch/x86/irqchip_x86.h"
#include "arch/x86/ioapic.h"
#include "arch/x86/pic.h"
#include "arch/x86/pit.h"

/* irqfds of each kind the back end tracks. */
#define KVMK_SPLIT_MAX_IRQFDS 256
/* epoll tags of the thread's non-irqfd sources. */
#define KVMK_SPLIT_EV_WAKE UINT32_MAX
#define KVMK_SPLIT_EV_PIT (UINT32_MAX - 1)

/* An irqfd kvmkit's interrupt thread services. */
struct kvmk_user_irqfd {
	bool used;
	int fd;
	int resample_fd; /* -1: edge */
	uint32_t gsi;
};

/* An edge irqfd KVM injects without kvmkit's thread (split_irqfd.c,
 * kernel_gsi()): through the route of its own MSI GSI, or through the
 * mirror of the IOAPIC pin its GSI routes to. */
struct kvmk_kernel_irqfd {
	bool used;
	int fd;
	uint32_t gsi; /* kvmkit's GSI */
	uint32_t kgsi; /* the kernel route it is bound to */
};

struct kvmk_split {
	struct kvmkit_irqchip *chip;
	struct kvmkit_vm *vm;
	int vm_fd;
	unsigned int split_routes;
	struct kvmk_ioapic *ioapic;
	bool ioapic_mapped;
	/*
	 * The kernel's whole table and the irqfds, under chip->lock (the
	 * model's route_changed takes it: lock order model -> chip->lock).
	 * mirrors: each IOAPIC pin's EOI route (ioapic.h), at GSI = pin;
	 * kroutes: the committed MSI routes of GSIs >= split_routes.
	 */
	struct kvm_irq_routing_entry mirrors[KVMKIT_IOAPIC_PINS];
	bool mirror_valid[KVMKIT_IOAPIC_PINS];
	struct kvm_irq_routing_entry *kroutes;
	unsigned int nkroutes;
	struct kvmk_kernel_irqfd kernel_irqfd[KVMK_SPLIT_MAX_IRQFDS];
	struct kvmk_user_irqfd user_irqfds[KVMK_SPLIT_MAX_IRQFDS];
	/* Slots at and above user_hw are free: the lookups on the signal path
	 * scan only up to it, not the whole table (a page of entries). */
	unsigned int user_hw;
	/* Level irqfds asserting a chip pin: their resamplefd and GSI, per
	 * IOAPIC pin and per PIC IRQ (atomics: read on EOI paths). */
	int pin_resample_fd[KVMKIT_IOAPIC_PINS];
	uint32_t pin_resample_gsi[KVMKIT_IOAPIC_PINS];
	int pic_resample_fd[KVMK_PIC_IRQS];
	uint32_t pic_resample_gsi[KVMK_PIC_IRQS];
	int epfd;
	int wake[2];
	pthread_t thread;
	bool thread_started;
	/* The 8254: its timer is a timerfd on the thread. */
	struct kvmk_pit *pit;
	int pit_fd;
	bool pit_mapped, portb_mapped;
	/* The 8259 pair; INTR goes to vCPU 0. */
	struct kvmk_pic *pic;
	bool pic_mapped[3];
};

/* irqchip_split.c */
int kvmk_split_set_gsi(struct kvmk_split *s, uint32_t gsi, bool level, int resample_fd);
bool kvmk_split_clear_resample(struct kvmk_split *s, int rfd);
void kvmk_split_resample(struct kvmk_split *s, int *slot, uint32_t gsi);
int kvmk_split_commit_mirrors(struct kvmk_split *s);

/* split_irqfd.c */
int kvmk_split_thread_setup(struct kvmk_split *s);
int kvmk_split_thread_start(struct kvmk_split *s);
void kvmk_split_thread_stop(struct kvmk_split *s);
int kvmk_split_irqfd_bind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd, int resample_fd);
int kvmk_split_irqfd_unbind(struct kvmkit_irqchip *chip, uint32_t gsi, int fd);
unsigned int kvmk_split_irqfds_in_kernel(struct kvmkit_irqchip *chip, uint32_t gsi);
int kvmk_split_irqfd_signal(struct kvmkit_irqchip *chip, uint32_t gsi, int fd);
/* (chip->lock held) around a change of the kernel table (a commit of
 * kvmkit's table @tab, or a mirror): irqfds leave the kernel before their
 * kernel route goes or changes kind, and enter it after. */
int kvmk_split_irqfds_before_commit(struct kvmk_split *s, const struct kvm_irq_routing_entry *tab,
				    unsigned int n);
void kvmk_split_irqfds_after_commit(struct kvmk_split *s, const struct kvm_irq_routing_entry *tab,
				    unsigned int n);

/* split_legacy.c */
int kvmk_split_pit_setup(struct kvmk_split *s);
int kvmk_split_pic_setup(struct kvmk_split *s);
void kvmk_split_pit_expired(struct kvmk_split *s);
void kvmk_split_legacy_teardown(struct kvmk_split *s);

#endif
