// SPDX-License-Identifier: MIT
/* x86_64 direct boot into long mode: GDT, identity page tables, vCPU state. */
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "boot"
#include "core/internal.h"
#include <kvmkit/loader.h>
#include <kvmkit/vcpu.h>
#include <kvmkit/irq.h>
#include "boot/boot_internal.h"
#include "boot/x86_boot.h"

#include <elf.h>

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_PS (1ull << 7)

#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

int kvmk_x86_boot_area(const struct kvmk_guest_ram *ram, const uint64_t *gdt, unsigned int n)
{
	uint64_t *pml4, *pdpt, *pd, *g;

	pml4 = ram->hva(ram, KVMKIT_X86_BOOT_PML4, 4096);
	pdpt = ram->hva(ram, KVMKIT_X86_BOOT_PDPT, 4096);
	pd = ram->hva(ram, KVMKIT_X86_BOOT_PD, 4 * 4096);
	g = ram->hva(ram, KVMKIT_X86_BOOT_GDT, 4096);
	if (!pml4 || !pdpt || !pd || !g || n > 4096 / 8)
		return kvmk_err_param("kvmkit_x86_write_boot_area", "mem_size",
				      "RAM does not cover the boot area", "%llu",
				      (unsigned long long)ram->size);
	memset(g, 0, 4096);
	memcpy(g, gdt, n * sizeof(*gdt));
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = KVMKIT_X86_BOOT_PDPT | PTE_P | PTE_RW | PTE_US;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (KVMKIT_X86_BOOT_PD + i * 4096) | PTE_P | PTE_RW | PTE_US;
	/* 2048 x 2 MiB = the first 4 GiB, MMIO holes included. */
	for (uint64_t i = 0; i < 2048; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_US | PTE_PS;
	/* Written through pointers: tell dirty logging (dirty.h). */
	if (ram->wrote)
		ram->wrote(ram, KVMKIT_X86_BOOT_AREA_START,
			   KVMKIT_X86_BOOT_AREA_END - KVMKIT_X86_BOOT_AREA_START);
	return 0;
}

#if defined(__x86_64__)
int kvmkit_x86_write_boot_area(struct kvmkit_vm *vm)
{
	const uint64_t gdt[3] = { 0, KVMK_GDT_CODE64, KVMK_GDT_DATA };
	struct kvmk_guest_ram ram;

	kvmk_guest_ram_of_vm(&ram, vm);
	return kvmk_x86_boot_area(&ram, gdt, 3);
}

void kvmk_x86_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool long_code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	/* 64-bit code has L=1 and D=0; everything else here is 32-bit (D/B=1). */
	s->l = long_code ? 1 : 0;
	s->db = long_code ? 0 : 1;
}

int kvmk_x86_vcpu_long_mode(struct kvmkit_vcpu *vcpu, uint16_t cs, uint16_t ds,
			    unsigned int gdt_entries, const struct kvm_regs *regs)
{
	struct kvm_sregs s;
	int ret;

	ret = kvmkit_vcpu_get_sregs(vcpu, &s);
	if (ret)
		return ret;
	kvmk_x86_flat_segment(&s.cs, cs, 0xb, true);
	kvmk_x86_flat_segment(&s.ds, ds, 0x3, false);
	s.es = s.fs = s.gs = s.ss = s.ds;
	s.gdt.base = KVMKIT_X86_BOOT_GDT;
	s.gdt.limit = (uint16_t)(gdt_entries * 8 - 1);
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	s.cr3 = KVMKIT_X86_BOOT_PML4;
	s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	s.efer = EFER_LME | EFER_LMA | EFER_SCE;
	ret = kvmkit_vcpu_set_sregs(vcpu, &s);
	if (ret)
		return ret;
	return kvmkit_vcpu_set_regs(vcpu, regs);
}

int kvmk_x86_vcpu_prot32(struct kvmkit_vcpu *vcpu, uint64_t gdt, bool tss,
			 const struct kvm_regs *regs)
{
	struct kvm_sregs s;
	int ret;

	ret = kvmkit_vcpu_get_sregs(vcpu, &s);
	if (ret)
		return ret;
	kvmk_x86_flat_segment(&s.cs, 0x08, 0xb, false); /* execute/read, accessed */
	kvmk_x86_flat_segment(&s.ds, 0x10, 0x3, false); /* read/write, accessed */
	s.es = s.fs = s.gs = s.ss = s.ds;
	if (tss) {
		s.tr.base = 0;
		s.tr.limit = 0x67;
		s.tr.type = 0xb;
		s.tr.present = 1;
		s.tr.s = 0;
		s.tr.g = 0;
	}
	s.gdt.base = gdt;
	s.gdt.limit = 3 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = CR0_PE | CR0_ET;
	s.cr2 = s.cr3 = s.cr4 = 0;
	s.efer = 0;
	ret = kvmkit_vcpu_set_sregs(vcpu, &s);
	if (ret)
		return ret;
	return kvmkit_vcpu_set_regs(vcpu, regs);
}

int kvmkit_x86_vcpu_setup_long_mode(struct kvmkit_vcpu *vcpu, uint64_t entry)
{
	struct kvmkit_vm *vm = kvmkit_vcpu_vm(vcpu);
	struct kvm_regs r;

	if (kvmkit_vm_irqchip(vm)) {
		/* With an in-kernel LAPIC, APs wait for INIT/SIPI; a direct boot
		 * starts every vCPU at the entry point. */
		struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };

		if (ioctl(kvmkit_vcpu_fd(vcpu), KVM_SET_MP_STATE, &mp) < 0)
			return kvmk_err_ioctl("KVM_SET_MP_STATE", errno, "vcpu %u",
					      kvmkit_vcpu_id(vcpu));
	}
	memset(&r, 0, sizeof(r));
	r.rip = entry;
	r.rflags = 0x2;
	r.rdi = kvmkit_vcpu_id(vcpu);
	r.rsi = kvmkit_vm_config(vm)->vcpus;
	r.rdx = kvmkit_vm_ram_size(vm);
	return kvmk_x86_vcpu_long_mode(vcpu, 0x08, 0x10, 3, &r);
}

static int check_x86_64(const struct kvmkit_elf_image *img)
{
	if (img->elf_class != 64 || img->machine != EM_X86_64)
		return kvmk_err_format("kvmkit_boot_elf64",
				       "not an x86_64 ELF64 executable (class %u, machine %u)",
				       img->elf_class, img->machine);
	return 0;
}

/* Every segment in RAM of @mem_size bytes and outside the boot area, the
 * entry inside a segment: what both the pre-check and the boot require. */
static int check_layout(const char *op, const struct kvmkit_elf_image *img, uint64_t mem_size)
{
	uint64_t low = mem_size < KVMKIT_X86_MMIO_HOLE ? mem_size : KVMKIT_X86_MMIO_HOLE;
	int r = check_x86_64(img);

	if (r)
		return r;
	r = kvmk_elf_check_image(op, img, SIZE_MAX);
	if (r)
		return r;
	for (unsigned int i = 0; i < img->nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->segs[i];
		bool in_low = s->paddr + s->memsz <= low;
		bool in_high = s->paddr >= (1ull << 32) &&
			       s->paddr - (1ull << 32) <= mem_size - low &&
			       s->memsz <= mem_size - low - (s->paddr - (1ull << 32));

		if (!s->memsz)
			continue;
		if (s->paddr < KVMKIT_X86_BOOT_AREA_END &&
		    KVMKIT_X86_BOOT_AREA_START < s->paddr + s->memsz)
			return kvmk_err_param(op, "segment",
					      "overlaps the loader's boot area 0x1000-0x8000",
					      "%u: 0x%llx+0x%llx", i, (unsigned long long)s->paddr,
					      (unsigned long long)s->memsz);
		if (!in_low && !in_high)
			return kvmk_err_param(
				op, "segment", "outside guest RAM",
				"%u: 0x%llx+0x%llx (RAM %llu MiB)", i, (unsigned long long)s->paddr,
				(unsigned long long)s->memsz, (unsigned long long)(mem_size >> 20));
	}
	if (!kvmk_elf_in_segment(img, img->entry))
		return kvmk_err_format(op, "entry point 0x%llx is outside the loaded segments",
				       (unsigned long long)img->entry);
	return 0;
}

int kvmkit_boot_check_elf64(const void *buf, size_t len, uint64_t mem_size)
{
	struct kvmkit_elf_image img;
	int r;

	r = kvmkit_elf_parse(buf, len, &img);
	if (r)
		return r;
	return check_layout("kvmkit_boot_elf64", &img, mem_size);
}

int kvmkit_boot_elf64(struct kvmkit_vm *vm, const void *buf, size_t len)
{
	struct kvmkit_elf_image img;
	unsigned int n = kvmkit_vm_config(vm)->vcpus;
	int r;

	if (kvmkit_vm_vcpu_count(vm) != n)
		return kvmk_err_state("vm", "missing vCPUs", "all vCPUs created", "boot_elf64");
	/* Whatever the caller checked before: the image is parsed and checked
	 * against this VM's RAM again, and the load checks every write. */
	r = kvmkit_elf_parse(buf, len, &img);
	if (r)
		return r;
	r = check_layout("kvmkit_boot_elf64", &img, kvmkit_vm_ram_size(vm));
	if (r)
		return r;
	r = kvmkit_x86_write_boot_area(vm);
	if (r)
		return r;
	r = kvmkit_elf_load(vm, buf, len, &img, KVMKIT_X86_BOOT_AREA_START,
			    KVMKIT_X86_BOOT_AREA_END);
	if (r)
		return r;
	for (unsigned int i = 0; i < n; i++) {
		r = kvmkit_x86_vcpu_setup_long_mode(kvmkit_vm_vcpu(vm, i), img.entry);
		if (r)
			return r;
	}
	kvmk_debug("ELF64 loaded: %u segment(s) 0x%llx-0x%llx, entry 0x%llx", img.nsegs,
		   (unsigned long long)img.lowest, (unsigned long long)img.highest,
		   (unsigned long long)img.entry);
	return 0;
}
#else
int kvmkit_boot_check_elf64(const void *buf, size_t len, uint64_t mem_size)
{
	(void)buf;
	(void)len;
	(void)mem_size;
	return kvmk_err_unsupported("kvmkit_boot_elf64", ENOTSUP, "x86_64 only");
}

int kvmkit_boot_elf64(struct kvmkit_vm *vm, const void *buf, size_t len)
{
	(void)vm;
	(void)buf;
	(void)len;
	return kvmk_err_unsupported("kvmkit_boot_elf64", ENOTSUP, "x86_64 only");
}
#endif
