// SPDX-License-Identifier: MIT
/*
 * Descriptor tables, per-vCPU state, the CPL3 start path, exceptions and
 * interrupt handler installation.
 *
 * guest_cpu_init() is the only C code on the boot path that runs at CPL0:
 * it is straight-line (no loops) because CPL0 may be emulated slowly. The
 * IDT is filled later, at CPL3 (the tables live in ordinary user-accessible
 * memory), by whichever vCPU gets there first.
 */
#include "guest.h"
#include "arch.h"

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp0;
	uint64_t rsp1;
	uint64_t rsp2;
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS is 104 bytes");

struct idt_gate {
	uint64_t lo;
	uint64_t hi;
};

struct __attribute__((packed)) table_ptr {
	uint16_t limit;
	uint64_t base;
};

/* Stacks are zeroed by the loader with the rest of .bss; start.S indexes
 * them by vCPU. */
uint8_t guest_kstacks[GUEST_MAX_VCPUS][KSTACK_SIZE] __attribute__((aligned(4096)));
uint8_t guest_ustacks[GUEST_MAX_VCPUS][USTACK_SIZE] __attribute__((aligned(4096)));

static struct guest_cpu cpus[GUEST_MAX_VCPUS];
static struct tss64 tss[GUEST_MAX_VCPUS] __attribute__((aligned(128)));

/* Flat 64-bit segments; TSS descriptors are filled per vCPU. */
static uint64_t gdt[GDT_ENTRIES] __attribute__((aligned(16))) = {
	[SEL_KCODE / 8] = 0x00af9a000000ffffULL, /* code, DPL0, L */
	[SEL_KDATA / 8] = 0x00cf92000000ffffULL, /* data, DPL0 */
	[SEL_UDATA / 8] = 0x00cff2000000ffffULL, /* data, DPL3 */
	[SEL_UCODE / 8] = 0x00affa000000ffffULL, /* code, DPL3, L */
};

static struct idt_gate idt[NUM_VECTORS] __attribute__((aligned(16)));

/* 0: empty, 1: a vCPU is filling it, 2: ready. */
static uint32_t idt_state;

static void unhandled_irq(unsigned int vector);

/* Read by irq_common in start.S. */
guest_irq_handler_t guest_irq_handlers[NUM_VECTORS] = {
	[0 ... NUM_VECTORS - 1] = unhandled_irq,
};

extern const uint64_t guest_vector_stubs[NUM_VECTORS];
void guest_ud_entry(void);

void guest_cpu_init(uint64_t id, uint64_t count, uint64_t ram_size);
__noreturn void guest_user_start(unsigned int id, unsigned int count);

struct exc_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

__noreturn void guest_exception(struct exc_frame *f);

/* ---- CPL0: once per vCPU, from start.S ------------------------------------ */

void guest_cpu_init(uint64_t id, uint64_t count, uint64_t ram_size)
{
	struct guest_cpu *c = &cpus[id];
	struct tss64 *t = &tss[id];
	uint64_t base = (uint64_t)t;
	unsigned int slot = SEL_TSS0 / 8 + 2 * id;
	struct table_ptr gdtr = { sizeof(gdt) - 1, (uint64_t)gdt };
	struct table_ptr idtr = { sizeof(idt) - 1, (uint64_t)idt };

	c->self = c;
	c->id = id;
	c->count = count;
	c->ram_size = ram_size;

	t->rsp0 = (uint64_t)guest_kstacks[id + 1];
	t->iomap_base = sizeof(*t); /* no I/O bitmap: CPL3 port I/O uses the gate */

	/* Available 64-bit TSS (type 9), present, limit 103. */
	gdt[slot] = (sizeof(*t) - 1) | (base & 0xffffff) << 16 | 0x89ULL << 40 |
		    ((base >> 24) & 0xff) << 56;
	gdt[slot + 1] = base >> 32;

	__asm__ __volatile__("lgdt %0" : : "m"(gdtr) : "memory");
	/* Reload CS (far return), SS; null data segments. */
	__asm__ __volatile__("pushq %[cs]\n\t"
			     "leaq 1f(%%rip), %%rax\n\t"
			     "pushq %%rax\n\t"
			     "lretq\n"
			     "1:\n\t"
			     "movl %[ds], %%eax\n\t"
			     "movl %%eax, %%ss\n\t"
			     "xorl %%eax, %%eax\n\t"
			     "movl %%eax, %%ds\n\t"
			     "movl %%eax, %%es\n\t"
			     "movl %%eax, %%fs\n\t"
			     "movl %%eax, %%gs"
			     :
			     : [cs] "i"(SEL_KCODE), [ds] "i"(SEL_KDATA)
			     : "rax", "memory");
	__asm__ __volatile__("ltr %w0" : : "r"(SEL_TSS0 + 16 * (unsigned int)id) : "memory");
	__asm__ __volatile__("lidt %0" : : "m"(idtr) : "memory");
	/* %gs:0 -> this vCPU's struct guest_cpu, at any CPL. */
	__asm__ __volatile__("wrmsr"
			     :
			     : "c"(MSR_GS_BASE), "a"((uint32_t)(uint64_t)c),
			       "d"((uint32_t)((uint64_t)c >> 32))
			     : "memory");
}

/* ---- CPL3 ----------------------------------------------------------------- */

static void idt_set(unsigned int vector, uint64_t handler, uint16_t sel, uint8_t type)
{
	struct idt_gate *g = &idt[vector];

	g->hi = handler >> 32;
	__atomic_store_n(&g->lo,
			 (handler & 0xffff) | (uint64_t)sel << 16 | (uint64_t)type << 40 |
				 ((handler >> 16) & 0xffff) << 48,
			 __ATOMIC_RELEASE);
}

static void idt_fill(void)
{
	unsigned int v;

	for (v = 0; v < 32; v++) {
		/* int3 and into from CPL3 should report #BP/#OF, not #GP. */
		uint8_t type = (v == 3 || v == 4) ? GATE_INT_DPL3 : GATE_INT_DPL0;

		idt_set(v, guest_vector_stubs[v], SEL_KCODE, type);
	}
	idt_set(6, (uint64_t)guest_ud_entry, SEL_KCODE, GATE_INT_DPL0);
	for (; v < NUM_VECTORS; v++)
		idt_set(v, guest_vector_stubs[v], SEL_KCODE, GATE_INT_DPL0);
}

__noreturn void guest_user_start(unsigned int id, unsigned int count)
{
	int ret;

	if (atomic_cmpxchg(&idt_state, 0, 1)) {
		idt_fill();
		atomic_store_release(&idt_state, 2);
	} else {
		while (atomic_load_acquire(&idt_state) != 2)
			cpu_relax();
	}

	ret = guest_main(id, count);
	if (id == 0)
		power_off(ret);
	guest_park();
}

void guest_irq_install(unsigned int vector, guest_irq_handler_t fn)
{
	if (vector < 32 || vector >= NUM_VECTORS)
		return;
	__atomic_store_n(&guest_irq_handlers[vector], fn ? fn : unhandled_irq, __ATOMIC_RELEASE);
}

uint64_t guest_cpl0_call(uint64_t (*fn)(uint64_t), uint64_t arg)
{
	uint64_t ret;

	__asm__ __volatile__("call guest_gate_insn"
			     : "=a"(ret), "+D"(fn), "+S"(arg)
			     : "a"(GATE_CALL)
			     : "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc");
	return ret;
}

static uint64_t park_cpl0(uint64_t unused)
{
	for (;;)
		__asm__ __volatile__("cli; hlt" ::: "memory");
	return 0;
}

__noreturn void guest_park(void)
{
	if (guest_cpl() == 0)
		park_cpl0(0);
	guest_cpl0_call(park_cpl0, 0);
	for (;;)
		cpu_relax();
}

__noreturn void power_off(uint32_t status)
{
	outl(GUEST_REPORT_POWER_OFF, status);
	guest_park();
}

__noreturn void debug_exit(uint8_t v)
{
	outb(GUEST_DEBUG_EXIT_PORT, v);
	guest_park();
}

/* ---- Faults --------------------------------------------------------------- */

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
	"#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
	"#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

/* CPL0, kernel stack. Prints without the console lock (the fault may have
 * hit while it was held). */
__noreturn void guest_exception(struct exc_frame *f)
{
	unsigned int vec = f->vector & 31;
	uint64_t cr2 = 0;
	char line[160];
	size_t n;

	if (vec == 14)
		__asm__ __volatile__("mov %%cr2, %0" : "=r"(cr2));
	n = guest_snprintf(
		line, sizeof(line),
		"guest: exception %u %s on vCPU %u: rip %#lx err %#lx cs %#lx rsp %#lx cr2 %#lx\n",
		vec, exc_names[vec], guest_cpu_id(), f->rip, f->error, f->cs, f->rsp, cr2);
	serial_write(line, n < sizeof(line) ? n : sizeof(line) - 1);

	report(vec);
	report64(f->rip);
	report(f->error);
	power_off(GUEST_STATUS_EXCEPTION(vec));
}

static void unhandled_irq(unsigned int vector)
{
	guest_printf("guest: unhandled interrupt %u on vCPU %u\n", vector, guest_cpu_id());
	report(vector);
	power_off(GUEST_STATUS_UNHANDLED_IRQ);
}
