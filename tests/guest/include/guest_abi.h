/* SPDX-License-Identifier: MIT */
/*
 * The contract between kvmkit's guest test programs and the host-side tests
 * that run them: fixed guest-physical addresses, port/MMIO locations, the
 * values guests report and the statuses they power off with.
 *
 * Included by guest C code, guest assembly and host C code, so it holds
 * nothing but macros. 64-bit constants go through GUEST_U64() so that the
 * assembler, which knows no integer suffixes, can use them too.
 *
 * Reports: a guest "reports" a 32-bit value with one 4-byte write to
 * GUEST_REPORT_PORT + 0 (x86 port I/O is at most 4 bytes wide, so a 64-bit
 * value is reported as two values: low half, then high half).
 */
#ifndef KVMKIT_GUEST_ABI_H
#define KVMKIT_GUEST_ABI_H

#ifdef __ASSEMBLER__
#define GUEST_U64(x) x
#else
#define GUEST_U64(x) x##ULL

#endif

/* ---- Image layout ------------------------------------------------------ */

/* Every guest image is linked here and must end below GUEST_ABI_BASE. */
#define GUEST_LOAD_ADDR 0x100000
/* Guests need at least this much RAM (image, stacks and the ABI page). */
#define GUEST_MIN_RAM (4 << 20)
/* Most vCPUs the runtime supports; a vCPU whose index is at or above this
 * powers the VM off with GUEST_STATUS_TOO_MANY_VCPUS. */
#define GUEST_MAX_VCPUS 16

/* ---- Devices the guests use (mirror kvmkit/devices.h) ------------------- */

#define GUEST_DEBUG_EXIT_PORT 0xf4
#define GUEST_REPORT_PORT 0x500
#define GUEST_REPORT_VALUE (GUEST_REPORT_PORT + 0) /* write 4 bytes */
#define GUEST_REPORT_POWER_OFF (GUEST_REPORT_PORT + 4) /* write 4 bytes */
#define GUEST_REPORT_COUNT (GUEST_REPORT_PORT + 8) /* read 4 bytes */
#define GUEST_UART_PORT 0x3f8

/* ---- Power-off statuses ------------------------------------------------- */

#define GUEST_STATUS_OK 0
/* Generic failure a guest program may return. */
#define GUEST_STATUS_FAIL 1
/* A vCPU index >= GUEST_MAX_VCPUS started. */
#define GUEST_STATUS_TOO_MANY_VCPUS 0xde
/* An interrupt arrived on a vector 32..255 with no installed handler; the
 * vector was reported first. */
#define GUEST_STATUS_UNHANDLED_IRQ 0xdf
/* CPU exception @vec (0..31): statuses 0xe0..0xff. */
#define GUEST_STATUS_EXCEPTION_BASE 0xe0
#define GUEST_STATUS_EXCEPTION(vec) (GUEST_STATUS_EXCEPTION_BASE + (vec))

/*
 * On a CPU exception the runtime prints a line on the UART, then reports
 * four values and powers off with GUEST_STATUS_EXCEPTION(vector):
 *   [0] vector, [1] RIP bits 31:0, [2] RIP bits 63:32, [3] error code
 * (0 for exceptions without one).
 */
#define GUEST_EXC_REPORTS 4

/* ---- The ABI page: fixed guest-physical addresses ----------------------- */

#define GUEST_ABI_BASE 0x200000

/* pause_loop: vCPU 0 zeroes the counter, then stores the magic, then
 * increments the counter (a 64-bit store each time) forever. */
#define GUEST_PAUSE_COUNTER_ADDR (GUEST_ABI_BASE + 0x0)
#define GUEST_PAUSE_MAGIC_ADDR (GUEST_ABI_BASE + 0x8)
#define GUEST_PAUSE_MAGIC GUEST_U64(0x6b766d6b69747275) /* "kvmkitru" */

/* exits_bench: 64-bit iteration count the host may store before the run;
 * 0 means GUEST_BENCH_ITERS_DEFAULT. */
#define GUEST_BENCH_ITERS_ADDR (GUEST_ABI_BASE + 0x10)
#define GUEST_BENCH_ITERS_DEFAULT 100000

/* uart_flood: see the program's section below. */
#define GUEST_FLOOD_BYTES_ADDR (GUEST_ABI_BASE + 0x20) /* u64, host: bytes to flood */
#define GUEST_FLOOD_SENT_ADDR (GUEST_ABI_BASE + 0x28) /* u64, guest: bytes flooded */
#define GUEST_FLOOD_HELD_ADDR (GUEST_ABI_BASE + 0x30) /* u64, guest: THRE-clear reads */

/* ---- Test device locations (host tests register handlers there) -------- */

#define GUEST_TEST_PORT 0x700
#define GUEST_TEST_MMIO GUEST_U64(0xd0000000)

/* ---- Per-program values --------------------------------------------------- */

/* hello: prints GUEST_HELLO_TEXT, reports GUEST_HELLO_REPORT, status 0. */
#define GUEST_HELLO_TEXT "hello from kvmkit guest"
#define GUEST_HELLO_REPORT 0x600d

/* smp_id: vCPU i reports GUEST_SMP_ID_BASE + i; vCPU 0 powers off with 0
 * once every vCPU has reported. */
#define GUEST_SMP_ID_BASE 0x1000

/* smp_exit: like smp_id, then every vCPU powers off at once with this
 * status (the first write the host handles wins). */
#define GUEST_SMP_EXIT_STATUS(id) (0x40 + (id))

/* demo: vCPU 0 prints a banner starting with this, powers off with 0. */
#define GUEST_DEMO_BANNER "kvmkit demo guest: hello from vCPU"

/*
 * io_sizes (vCPU 0, at CPL3), in this order:
 *  1. port writes to GUEST_TEST_PORT: 1 byte GUEST_IO_PIO_W8, 2 bytes
 *     GUEST_IO_PIO_W16, 4 bytes GUEST_IO_PIO_W32;
 *  2. port reads from GUEST_TEST_PORT of 1, 2, 4 bytes, each reported
 *     (zero-extended): report values [0], [1], [2];
 *  3. MMIO writes to GUEST_TEST_MMIO: 1 byte GUEST_IO_MMIO_W8, 2 bytes
 *     GUEST_IO_MMIO_W16, 4 bytes GUEST_IO_MMIO_W32, 8 bytes GUEST_IO_MMIO_W64;
 *  4. MMIO reads from GUEST_TEST_MMIO of 1, 2, 4, 8 bytes, reported as
 *     values [3], [4], [5] and, for the 8-byte read, [6] = bits 31:0,
 *     [7] = bits 63:32;
 *  5. power off with status 0.
 */
#define GUEST_IO_PIO_W8 0x11
#define GUEST_IO_PIO_W16 0x2222
#define GUEST_IO_PIO_W32 0x33333333
#define GUEST_IO_MMIO_W8 0x44
#define GUEST_IO_MMIO_W16 0x5555
#define GUEST_IO_MMIO_W32 0x66666666
#define GUEST_IO_MMIO_W64 GUEST_U64(0x7777777788888888)
#define GUEST_IO_REPORTS 8

/* exits_bench (vCPU 0, at CPL3): N 4-byte MMIO writes to GUEST_TEST_MMIO,
 * then N 4-byte port writes to GUEST_TEST_PORT (values 0..N-1), then reports
 * N (low 32 bits) and powers off with 0. */

/* exception: reports the address of its ud2 (bits 31:0; the image lies below
 * 4 GiB), then executes it at CPL3. Expected: status
 * GUEST_STATUS_EXCEPTION(6) and reports [addr, 6, addr, 0, 0]. */
#define GUEST_EXC_UD 6

/* triple_fault: vCPU 0 loads an empty IDT at CPL0 and executes int3: the
 * host sees a shutdown (KVM_EXIT_SHUTDOWN); nothing is reported. */

/*
 * uart_flood (vCPU 0, at CPL3): a hostile user of the 16550 UART.
 *  1. GUEST_FLOOD_ROUNDS pseudo-random writes of any value to any of the 8
 *     registers (DLAB, FCR, loopback MCR, IER included), each followed by
 *     reads of IIR, LSR and MSR; then fixed probes of DLL/DLM, SCR and
 *     loopback; then 8N1, FIFO on, no loopback, OUT2 off, IER 0.
 *  2. Bytes to THR in GUEST_FLOOD_CHUNK-byte `rep outsb` strings, never
 *     waiting for THRE, with one LSR read after each string. The host may
 *     store the byte total at GUEST_FLOOD_BYTES_ADDR (rounded up to whole
 *     strings; 0: flood forever). After each string the guest stores its
 *     running totals at GUEST_FLOOD_SENT_ADDR and GUEST_FLOOD_HELD_ADDR.
 * Reports, in order, then power off with 0:
 *  [0] IIR or LSR values no 16550 can show, seen in step 1 (0 expected)
 *  [1] bytes step 1 transmitted (THR writes with DLAB and loopback off)
 *  [2] DLL | DLM << 8 read back after writing 0x34, 0x12 with DLAB set
 *  [3] SCR read back after writing 0x5a
 *  [4] RBR after sending 0xa5 in loopback (0xa5)
 *  [5] MSR in loopback with MCR = 0x1f (0xf0)
 *  [6] LSR.DR after FCR cleared the receive FIFO (0)
 *  [7], [8] bytes flooded in step 2 (low, high)
 *  [9] strings after which LSR showed THRE clear (the transmitter held)
 *  [10] strings after which LSR showed TEMT set with THRE clear (0 expected)
 */
#define GUEST_FLOOD_ROUNDS 200
#define GUEST_FLOOD_CHUNK 4096
#define GUEST_FLOOD_REPORTS 11

/* ---- irq_lab: a guest the host drives through a mailbox ------------------
 *
 * Every vCPU runs a command loop at CPL3 (STI/CLI and port I/O through the
 * runtime's gate). The host writes a command into the vCPU's mailbox and bumps
 * seq (a release store); the vCPU runs the command, writes result, then
 * stores ack = seq (release). Interrupt handlers (vectors 32..255, at CPL0)
 * count every interrupt per vector in the vCPU's counter page and EOI it
 * as the vector's EOI mode says. All fields are little-endian.
 */
#define GUEST_LAB_MAILBOX(cpu) (GUEST_ABI_BASE + 0x10000 + (cpu) * 0x100)
#define GUEST_LAB_MB_SEQ 0x00	 /* u32, written by the host */
#define GUEST_LAB_MB_ACK 0x04	 /* u32, written by the guest */
#define GUEST_LAB_MB_CMD 0x08	 /* u32 */
#define GUEST_LAB_MB_RESULT 0x10 /* u64, written by the guest */
#define GUEST_LAB_MB_ARG(i) (0x18 + 8 * (i)) /* u64 args[0..3] */

#define GUEST_LAB_COUNTERS(cpu) (GUEST_ABI_BASE + 0x20000 + (cpu) * 0x1000)
#define GUEST_LAB_CNT_VECTOR(v) (4 * (v)) /* u32 count per vector 0..255 */
#define GUEST_LAB_CNT_TOTAL 0x400	  /* u32 interrupts taken */
#define GUEST_LAB_CNT_LAST 0x404	  /* u32 last vector taken */
#define GUEST_LAB_CNT_PENDING_EOI 0x408  /* u32 deferred EOIs not yet done */
#define GUEST_LAB_CNT_READY 0x40c	  /* u32 1 once the command loop runs */

/* EOI modes (GUEST_LAB_EOI_MODE arg1) and targets (arg2 / GUEST_LAB_EOI arg0). */
#define GUEST_LAB_EOI_AUTO 0	 /* the handler EOIs at once */
#define GUEST_LAB_EOI_DEFERRED 1 /* the handler counts; the host asks for the EOI */
#define GUEST_LAB_EOI_TO_LAPIC 0
#define GUEST_LAB_EOI_TO_PIC 1	    /* master 8259 (OCW2 0x20 to port 0x20) */
#define GUEST_LAB_EOI_TO_PIC_BOTH 2 /* slave then master */

/* Commands (GUEST_LAB_MB_CMD). Results default to 0. */
#define GUEST_LAB_NOP 0
/* SVR = 0x1ff (enabled, spurious vector 0xff), TPR = 0. */
#define GUEST_LAB_LAPIC_ENABLE 1
/* args: pin, 64-bit redirection entry (high dword written first). */
#define GUEST_LAB_IOAPIC_WRITE 2
/* args: pin. result: the 64-bit redirection entry. */
#define GUEST_LAB_IOAPIC_READ 3
/* args: vector (256 = every vector), mode, target. */
#define GUEST_LAB_EOI_MODE 4
/* args: target. Performs one EOI, decrements PENDING_EOI if non-zero. */
#define GUEST_LAB_EOI 5
/* Enable / disable interrupts for the command loop. */
#define GUEST_LAB_STI 6
#define GUEST_LAB_CLI 7
/* args: master vector base, slave vector base, 16-bit mask (master low
 * byte, slave high byte). Full ICW1-4 init, slave on IRQ2, normal EOI. */
#define GUEST_LAB_PIC_INIT 8
/* args: register offset (e.g. 0x320), 32-bit value. */
#define GUEST_LAB_LAPIC_WRITE 9
/* args: register offset. result: the 32-bit value. */
#define GUEST_LAB_LAPIC_READ 10
/* args: port, byte. */
#define GUEST_LAB_OUTB 11
/* args: port. result: the byte. */
#define GUEST_LAB_INB 12
/* args: status. vCPU 0 powers the VM off with it; other vCPUs stop
 * polling (interrupts stay as they were). */
#define GUEST_LAB_EXIT 13
/* result: this vCPU's LAPIC id (APIC ID register bits 31:24). */
#define GUEST_LAB_APIC_ID 14
/* args: vector (32..255), index (0..GUEST_LAB_PROG_OPS-1), op. Sets one op
 * of the vector's handler program (shared by all vCPUs). The handler runs
 * its program's ops in order up to the first GUEST_LAB_OP_END, then counts
 * the interrupt, then EOIs as the EOI mode says. */
#define GUEST_LAB_HANDLER_OP 15
/* args: pin, most reads (1..1000000). Reads the pin's redirection entry
 * until remote IRR (bit 14) is clear or the reads run out. result: bits
 * 31:0 the low dword read last, bits 63:32 the number of reads made. */
#define GUEST_LAB_IOAPIC_POLL 16
/* args: pin, 64-bit entry. As IOAPIC_WRITE; result: the entry before the
 * write (read under the same lock, so nothing else came in between). */
#define GUEST_LAB_IOAPIC_SWAP 17
/* result: the TSC (rdtsc at CPL3) when the command runs. */
#define GUEST_LAB_RDTSC 18

/* Handler program ops (GUEST_LAB_HANDLER_OP arg2): kind in bits 7:0, a
 * 16-bit operand in bits 23:8, a 32-bit operand in bits 63:32. The ops run
 * at CPL0 inside the handler, with interrupts off. */
#define GUEST_LAB_PROG_OPS 8
#define GUEST_LAB_OP_END 0
#define GUEST_LAB_OP_OUTB 1   /* outb(a, b) */
#define GUEST_LAB_OP_IOAPIC 2 /* IOAPIC register a (0..0xff) = b; IOREGSEL restored */
#define GUEST_LAB_OP(kind, a, b)                                                          \
	(((unsigned long long)(kind) & 0xff) | ((unsigned long long)(a) & 0xffff) << 8 | \
	 ((unsigned long long)(b) & 0xffffffff) << 32)

/* ---- snap_loop: a guest to save and restore mid-run ----------------------
 *
 * The host stores the mode before the start and a command at any time; each
 * vCPU's block holds what it observed, BOOTS first (a restore that lost the
 * vCPU's state would start the program again). All fields little-endian.
 *
 * TIMERS mode, every vCPU: enables its LAPIC, arms its timer on
 * GUEST_SNAP_VECTOR (even vCPUs in TSC-deadline mode where CPUID has it,
 * re-armed by each tick; the others periodic) and counts ticks; with IF = 1
 * runs a CPL3 loop that keeps its iteration count in a register, in XMM1
 * and in memory and counts every disagreement between them as an error
 * (state restored wrong), then READY = 1. QUIET: ticks no longer re-arm
 * the deadline, which is set 2^50 TSC cycles away, the periodic count to
 * 2^32 x 128 ns; QUIET_ACK = 1. ONESHOT: the same, but the deadline
 * GUEST_SNAP_ARG TSC cycles away. FINISH: IF = 0, timer masked, DONE = 1;
 * vCPU 0 waits for every DONE, reports per vCPU [counter lo, hi, ticks lo,
 * hi, errors] and powers off with GUEST_STATUS_OK if no vCPU saw an error,
 * else GUEST_STATUS_FAIL.
 *
 * IO mode, vCPU 0 (the others park): reads a 4-byte value from
 * GUEST_TEST_MMIO, then one from GUEST_TEST_PORT, forever, and counts an
 * error whenever a value is not the previous one + 1 (an access lost or
 * repeated): the host's device answers 0, 1, 2, ... READY = 1 once it
 * runs; FINISH: reports [reads lo, hi, errors], status as above.
 */
#define GUEST_SNAP_BASE (GUEST_ABI_BASE + 0x30000)
#define GUEST_SNAP_MODE (GUEST_SNAP_BASE + 0x0) /* u32, host, before the start */
#define GUEST_SNAP_CMD (GUEST_SNAP_BASE + 0x4) /* u32, host */
#define GUEST_SNAP_ARG (GUEST_SNAP_BASE + 0x8) /* u64, host: ONESHOT's delay */
#define GUEST_SNAP_CPU(cpu) (GUEST_SNAP_BASE + 0x100 + (cpu) * 0x40)
#define GUEST_SNAP_COUNTER 0x00 /* u64 CPL3 loop iterations (IO: reads) */
#define GUEST_SNAP_TICKS 0x08 /* u64 timer interrupts taken */
#define GUEST_SNAP_READY 0x10 /* u32 1 once the loop runs */
#define GUEST_SNAP_ERRORS 0x14 /* u32 disagreements seen */
#define GUEST_SNAP_QUIET_ACK 0x18 /* u32 1 once QUIET is done */
#define GUEST_SNAP_DEADLINE 0x1c /* u32 1 if the timer is in TSC-deadline mode */
#define GUEST_SNAP_DONE 0x20 /* u32 1 once FINISH is done */
#define GUEST_SNAP_QUIET 0x24 /* u32 guest-private: QUIET started */
#define GUEST_SNAP_BOOTS 0x28 /* u32 times guest_main started (1: never rebooted) */

#define GUEST_SNAP_MODE_TIMERS 0
#define GUEST_SNAP_MODE_IO 1
#define GUEST_SNAP_RUN 0
#define GUEST_SNAP_CMD_QUIET 1
#define GUEST_SNAP_FINISH 2
#define GUEST_SNAP_CMD_ONESHOT 3
#define GUEST_SNAP_VECTOR 0x40
#define GUEST_SNAP_REPORTS_PER_CPU 5

#endif
