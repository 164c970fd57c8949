/* SPDX-License-Identifier: MIT */
/*
 * Basic devices. Each is created against a VM, registers its ranges on the
 * VM's buses, and unregisters them when destroyed (destroy before the VM).
 *
 * Threads and lifetimes. A device's registers are served on vCPU threads
 * (its handlers serialise on the device's own lock); the calls below may
 * be made from any thread. Destroying a device unregisters its ranges and
 * returns once no vCPU is still inside its handlers (the bus waits out
 * running handlers: kvmkit_vm_quiesce), so it may be destroyed while the VM
 * runs, from any thread but one of that device's own handlers. Interrupt
 * lines handed to a device (kvmkit_*_connect_irq) stay the caller's and
 * must outlive it. Buffers passed in are copied; what the getters return
 * (kvmkit_report_values, kvmkit_uart_output) is copied out.
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
 * Bytes fed with kvmkit_uart_feed() appear in the receive FIFO. Once
 * connected to an interrupt line, the UART raises it for received data, THR
 * empty and line status (overrun) as IER enables them, gated by MCR.OUT2 as
 * on a PC.
 *
 * Output. Transmitted bytes are kept in memory (kvmkit_uart_output()) and,
 * with out_fd >= 0, copied into a bounded buffer (KVMKIT_UART_TX_BUF bytes)
 * that a writer thread owned by the UART drains into out_fd. A vCPU never
 * calls write(): a console that stops reading (a pager, a stalled log
 * collector) cannot stall a vCPU, kvmkit_vm_stop() or a timeout. Without
 * out_fd there is no thread and the transmitter is always ready.
 *
 * Flow control, not loss: while the buffer cannot take another FIFO's worth
 * of bytes (16), LSR.THRE and LSR.TEMT read clear, as on a real UART whose
 * transmitter waits for CTS; once a quarter of the buffer is free again they
 * read set and a THR-empty interrupt is raised (from the writer thread).
 * Every driver waits for THRE (or its interrupt) before each byte or FIFO
 * load, so a slow console loses nothing and a console nobody reads only
 * makes the guest wait, as hardware would. A byte written to THR while THRE
 * is clear is dropped and counted, like an overwritten holding register.
 * Chosen over dropping whenever the buffer is full because a guest's output
 * to a slow but live reader (ssh, a pager) then stays whole.
 *
 * If out_fd fails (EPIPE: the reader is gone; or any other write error),
 * output ends, later bytes are dropped, and the VM is stopped with
 * KVMKIT_STOP_HOST_ERROR and a detail saying what failed. The writer thread
 * blocks every signal but the VM's kick signal, so SIGPIPE never reaches it.
 *
 * kvmkit_uart_destroy() (after the vCPUs have stopped) first lets the writer
 * drain the buffer for up to 1 s, giving up after 100 ms in which no byte
 * got out; then it interrupts a write() blocked on out_fd with the VM's kick
 * signal and joins the thread. Bytes still queued then are dropped.
 * out_fd's file description is never changed (no O_NONBLOCK set on it).
 *
 * All calls but create and destroy may be made from any thread. */
#define KVMKIT_UART_COM1 0x3f8
#define KVMKIT_UART_COM1_IRQ 4
#define KVMKIT_UART_TX_BUF 16384
struct kvmkit_uart;
struct kvmkit_line;
int kvmkit_uart_create(struct kvmkit_vm *vm, uint16_t port, int out_fd, struct kvmkit_uart **out);
/* The same UART on the MMIO bus at @gpa: 8 byte registers at stride 1
 * (arm64's machine has it at KVMKIT_ARM64_UART). */
int kvmkit_uart_create_mmio(struct kvmkit_vm *vm, uint64_t gpa, int out_fd,
			    struct kvmkit_uart **out);
void kvmkit_uart_destroy(struct kvmkit_uart *uart);
/* Queues received bytes (up to the 16-byte FIFO plus a 4 KiB buffer);
 * returns the number accepted. */
/* Drives @line (kvmkit_line_open) with the UART's interrupt output. The
 * line stays the caller's: close it after kvmkit_uart_destroy(). */
int kvmkit_uart_connect_irq(struct kvmkit_uart *uart, struct kvmkit_line *line);
size_t kvmkit_uart_feed(struct kvmkit_uart *uart, const void *buf, size_t len);
/* Copies what the guest has transmitted so far (kept up to 64 KiB; bytes
 * dropped while THRE was clear are not in it). */
size_t kvmkit_uart_output(struct kvmkit_uart *uart, char *buf, size_t len);

/* Output counters. With out_fd, tx_bytes == written + queued + dropped at
 * every snapshot; without out_fd only tx_bytes counts. Dropped bytes were
 * sent while THRE was clear, after out_fd failed, or were still queued
 * when destroy gave up. */
struct kvmkit_uart_stats {
	uint64_t tx_bytes; /* THR writes transmitted (loopback excluded) */
	uint64_t written; /* bytes written to out_fd */
	uint64_t dropped; /* bytes that will never reach out_fd */
	uint64_t stalls; /* times the full buffer held THRE clear */
	uint64_t held_ns; /* total time THRE was held clear, up to now */
	uint32_t queued; /* bytes in the buffer now, <= KVMKIT_UART_TX_BUF */
	int out_error; /* errno that ended output (EPIPE, ...), or 0 */
};
void kvmkit_uart_stats(struct kvmkit_uart *uart, struct kvmkit_uart_stats *out);
/* Waits until the buffer has drained, output has failed, @timeout_ms have
 * passed (-1: no limit) or 100 ms went by without a byte getting out.
 * Returns the bytes still queued (0: all written). */
size_t kvmkit_uart_flush(struct kvmkit_uart *uart, int timeout_ms);

/* ---- fw_cfg (QEMU firmware configuration, legacy I/O interface) -------
 * Port 0x510: 16-bit selector write; selecting resets the data offset to
 * 0. Other sizes at 0x510 are ignored, as QEMU refuses them. Port 0x511:
 * each 1-byte read returns the next byte of the selected item; past the end
 * of an item, and for unknown keys, reads return 0. Writes to the data port
 * and reads of any other size or offset are ignored / read 0. The key's
 * bits 14 (write) and 15 (arch-local) select nothing kvmkit has: such keys
 * read 0. Items (little-endian integers):
 *   0x0000 signature "QEMU"          0x0001 ID, u32: bit 0 (traditional I/O)
 *   0x0003 RAM size, u64 (bytes)     0x0005 number of CPUs, u16
 *   0x000f maximum CPUs, u16
 *   0x0011 maximum RAM, u64: one past the highest guest-physical RAM byte.
 *          QEMU defines no such key; 0x11 is where kvm-unit-tests'
 *          lib/x86/fwcfg.h puts FW_CFG_MAX_RAM (a kvmkit choice). */
#define KVMKIT_FWCFG_PORT 0x510
#define KVMKIT_FWCFG_LEN 2
#define KVMKIT_FWCFG_SIGNATURE 0x0000
#define KVMKIT_FWCFG_ID 0x0001
#define KVMKIT_FWCFG_RAM_SIZE 0x0003
#define KVMKIT_FWCFG_NB_CPUS 0x0005
#define KVMKIT_FWCFG_MAX_CPUS 0x000f
#define KVMKIT_FWCFG_MAX_RAM 0x0011
struct kvmkit_fwcfg;
struct kvmkit_fwcfg_config {
	uint64_t ram_size;
	uint64_t max_ram; /* 0: computed from ram_size with the x86 layout */
	uint16_t nb_cpus;
	uint16_t max_cpus; /* 0: nb_cpus */
};
/* @cfg NULL: values from the VM's config. */
int kvmkit_fwcfg_create(struct kvmkit_vm *vm, const struct kvmkit_fwcfg_config *cfg,
			struct kvmkit_fwcfg **out);
void kvmkit_fwcfg_destroy(struct kvmkit_fwcfg *dev);

/* ---- test device (kvm-unit-tests' pc-testdev conventions) ------------
 * Ports 0xe0 and 0xe8: 32-bit scratch registers (4 ports each, 0xe0..0xe3
 * and 0xe8..0xeb). An access of size 1, 2 or 4 at base + k reads or writes
 * bytes k .. k+size-1 of the little-endian register (bytes past byte 3 are
 * dropped on write and read as 0), so a 1-byte write at 0xe1 updates byte
 * 1 only.
 * Port 0xe4 (4 bytes, write): the guest-physical page holding the value is
 * flushed from KVM's MMU (kvmkit_vm_flush_page: the page's protection is
 * widened and restored, which fires the MMU notifier), so the guest's next
 * access faults into KVM again. The page keeps its contents and no host
 * mapping is left behind, however many flushes a guest asks for. Values
 * outside guest RAM are ignored. Flushes the host refuses (e.g. at the
 * process's memory-map limit) are logged as warnings: the first one, then
 * at most one line a second with the count since, and the count not yet
 * logged when the device is destroyed.
 * Ports 0x2000 + n, n < 24 (1-byte write): non-zero raises, 0 lowers line n,
 * every write reaching the pin (kvmkit_line_force: the port is the wire's
 * driver, as QEMU's pc-testdev sets the ISA IRQ level)
 * (kvmkit_irq_line on GSI n; GSIs 0-15 reach the PIC and IOAPIC, 16-23 the
 * IOAPIC, with the default routing). Ignored without an irqchip.
 * MMIO 0xff000000, 64 KiB: scratch memory; accesses of 1, 2, 4 or 8 bytes
 * read back what was written (initially 0). */
#define KVMKIT_TESTDEV_SCRATCH0 0xe0
#define KVMKIT_TESTDEV_FLUSH_PAGE 0xe4
#define KVMKIT_TESTDEV_SCRATCH1 0xe8
#define KVMKIT_TESTDEV_IRQ_PORT 0x2000
#define KVMKIT_TESTDEV_IRQ_LINES 24
#define KVMKIT_TESTDEV_MMIO 0xff000000ULL
#define KVMKIT_TESTDEV_MMIO_LEN 0x10000ULL
struct kvmkit_testdev;
int kvmkit_testdev_create(struct kvmkit_vm *vm, struct kvmkit_testdev **out);
/* Port 0x2000 + @n drives @line (kvmkit_line_open on GSI n, usually); the
 * line stays the caller's: close it after kvmkit_testdev_destroy().
 * Unconnected ports are ignored. */
struct kvmkit_line;
int kvmkit_testdev_connect_irq(struct kvmkit_testdev *dev, unsigned int n, struct kvmkit_line *line);
void kvmkit_testdev_destroy(struct kvmkit_testdev *dev);

#ifdef __cplusplus
}
#endif
#endif
