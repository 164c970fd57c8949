/* SPDX-License-Identifier: MIT */
/*
 * Guest image loaders.
 *
 * ELF64 direct boot (x86_64), the protocol of kvmkit's guest test kit:
 *  - PT_LOAD segments are copied to their p_paddr; .bss (memsz > filesz) is
 *    zeroed. Each segment must lie in guest RAM and outside the boot area
 *    [KVMKIT_X86_BOOT_AREA_START, KVMKIT_X86_BOOT_AREA_END).
 *  - kvmkit writes into the boot area a GDT (0x08: 64-bit code DPL0,
 *    0x10: data DPL0) and 4-level page tables identity-mapping the first
 *    4 GiB with 2 MiB pages, present, writable and user-accessible.
 *  - Every vCPU starts at e_entry in 64-bit mode, CPL0, interrupts off,
 *    CR0 = PE|MP|ET|NE|WP|PG, CR4 = PAE|OSFXSR|OSXMMEXCPT,
 *    EFER = LME|LMA|SCE, with RDI = vCPU index, RSI = vCPU count,
 *    RDX = RAM size in bytes, RSP = 0 (the guest picks its stacks).
 */
#ifndef KVMKIT_LOADER_H
#define KVMKIT_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include <kvmkit/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVMKIT_X86_BOOT_AREA_START 0x1000ULL
#define KVMKIT_X86_BOOT_AREA_END 0x8000ULL
#define KVMKIT_X86_BOOT_GDT 0x1000ULL
#define KVMKIT_X86_BOOT_PML4 0x2000ULL
#define KVMKIT_X86_BOOT_PDPT 0x3000ULL
#define KVMKIT_X86_BOOT_PD 0x4000ULL /* 4 pages: 0x4000..0x7fff */

#define KVMKIT_ELF_MAX_SEGMENTS 32
/* Largest image file kvmkit reads (sanity bound for user input). */
#define KVMKIT_IMAGE_MAX_SIZE (1ULL << 30)

struct kvmkit_elf_segment {
	uint64_t paddr;
	uint64_t offset; /* in the file */
	uint64_t filesz;
	uint64_t memsz;
	uint32_t flags; /* PF_R/PF_W/PF_X */
};

struct kvmkit_elf_image {
	unsigned int elf_class; /* 32 or 64 */
	unsigned int machine;	/* EM_X86_64, EM_386, EM_AARCH64 */
	uint64_t entry;
	unsigned int nsegs;
	struct kvmkit_elf_segment segs[KVMKIT_ELF_MAX_SEGMENTS];
	uint64_t lowest;  /* lowest paddr of any segment */
	uint64_t highest; /* one past the highest byte of any segment */
};

/* Validates an ELF image in memory without touching a VM: magic, class,
 * endianness, type EXEC, program header table inside the file, every
 * PT_LOAD's file range inside the file, filesz <= memsz, no address wrap,
 * no two PT_LOADs overlapping. KVMKIT_ERR_FORMAT on failure. */
int kvmkit_elf_parse(const void *buf, size_t len, struct kvmkit_elf_image *img);

/* Copies a parsed image's segments into guest memory. Rejects segments
 * outside RAM or inside [reserved_start, reserved_end). */
int kvmkit_elf_load(struct kvmkit_vm *vm, const void *buf, size_t len,
		    const struct kvmkit_elf_image *img, uint64_t reserved_start, uint64_t reserved_end);

/* Reads a whole regular file (at most KVMKIT_IMAGE_MAX_SIZE) into a
 * malloc'ed buffer the caller frees. */
int kvmkit_read_file(const char *path, void **buf, size_t *len);

/* x86_64: writes the boot area (GDT and page tables) into guest memory. */
int kvmkit_x86_write_boot_area(struct kvmkit_vm *vm);
/* x86_64: puts @vcpu in the ELF64 entry state described above. */
int kvmkit_x86_vcpu_setup_long_mode(struct kvmkit_vcpu *vcpu, uint64_t entry);

/* Checks, before any VM exists, that an ELF64 x86_64 image parses and that
 * every segment fits a VM with @mem_size bytes of RAM and misses the boot
 * area, so that bad input fails before KVM is touched. */
int kvmkit_boot_check_elf64(const void *buf, size_t len, uint64_t mem_size);

/* Loads an ELF64 guest (path or buffer) and prepares every created vCPU
 * to enter it. The VM must be CREATED with all its vCPUs created. */
int kvmkit_boot_elf64(struct kvmkit_vm *vm, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
