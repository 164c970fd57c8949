/* SPDX-License-Identifier: MIT */
/*
 * Basic devices. Each is created against a VM, registers its ranges on the
 * VM's buses, and unregisters them when destroyed (destroy before the VM).
 */
#ifndef KVMKIT_DEVICES_H
#define KVMKIT_DEVICES_H

#include <stddef.h>
#include <stdint.h>

#include <kvmkit/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- isa-debug-exit ---------------------------------------------------
 * A write of V to the port stops the VM with status (V << 1) | 1, as QEMU's
 * isa-debug-exit does. Reads return 0. */
#define KVMKIT_DEBUG_EXIT_PORT 0xf4
struct kvmkit_debug_exit;
int kvmkit_debug_exit_create(struct kvmkit_vm *vm, uint16_t port, struct kvmkit_debug_exit **out);
void kvmkit_debug_exit_destroy(struct kvmkit_debug_exit *dev);

/* ---- report device (kvmkit's guest test channel) --------------------
 * Port base + 0 (4 or 8 bytes, write): append a value to the report log.
 * Port base + 4 (4 bytes, write): power off: the VM stops with status V.
 * Port base + 8 (4 bytes, read): number of values reported so far. */
#define KVMKIT_REPORT_PORT 0x500
#define KVMKIT_REPORT_LEN 0x10
#define KVMKIT_REPORT_MAX 4096
struct kvmkit_report;
int kvmkit_report_create(struct kvmkit_vm *vm, uint16_t port, struct kvmkit_report **out);
void kvmkit_report_destroy(struct kvmkit_report *dev);
/* Copies up to @max reported values into @out; returns the total count
 * (values past KVMKIT_REPORT_MAX are counted but not kept). */
size_t kvmkit_report_values(struct kvmkit_report *dev, uint64_t *out, size_t max);

/* ---- 16550A UART ------------------------------------------------------
 * Transmitted bytes are written to out_fd (-1: discarded). The line status
 * register always shows the transmitter empty (THRE|TEMT). Bytes fed with
 * kvmkit_uart_feed() appear in the receive FIFO. Once connected to an
 * interrupt line, the UART raises it for received data, THR empty and
 * line status (overrun) as IER enables them, gated by MCR.OUT2 as on a PC. */
#define KVMKIT_UART_COM1 0x3f8
#define KVMKIT_UART_COM1_IRQ 4
struct kvmkit_uart;
struct kvmkit_irqchip;
int kvmkit_uart_create(struct kvmkit_vm *vm, uint16_t port, int out_fd, struct kvmkit_uart **out);
void kvmkit_uart_destroy(struct kvmkit_uart *uart);
/* Queues received bytes (up to the 16-byte FIFO plus a 4 KiB buffer);
 * returns the number accepted. */
/* Drives GSI @gsi of @chip with the UART's interrupt output. */
int kvmkit_uart_connect_irq(struct kvmkit_uart *uart, struct kvmkit_irqchip *chip, uint32_t gsi);
size_t kvmkit_uart_feed(struct kvmkit_uart *uart, const void *buf, size_t len);
/* Copies what the guest has transmitted so far (kept up to 64 KiB). */
size_t kvmkit_uart_output(struct kvmkit_uart *uart, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
