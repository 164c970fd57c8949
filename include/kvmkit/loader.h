/* SPDX-License-Identifier: MIT */
/*
 * Guest image loaders.
 *
 * Threads and lifetimes: a loader writes guest memory and vCPU registers,
 * so it runs while the VM is CREATED (or paused, for a caller that knows
 * what it replaces), from one thread at a time per VM. It copies what it
 * needs from the image and the command line and keeps no pointer to
 * either; the parse calls (kvmkit_elf_parse, kvmkit_multiboot_*) are pure
 * and thread-safe, and their results point into the caller's image, valid
 * as long as the image is. Images are untrusted: every loader checks what
 * it is handed again, whatever a caller checked before.
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

#include <stdbool.h>
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
	unsigned int machine; /* EM_X86_64, EM_386, EM_AARCH64 */
	uint64_t entry;
	unsigned int nsegs;
	struct kvmkit_elf_segment segs[KVMKIT_ELF_MAX_SEGMENTS];
	uint64_t lowest; /* lowest paddr of any segment */
	uint64_t highest; /* one past the highest byte of any segment */
};

/* Validates an ELF image in memory without touching a VM: magic, class,
 * endianness, type EXEC, program header table inside the file, every
 * PT_LOAD's file range inside the file, filesz <= memsz, no address wrap,
 * no two PT_LOADs overlapping. KVMKIT_ERR_FORMAT on failure. */
int kvmkit_elf_parse(const void *buf, size_t len, struct kvmkit_elf_image *img);

/* Copies an image's segments into guest memory. @img need not come from
 * kvmkit_elf_parse and is not trusted: before anything is written, every
 * segment is checked again against the @len-byte image (filesz <= memsz,
 * file range inside it, no wrap, no two segments overlapping: else
 * KVMKIT_ERR_FORMAT) and against the VM (wholly inside one RAM region,
 * outside [reserved_start, reserved_end): else KVMKIT_ERR_PARAM). */
int kvmkit_elf_load(struct kvmkit_vm *vm, const void *buf, size_t len,
		    const struct kvmkit_elf_image *img, uint64_t reserved_start,
		    uint64_t reserved_end);

/* Reads a whole regular file (at most KVMKIT_IMAGE_MAX_SIZE) into a
 * malloc'ed buffer the caller frees. */
int kvmkit_read_file(const char *path, void **buf, size_t *len);

/* x86_64: writes the boot area (GDT and page tables) into guest memory. */
int kvmkit_x86_write_boot_area(struct kvmkit_vm *vm);
/* x86_64: puts @vcpu in the ELF64 entry state described above. */
int kvmkit_x86_vcpu_setup_long_mode(struct kvmkit_vcpu *vcpu, uint64_t entry);

/* Checks, before any VM exists, that an ELF64 x86_64 image parses, that
 * every segment fits a VM with @mem_size bytes of RAM and misses the boot
 * area, and that the entry point lies inside a segment, so that bad input
 * fails before KVM is touched. */
int kvmkit_boot_check_elf64(const void *buf, size_t len, uint64_t mem_size);

/* Loads an ELF64 guest (path or buffer) and prepares every created vCPU
 * to enter it. The VM must be CREATED with all its vCPUs created. The
 * checks above are made again against this VM, whatever the caller
 * checked before. */
int kvmkit_boot_elf64(struct kvmkit_vm *vm, const void *buf, size_t len);

/* ---- Multiboot (v1) -----------------------------------------------------
 * The convention QEMU's -kernel offers on the pc machine for 32-bit test
 * payloads (Multiboot 0.6.96):
 *  - The header (magic 0x1BADB002, flags, checksum) must lie 4-byte aligned
 *    within the first 8192 bytes, and magic + flags + checksum == 0.
 *  - Flags: bit 0 (page-align modules) and bit 1 (memory information) are
 *    always honoured; bit 2 (video mode) is accepted with a warning and no
 *    video information (as QEMU does); any other bit in 0..15 is rejected;
 *    bit 16 (a.out kludge: load addresses in the header) is rejected as
 *    unsupported: the image must be an ELF32 i386 executable whose PT_LOAD
 *    segments (p_paddr) give the load addresses.
 *  - Segments must lie in RAM below the 3 GiB hole; any address is fine,
 *    page 0 and 0x8000 (the link address of real-mode test payloads)
 *    included: kvmkit's things go where no segment lies.
 *  - Modules are placed page aligned, in order, after the image's highest
 *    segment (at 1 MiB at least) and below the end of low RAM.
 *  - kvmkit's area holds a GDT (0x08: flat 32-bit code, 0x10: flat data)
 *    at its start and, KVMKIT_MULTIBOOT_INFO_OFFSET bytes in, the
 *    information structure, then the memory map, module list and strings.
 *    It is whole pages (at most KVMKIT_MULTIBOOT_AREA_MAX bytes, which
 *    bounds the command line and module strings) at the lowest page-aligned
 *    address where it overlaps no segment and no module, searched in
 *    order: conventional memory from KVMKIT_MULTIBOOT_AREA_DEFAULT (0x9000)
 *    up to 0x9fc00, then RAM from 1 MiB to the end of low RAM, then
 *    0x1000-0x9000. So an image at 1 MiB or above (kvm-unit-tests' are at
 *    4 MiB) gets it at 0x9000 with the information structure at
 *    KVMKIT_MULTIBOOT_INFO, and a small image at 0x8000 in the first page
 *    after its last segment. Page 0 is never written. Everything is in
 *    usable RAM of the memory map, below 4 GiB, and never overlaps a
 *    segment, a module or another part.
 *  - vCPU 0 enters at the ELF entry in 32-bit protected mode: CS = 0x08,
 *    DS = ES = FS = GS = SS = 0x10, all base 0, limit 4 GiB, D/B = 1;
 *    CR0 = PE|ET, paging off, EFLAGS = 0x2 (interrupts off),
 *    EAX = 0x2BADB002, EBX = the information structure's address.
 *    Other vCPUs are not touched: with the in-kernel irqchip they wait for
 *    INIT/SIPI. Without it only one vCPU is allowed.
 *  - Information (flags 0, 2, 3, 6, 9): mem_lower = 640, mem_upper = KiB of
 *    RAM from 1 MiB to the 3 GiB hole; memory map: usable 0..0x9fc00,
 *    reserved 0x9fc00..1 MiB, usable 1 MiB..end of low RAM, usable RAM
 *    above 4 GiB if any; the command line; the modules; boot loader name
 *    "kvmkit". */
#define KVMKIT_MULTIBOOT_MAGIC 0x1BADB002u
#define KVMKIT_MULTIBOOT_BOOT_MAGIC 0x2BADB002u /* EAX at entry */
#define KVMKIT_MULTIBOOT_SEARCH 8192
/* Where kvmkit's area goes when nothing is in the way, and where the
 * information structure then is (EBX). */
#define KVMKIT_MULTIBOOT_AREA_DEFAULT 0x9000ULL
#define KVMKIT_MULTIBOOT_INFO_OFFSET 0x100ULL
#define KVMKIT_MULTIBOOT_INFO (KVMKIT_MULTIBOOT_AREA_DEFAULT + KVMKIT_MULTIBOOT_INFO_OFFSET)
#define KVMKIT_MULTIBOOT_AREA_MAX 0x7000ULL
#define KVMKIT_MULTIBOOT_MAX_MODULES 16

/* Header flags. */
#define KVMKIT_MB_FLAG_PAGE_ALIGN (1u << 0)
#define KVMKIT_MB_FLAG_MEMORY_INFO (1u << 1)
#define KVMKIT_MB_FLAG_VIDEO_MODE (1u << 2)
#define KVMKIT_MB_FLAG_AOUT_KLUDGE (1u << 16)

/* Information structure flags and layout (offsets into it). */
#define KVMKIT_MBI_MEM (1u << 0)
#define KVMKIT_MBI_CMDLINE (1u << 2)
#define KVMKIT_MBI_MODS (1u << 3)
#define KVMKIT_MBI_MMAP (1u << 6)
#define KVMKIT_MBI_LOADER_NAME (1u << 9)
#define KVMKIT_MBI_SIZE 116 /* through the framebuffer fields, zeroed */

struct kvmkit_multiboot_info {
	uint32_t flags;
	uint32_t mem_lower;
	uint32_t mem_upper;
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count;
	uint32_t mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length;
	uint32_t mmap_addr;
	uint32_t drives_length;
	uint32_t drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint8_t vbe_and_framebuffer[KVMKIT_MBI_SIZE - 72];
};

/* One memory map entry as the guest sees it: size (20) excludes itself. */
struct __attribute__((packed)) kvmkit_multiboot_mmap_entry {
	uint32_t size;
	uint64_t base_addr;
	uint64_t length;
	uint32_t type; /* 1: usable RAM, 2: reserved */
};

struct kvmkit_multiboot_mod_entry {
	uint32_t mod_start;
	uint32_t mod_end; /* one past the last byte */
	uint32_t string;
	uint32_t reserved;
};

struct kvmkit_multiboot_image {
	uint32_t header_offset; /* of the magic in the file */
	uint32_t flags;
	uint32_t entry; /* physical entry point */
	struct kvmkit_elf_image elf;
};

/* A module to load: its contents and its string (NULL: ""). */
struct kvmkit_multiboot_module {
	const void *data;
	size_t len;
	const char *string;
};

/* Where kvmkit put a module in guest memory. */
struct kvmkit_multiboot_placed {
	uint32_t start, end;
	const char *string;
};

/* Where everything goes in guest memory (the placement rules above). */
struct kvmkit_multiboot_layout {
	uint32_t area; /* kvmkit's area, page aligned: the GDT first */
	uint32_t area_size; /* whole pages */
	uint32_t info; /* the information structure: area + INFO_OFFSET, EBX */
	unsigned int nmods;
	struct kvmkit_multiboot_placed mods[KVMKIT_MULTIBOOT_MAX_MODULES];
};

/* Finds and validates the header and the ELF32 image (no VM needed).
 * KVMKIT_ERR_FORMAT for every malformed or unsupported image. */
int kvmkit_multiboot_parse(const void *buf, size_t len, struct kvmkit_multiboot_image *out);

/* True if @buf is an ELF32 file with a valid-looking multiboot magic and
 * checksum (what `kvmkit run` uses to pick the multiboot loader). */
bool kvmkit_multiboot_detect(const void *buf, size_t len);

/* Lays out a parsed image, @nmods modules (their data is not needed) and
 * kvmkit's area for command line @cmdline (NULL: "") in a VM with
 * @mem_size bytes of RAM; strings are not copied. @img is checked again
 * (segment count, filesz <= memsz, no wrap or overlap, entry inside a
 * segment), whoever built it: KVMKIT_ERR_FORMAT if it is inconsistent,
 * KVMKIT_ERR_PARAM when something does not fit. */
int kvmkit_multiboot_place(const struct kvmkit_multiboot_image *img, uint64_t mem_size,
			   const char *cmdline, const struct kvmkit_multiboot_module *mods,
			   unsigned int nmods, struct kvmkit_multiboot_layout *layout);

/* Builds the information structure, memory map, module list and strings
 * for a VM with @mem_size bytes of RAM into @buf, which the guest will see
 * at @gpa (the structure comes first, at @gpa). -EINVAL (KVMKIT_ERR_PARAM)
 * if they do not fit in @size bytes or below 4 GiB, or a module ends before
 * it starts. Returns the number of bytes used; with @buf NULL, only the
 * number of bytes needed (@size is then ignored). */
int kvmkit_multiboot_build_info(void *buf, size_t size, uint32_t gpa, uint64_t mem_size,
				const char *cmdline, const struct kvmkit_multiboot_placed *mods,
				unsigned int nmods);

/* Checks, before any VM exists, that a multiboot image parses and fits a
 * VM with @mem_size bytes of RAM together with an initrd of @initrd_len
 * bytes (its data is not needed: `kvmkit run` asks before reading the
 * file), so bad input fails before KVM is touched. The command line is
 * taken as empty here; the boot checks the real one again. */
int kvmkit_boot_check_multiboot(const void *image, size_t len, uint64_t mem_size,
				size_t initrd_len);

/* Loads a multiboot image with one optional module (@initrd, its string
 * "initrd") and command line @cmdline (NULL: ""), and puts vCPU 0 at its
 * entry. The VM must be CREATED with all its vCPUs created. The image is
 * parsed, placed and checked against this VM's RAM again, whatever the
 * caller checked before; nothing is written unless all of it fits. */
int kvmkit_boot_multiboot(struct kvmkit_vm *vm, const void *image, size_t len, const char *cmdline,
			  const void *initrd, size_t initrd_len);
/* The same with up to KVMKIT_MULTIBOOT_MAX_MODULES modules. */
int kvmkit_boot_multiboot_modules(struct kvmkit_vm *vm, const void *image, size_t len,
				  const char *cmdline, const struct kvmkit_multiboot_module *mods,
				  unsigned int nmods);

#ifdef __cplusplus
}
#endif
#endif
