/* SPDX-License-Identifier: MIT */
/* Internal x86 boot helpers shared by the ELF64, Multiboot and Linux loaders. */
#ifndef KVMKIT_BOOT_X86_BOOT_H
#define KVMKIT_BOOT_X86_BOOT_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

struct kvmk_guest_ram;
struct kvmkit_vcpu;

#define KVMK_GDT_CODE64 0x00af9a000000ffffull /* P, DPL0, exec/read, L=1, G=1 */
#define KVMK_GDT_CODE32 0x00cf9a000000ffffull /* P, DPL0, exec/read, D=1, G=1 */
#define KVMK_GDT_DATA 0x00cf92000000ffffull /* P, DPL0, read/write, D/B=1, G=1 */

/* A flat 4 GiB segment: 64-bit code if @long_code, else 32-bit. */
void kvmk_x86_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool long_code);

/* Writes the boot area into @ram: the @n GDT entries at KVMKIT_X86_BOOT_GDT
 * (the rest of that page zeroed) and the identity map of the first 4 GiB
 * (loader.h). */
int kvmk_x86_boot_area(const struct kvmk_guest_ram *ram, const uint64_t *gdt, unsigned int n);

/* Long mode with the boot area's page tables and GDT (@gdt_entries long),
 * CS = @cs (64-bit code), the data segments @ds, then @regs. */
int kvmk_x86_vcpu_long_mode(struct kvmkit_vcpu *vcpu, uint16_t cs, uint16_t ds,
			    unsigned int gdt_entries, const struct kvm_regs *regs);

/* Flat 32-bit protected mode, paging off (Multiboot, PVH): CS 0x08 and the
 * data segments 0x10 of the 3-entry GDT at @gdt, a 32-bit TSS of limit 0x67
 * in TR if @tss (else KVM's reset TR), then @regs. */
int kvmk_x86_vcpu_prot32(struct kvmkit_vcpu *vcpu, uint64_t gdt, bool tss,
			 const struct kvm_regs *regs);

#endif
