// SPDX-License-Identifier: MIT
/*
 * Multiboot probe: a tiny 32-bit multiboot payload (CPL0, protected mode,
 * paging off) that reports what the loader and the pc-style devices gave
 * it: EAX/EBX, the information structure (memory, map, command line,
 * module), fw_cfg items, PIC masks, the test device's registers, interrupts
 * from two IRQ lines through the IOAPIC and LAPIC, and an AP started with
 * INIT/SIPI from page 0. The report order is in
 * mb_probe_abi.h; the command line and module string go to COM1. Built on
 * its own (-m32, mb.ld), without the 64-bit guest runtime.
 *
 * A command line whose last word is "noirq" skips the interrupt part (its
 * six values are reported as 0): hosts whose CPU emulator cannot run the
 * 32-bit handlers' iret (KVM-PVM) still check everything else.
 *
 * Last, what the loader placed against the probe's own image: whether any
 * of it lies over the image, a hash of the module, and whether .data and
 * .bss were as linked at entry. mb_probe_low is this program linked at
 * 0x8000, where kvmkit's boot information used to be fixed.
 */
#include <stdbool.h>
#include <stdint.h>

#include "guest_abi.h"
#include "mb_probe_abi.h"

#define MB_FLAGS 0x3 /* page-align modules, memory information */
#define LAPIC 0xfee00000u
#define LAPIC_SVR 0xf0
#define LAPIC_EOI 0xb0
#define LAPIC_ISR2 0x120 /* in-service bits of vectors 64..95 */
#define IOAPIC 0xfec00000u
#define IOAPIC_WIN 0x10
#define IOAPIC_LEVEL (1u << 15)

__asm__(".section .multiboot, \"a\"\n"
	".align 4\n"
	".long 0x1BADB002\n"
	".long 3\n"
	".long -(0x1BADB002 + 3)\n"
	".section .text.entry, \"ax\"\n"
	".globl _start\n"
	"_start:\n"
	"	mov $stack_top, %esp\n"
	"	push %ebx\n"
	"	push %eax\n"
	"	call probe_main\n"
	"1:	cli\n"
	"	hlt\n"
	"	jmp 1b\n"
	/* AP start-up code, copied to page 0 (SIPI vector 0: CS = 0). */
	".code16\n"
	".globl ap_start, ap_end\n"
	"ap_start:\n"
	"	movl $0x5a5a0001, %eax\n"
	"	movl %eax, 0x800\n"
	"2:	cli\n"
	"	hlt\n"
	"	jmp 2b\n"
	"ap_end:\n"
	".code32\n"
	/*
	 * Interrupt handlers (interrupt gates: IF is clear). Each counts the
	 * interrupt, ORs in the LAPIC's in-service bits of vectors 64..95 and
	 * EOIs. The level line's handler lowers the line first: EOI with the
	 * line still asserted would deliver it again.
	 */
	"irq_a_entry:\n"
	"	push %eax\n"
	"	incl irq_count\n"
	"	mov 0xfee00120, %eax\n"
	"	or %eax, irq_isr\n"
	"	movl $0, 0xfee000b0\n"
	"	pop %eax\n"
	"	iret\n"
	"irq_b_entry:\n"
	"	push %eax\n"
	"	push %edx\n"
	"	incl irq_count + 4\n"
	"	mov 0xfee00120, %eax\n"
	"	or %eax, irq_isr + 4\n"
	"	mov $0x2011, %dx\n"
	"	xor %eax, %eax\n"
	"	outb %al, %dx\n"
	"	movl $0, 0xfee000b0\n"
	"	pop %edx\n"
	"	pop %eax\n"
	"	iret\n"
	".section .bss\n"
	".align 16\n"
	"stack: .space 4096\n"
	"stack_top:\n"
	"irq_count: .space 8\n"
	"irq_isr: .space 8\n"
	".text\n");

_Static_assert(MB_FLAGS == 3, "header flags above are written out");
_Static_assert(MB_PROBE_AP_MARKER == 0x5a5a0001 && MB_PROBE_AP_MARKER_ADDR == 0x800,
	       "AP code above is written out");
_Static_assert(LAPIC + LAPIC_ISR2 == 0xfee00120 && LAPIC + LAPIC_EOI == 0xfee000b0 &&
		       0x2000 + MB_PROBE_IRQ_B == 0x2011,
	       "interrupt handlers above are written out");

extern const uint8_t ap_start[], ap_end[];
extern const uint8_t irq_a_entry[], irq_b_entry[];
/* Per line (A, B): interrupts taken, in-service bits seen; set by the
 * handlers above. */
extern volatile uint32_t irq_count[2], irq_isr[2];

/* Vectors up to MB_PROBE_VEC_B; others are not expected (a triple fault). */
static uint64_t idt[MB_PROBE_VEC_B + 1] __attribute__((aligned(8)));
_Static_assert(MB_PROBE_VEC_A >= 64 && MB_PROBE_VEC_A < 96 && MB_PROBE_VEC_B >= 64 &&
		       MB_PROBE_VEC_B < 96,
	       "the handlers read the in-service register of vectors 64..95");

/* The image's bounds (mb.ld), and canaries: .data as linked and .bss zero
 * at entry unless the loader wrote over them. */
extern const uint8_t __mb_image_start[], __mb_image_end[];
static volatile uint32_t data_canary[4] = { 0x13579bdf, 0x2468ace0, 0xfdb97531, 0x0eca8642 };
static volatile uint32_t bss_canary[64];

/* A page of its own for the flush test. */
static volatile uint32_t flush_page[1024] __attribute__((aligned(4096)));

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
};

struct __attribute__((packed)) mb_mmap {
	uint32_t size;
	uint64_t base, len;
	uint32_t type;
};

struct mb_mod {
	uint32_t start, end, string, reserved;
};

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Physical accesses; the empty asm hides low constant addresses from
 * GCC's bounds warnings (page 0 is real memory here). */
static inline uint32_t rd32(uint32_t addr)
{
	__asm__("" : "+r"(addr));
	return *(volatile uint32_t *)(uintptr_t)addr;
}

static inline void wr32(uint32_t addr, uint32_t v)
{
	__asm__("" : "+r"(addr));
	*(volatile uint32_t *)(uintptr_t)addr = v;
}

static void report(uint32_t v)
{
	outl(GUEST_REPORT_VALUE, v);
}

static void puts_com1(const char *s)
{
	while (*s)
		outb(GUEST_UART_PORT, (uint8_t)*s++);
}

static uint32_t fw_read(uint16_t key, unsigned int n)
{
	uint32_t v = 0;

	outw(0x510, key);
	for (unsigned int i = 0; i < n; i++)
		v |= (uint32_t)inb(0x511) << (8 * i);
	return v;
}

static void probe_memory(const struct mb_info *mi)
{
	uint32_t n = 0, low_kib = 0, high_mib = 0, res_kib = 0;

	for (uint32_t p = mi->mmap_addr; p < mi->mmap_addr + mi->mmap_length;) {
		const struct mb_mmap *e = (const struct mb_mmap *)(uintptr_t)p;

		if (e->type == 1 && e->base < (1ull << 32))
			low_kib += (uint32_t)(e->len >> 10);
		else if (e->type == 1)
			high_mib += (uint32_t)(e->len >> 20);
		else
			res_kib += (uint32_t)(e->len >> 10);
		n++;
		p += e->size + 4;
	}
	report(mi->flags);
	report(mi->mem_lower);
	report(mi->mem_upper);
	report(n);
	report(low_kib);
	report(high_mib);
	report(res_kib);
}

/* Does the command line end with the word "noirq"? */
static bool wants_noirq(const struct mb_info *mi)
{
	const char *cl = (const char *)(uintptr_t)mi->cmdline;
	uint32_t len = 0;

	while (cl[len])
		len++;
	return len >= 6 && cl[len - 6] == ' ' && cl[len - 5] == 'n' && cl[len - 4] == 'o' &&
	       cl[len - 3] == 'i' && cl[len - 2] == 'r' && cl[len - 1] == 'q';
}

static void probe_cmdline_and_module(const struct mb_info *mi)
{
	const char *cl = (const char *)(uintptr_t)mi->cmdline;
	const struct mb_mod *m = (const struct mb_mod *)(uintptr_t)mi->mods_addr;
	uint32_t len = 0;

	while (cl[len])
		len++;
	report(len);
	puts_com1("cmdline: [");
	puts_com1(cl);
	puts_com1("]\n");
	report(mi->mods_count);
	if (mi->mods_count) {
		report(m->end - m->start);
		report(m->end - m->start >= 4 ? rd32(m->start) : 0);
		report(m->start & 0xfff);
		puts_com1("module: [");
		puts_com1((const char *)(uintptr_t)m->string);
		puts_com1("]\n");
	} else {
		report(0);
		report(0);
		report(0);
	}
}

static uint32_t probe_fwcfg(void)
{
	uint32_t ncpus;

	report(fw_read(0x0000, 4));
	report(fw_read(0x0001, 4));
	ncpus = fw_read(0x0005, 2);
	report(ncpus);
	report(fw_read(0x000f, 2));
	report(fw_read(0x0003, 4));
	/* The high half: keep reading the same item. */
	report(inb(0x511) | (uint32_t)inb(0x511) << 8 | (uint32_t)inb(0x511) << 16 |
	       (uint32_t)inb(0x511) << 24);
	outw(0x510, 0x0005);
	inb(0x511);
	inb(0x511);
	report(inb(0x511) | (uint32_t)inb(0x511) << 8 | (uint32_t)inb(0x511) << 16 |
	       (uint32_t)inb(0x511) << 24);
	return ncpus;
}

static void probe_devices(void)
{
	/* PIC masks: the in-kernel PIC keeps them. */
	outb(0x21, MB_PROBE_PIC_MASTER_MASK);
	outb(0xa1, MB_PROBE_PIC_SLAVE_MASK);
	report(inb(0x21));
	report(inb(0xa1));
	/* Test device scratch registers (byte lanes). */
	outl(0xe0, 0x11223344);
	outb(0xe1, 0xaa);
	outl(0xe8, MB_PROBE_SCRATCH1);
	report(inl(0xe0));
	report(inl(0xe8));
	wr32(0xff000010, MB_PROBE_MMIO_VALUE);
	report(rd32(0xff000010));
	/* Flush a page from KVM's MMU; its contents must survive. */
	flush_page[5] = MB_PROBE_FLUSH_VALUE;
	outl(0xe4, (uint32_t)(uintptr_t)&flush_page[5]);
	report(flush_page[5]);
}

static void set_gate(unsigned int vec, const uint8_t *fn)
{
	uint32_t off = (uint32_t)(uintptr_t)fn;
	uint16_t cs;

	__asm__("mov %%cs, %0" : "=r"(cs));
	/* 32-bit interrupt gate: present, DPL 0, type 0xe. */
	idt[vec] = (uint64_t)((off & 0xffff0000u) | 0x8e00) << 32 | (uint32_t)cs << 16 |
		   (off & 0xffff);
}

static void ioapic_write(uint32_t index, uint32_t v)
{
	wr32(IOAPIC, index);
	wr32(IOAPIC + IOAPIC_WIN, v);
}

static uint32_t ioapic_read(uint32_t index)
{
	wr32(IOAPIC, index);
	return rd32(IOAPIC + IOAPIC_WIN);
}

/* Raises line @pin (handler @i), waits for its interrupt, lowers an edge
 * line (the level line's handler has lowered it already). */
static void irq_round(unsigned int i, uint16_t pin, bool level)
{
	uint32_t before = irq_count[i];

	outb(0x2000 + pin, 1);
	/* Delivery is synchronous with the port write: the first check normally
	 * succeeds. The bound only keeps a broken irqchip from hanging us. */
	for (uint32_t n = 0; irq_count[i] == before && n < 1000000; n++)
		__asm__ volatile("pause");
	if (!level)
		outb(0x2000 + pin, 0);
}

static uint32_t isr_vector(uint32_t isr)
{
	if (!isr)
		return 0;
	if (isr & (isr - 1))
		return ~0u;
	return 64 + (uint32_t)__builtin_ctz(isr);
}

static void probe_irqs(void)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint32_t base;
	} idtr = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };

	/* Mask the PIC: in kernel mode it is live (vector base 0, LINT0 in
	 * ExtINT mode) and line A reaches it too. Split mode has none. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	set_gate(MB_PROBE_VEC_A, irq_a_entry);
	set_gate(MB_PROBE_VEC_B, irq_b_entry);
	__asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
	wr32(LAPIC + LAPIC_SVR, 0x1ff);
	/* Physical destination APIC ID 0 (the BSP), fixed delivery. */
	ioapic_write(0x11 + 2 * MB_PROBE_IRQ_A, 0);
	ioapic_write(0x10 + 2 * MB_PROBE_IRQ_A, MB_PROBE_VEC_A);
	ioapic_write(0x11 + 2 * MB_PROBE_IRQ_B, 0);
	ioapic_write(0x10 + 2 * MB_PROBE_IRQ_B, MB_PROBE_VEC_B | IOAPIC_LEVEL);
	__asm__ volatile("sti" : : : "memory");
	_Static_assert(MB_PROBE_IRQ_ROUNDS == 2, "rounds below are written out");
	irq_round(0, MB_PROBE_IRQ_A, false);
	irq_round(1, MB_PROBE_IRQ_B, true);
	irq_round(0, MB_PROBE_IRQ_A, false);
	irq_round(1, MB_PROBE_IRQ_B, true);
	__asm__ volatile("cli" : : : "memory");
	report(irq_count[0]);
	report(isr_vector(irq_isr[0]));
	report(ioapic_read(0x10 + 2 * MB_PROBE_IRQ_A));
	report(irq_count[1]);
	report(isr_vector(irq_isr[1]));
	report(ioapic_read(0x10 + 2 * MB_PROBE_IRQ_B));
}

static uint32_t start_ap(void)
{
	const uint32_t apic = 0xfee00000;
	uint32_t n = (uint32_t)(ap_end - ap_start);
	const uint8_t *src = ap_start;
	uint32_t dst = 0;

	/* Page 0 is the guest's: copy the start-up code there. */
	__asm__ volatile("cld; rep movsb" : "+S"(src), "+D"(dst), "+c"(n) : : "memory");
	wr32(apic + 0xf0, 0x1ff); /* software-enable the LAPIC (done already) */
	wr32(apic + 0x310, 1u << 24); /* destination: APIC ID 1 */
	wr32(apic + 0x300, 0x00004500); /* INIT, assert */
	for (volatile int i = 0; i < 1000; i++)
		;
	for (int k = 0; k < 2; k++) {
		wr32(apic + 0x310, 1u << 24);
		wr32(apic + 0x300, 0x00004600); /* SIPI, vector 0: page 0 */
		for (volatile int i = 0; i < 1000; i++)
			;
	}
	for (uint32_t i = 0; i < 100000000u; i++) {
		uint32_t v = rd32(MB_PROBE_AP_MARKER_ADDR);

		if (v)
			return v;
		__asm__ volatile("pause");
	}
	return 0;
}

static bool image_intact(void)
{
	static const uint32_t want[4] = { 0x13579bdf, 0x2468ace0, 0xfdb97531, 0x0eca8642 };

	for (int i = 0; i < 4; i++)
		if (data_canary[i] != want[i])
			return false;
	for (int i = 0; i < 64; i++)
		if (bss_canary[i])
			return false;
	return true;
}

static uint32_t over_image(uint32_t addr, uint32_t len, uint32_t bit)
{
	uint32_t start = (uint32_t)(uintptr_t)__mb_image_start;
	uint32_t end = (uint32_t)(uintptr_t)__mb_image_end;

	return len && addr < end && start < addr + len ? bit : 0;
}

static uint32_t strsize(uint32_t addr)
{
	const char *s = (const char *)(uintptr_t)addr;
	uint32_t n = 0;

	while (s[n])
		n++;
	return n + 1;
}

/* Reports the image, the GDT base, what overlaps the image, the module's
 * hash and whether the image was intact at entry. */
static void probe_layout(const struct mb_info *mi, uint32_t ebx, bool intact)
{
	const struct mb_mod *m = (const struct mb_mod *)(uintptr_t)mi->mods_addr;
	struct __attribute__((packed)) {
		uint16_t limit;
		uint32_t base;
	} gdtr;
	uint32_t ovl, hash = 0;

	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	ovl = over_image(ebx, 116, MB_PROBE_OVL_INFO) |
	      over_image(mi->cmdline, strsize(mi->cmdline), MB_PROBE_OVL_CMDLINE) |
	      over_image(mi->mmap_addr, mi->mmap_length, MB_PROBE_OVL_MMAP) |
	      over_image(mi->mods_addr, mi->mods_count * 16, MB_PROBE_OVL_MODS) |
	      over_image(gdtr.base, gdtr.limit + 1u, MB_PROBE_OVL_GDT);
	for (uint32_t i = 0; i < mi->mods_count; i++) {
		ovl |= over_image(m[i].start, m[i].end - m[i].start, MB_PROBE_OVL_MOD_DATA);
		ovl |= over_image(m[i].string, strsize(m[i].string), MB_PROBE_OVL_MOD_STRING);
	}
	if (mi->mods_count) {
		hash = 0x811c9dc5u;
		for (uint32_t a = m->start; a < m->end; a++)
			hash = (hash ^ *(const volatile uint8_t *)(uintptr_t)a) * 0x01000193u;
	}
	report((uint32_t)(uintptr_t)__mb_image_start);
	report((uint32_t)(uintptr_t)__mb_image_end);
	report(gdtr.base);
	report(ovl);
	report(hash);
	report(intact ? MB_PROBE_INTACT : 0);
}

void probe_main(uint32_t eax, uint32_t ebx);

void probe_main(uint32_t eax, uint32_t ebx)
{
	const struct mb_info *mi = (const struct mb_info *)(uintptr_t)ebx;
	bool intact = image_intact();
	uint32_t ncpus;

	report(eax);
	if (eax != 0x2BADB002) {
		outl(GUEST_DEBUG_EXIT_PORT, MB_PROBE_EXIT_BAD_MAGIC);
		return;
	}
	report(ebx);
	probe_memory(mi);
	probe_cmdline_and_module(mi);
	ncpus = probe_fwcfg();
	probe_devices();
	if (wants_noirq(mi)) {
		for (int i = 0; i < 6; i++)
			report(0);
	} else {
		probe_irqs();
	}
	report(rd32(MB_PROBE_AP_MARKER_ADDR));
	report(ncpus > 1 ? start_ap() : 0);
	probe_layout(mi, ebx, intact);
	outl(GUEST_DEBUG_EXIT_PORT, MB_PROBE_EXIT_OK);
}
