/* SPDX-License-Identifier: MIT */
/*
 * Internal constructors of devices whose side effects unit tests stub: they
 * take the buses and callbacks directly instead of a VM. Not installed.
 */
#ifndef KVMKIT_DEVICES_INTERNAL_H
#define KVMKIT_DEVICES_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvmkit/bus.h>
#include <kvmkit/devices.h>

int kvmk_fwcfg_create_on(struct kvmkit_bus *pio, const struct kvmkit_fwcfg_config *cfg,
			 struct kvmkit_fwcfg **out);

/* What the test device does to the world outside its registers. */
struct kvmk_testdev_hooks {
	void *ctx;
	/* Drive IRQ line @line (< KVMKIT_TESTDEV_IRQ_LINES) to @level. */
	void (*irq_line)(void *ctx, uint32_t line, bool level);
	/* Flush guest-physical page @gpa (page aligned) from KVM's MMU: 0, or
	 * -EFAULT when @gpa is not guest RAM (ignored), or another negative
	 * errno (a failure the device reports, throttled). */
	int (*flush_page)(void *ctx, uint64_t gpa);
};

int kvmk_testdev_create_on(struct kvmkit_bus *pio, struct kvmkit_bus *mmio,
			   const struct kvmk_testdev_hooks *hooks, struct kvmkit_testdev **out);

/* What the report device does outside its registers: a guest power-off
 * (a 4-byte write at offset 4) with its status. */
struct kvmk_report_hooks {
	void *ctx;
	void (*power_off)(void *ctx, uint32_t status);
};

int kvmk_report_create_on(struct kvmkit_bus *pio, uint16_t port,
			  const struct kvmk_report_hooks *hooks, struct kvmkit_report **out);

/* What the UART needs from outside its registers (kvmkit_uart_create()
 * fills these from the VM; the fuzz target supplies its own). */
struct kvmk_uart_hooks {
	void *ctx;
	/* out_fd failed for good; @detail is one line. Called from the
	 * writer thread without the UART's lock. */
	void (*host_error)(void *ctx, const char *detail);
	/* Ends a write() blocked on out_fd: its handler must be installed,
	 * do nothing, and lack SA_RESTART. */
	int kick_signal;
	/* How long destroy lets the writer drain the buffer (0: not at all). */
	int flush_ms;
};

int kvmk_uart_create_on(struct kvmkit_bus *pio, uint64_t port, int out_fd,
			const struct kvmk_uart_hooks *hooks, struct kvmkit_uart **out);

/* Saved state of each device with some (the machine frames them): append
 * to @out; restore from untrusted bytes, changing nothing on error. */
struct kvmk_blob;
int kvmk_uart_save(struct kvmkit_uart *u, struct kvmk_blob *out);
int kvmk_uart_restore(struct kvmkit_uart *u, const uint8_t *p, size_t len);
int kvmk_fwcfg_save(struct kvmkit_fwcfg *d, struct kvmk_blob *out);
int kvmk_fwcfg_restore(struct kvmkit_fwcfg *d, const uint8_t *p, size_t len);
int kvmk_testdev_save(struct kvmkit_testdev *d, struct kvmk_blob *out);
int kvmk_testdev_restore(struct kvmkit_testdev *d, const uint8_t *p, size_t len);
int kvmk_report_save(struct kvmkit_report *d, struct kvmk_blob *out);
int kvmk_report_restore(struct kvmkit_report *d, const uint8_t *p, size_t len);

#endif
