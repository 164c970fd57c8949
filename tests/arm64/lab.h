/* SPDX-License-Identifier: MIT */
/*
 * What the arm64 tests and the arm64 benchmark share (lab.c): the lab, a
 * VM running lab.elf whose vCPUs serve mailboxes (arm64_abi.h), and a
 * harness small enough to link statically (Debian has no static
 * libcmocka): CHECK() records the first failure in fail_msg and jumps to
 * the function's `out:` label.
 */
#ifndef KVMKIT_TESTS_ARM64_LAB_H
#define KVMKIT_TESTS_ARM64_LAB_H

#include <stdbool.h>
#include <stdint.h>

#include <kvmkit/kvmkit.h>

#include "arm64_abi.h"

#define WAIT_MS 30000 /* a guest that does not answer fails the case */

extern const char *guest_dir; /* where hello.elf and lab.elf are */
extern bool verbose; /* -v: each command and wait on stderr */
extern char fail_msg[512]; /* the first failure of the current case */

#define CHECK(cond, ...)                                         \
	do {                                                     \
		if (!(cond)) {                                   \
			note_fail(__LINE__, #cond, __VA_ARGS__); \
			goto out;                                \
		}                                                \
	} while (0)

void note_fail(int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t now_ms(void);
int read_guest(const char *name, void **img, size_t *len);

struct lab {
	struct kvmkit_vm *vm;
	struct kvmkit_irqchip *chip;
	struct kvmkit_uart *uart;
	unsigned int ncpus;
	int gic;
};

typedef int (*before_vcpus_fn)(struct lab *l, void *arg);

volatile uint64_t *mbox(struct lab *l, unsigned int cpu, unsigned int off);
uint32_t count_of(struct lab *l, unsigned int cpu, uint32_t intid);
/* Bounded (WAIT_MS) waits; 0 once there, -1 on time-out. */
int wait_u64(volatile uint64_t *p, uint64_t want);
int wait_count(struct lab *l, unsigned int cpu, uint32_t intid, uint32_t want);
/* Runs a command on vCPU @cpu; -1 (and *res untouched) if it never ends. */
int lab_cmd(struct lab *l, unsigned int cpu, uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2,
	    uint64_t *res);
/* VM, vGIC (@icfg or the defaults), @before, vCPUs, UART, lab.elf, start,
 * and vCPU 0's loop up with its GIC interface on. 0, or -1 noted. */
int lab_start(struct lab *l, unsigned int ncpus, const struct kvmkit_irqchip_config *icfg,
	      before_vcpus_fn before, void *arg);
/* vCPU @cpu started with PSCI CPU_ON from vCPU 0, its GIC interface on. */
int lab_bring_up(struct lab *l, unsigned int cpu);
/* Powers the lab off through PSCI and checks the stop. */
int lab_power_off(struct lab *l);
/* Stops and frees it (the guest's output first if the case failed). */
void lab_free(struct lab *l);
/* A64_CMD_SPI_ENABLE's target argument for vCPU @cpu. */
uint64_t spi_target(struct lab *l, unsigned int cpu);

/* The cases (test_arm64.c, cases_irq.c). */
extern int expect_gic;
void t_spi_line_edge(void);
void t_spi_masked(void); /* cases_mask.c */
void t_virtio_rng(void); /* cases_virtio.c */
void t_spi_irqfd_edge_early(void);
void t_routes_before_init(void);
void t_spi_irqfd_level_resample(void);
void t_spi_reroute_irqfd(void);
void t_nr_irqs(void);
void t_gic_state(void);
void t_vcpu_state(void);
void t_machine_snapshot(void);
void t_ppi_line(void);
void t_sgi(void);
void t_vtimer(void);
void t_its_msi(void);

#endif
