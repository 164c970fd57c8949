/* SPDX-License-Identifier: MIT */
/*
 * Booting Linux on x86_64: the bzImage (Linux x86 boot protocol, 64-bit
 * entry) and a vmlinux ELF with a PVH note (32-bit PVH entry with
 * hvm_start_info). The protocols: the kernel's
 * Documentation/arch/x86/boot.rst and Xen's public/arch-x86/hvm/start_info.h.
 *
 * Threads and lifetimes: as every loader (loader.h): the parse and place
 * calls are pure and thread-safe; the boot calls run while the VM is
 * CREATED, from one thread, and copy what they need. Images are untrusted:
 * every header field is checked against the image length and the guest's
 * RAM before anything is written, and checked again at boot whatever the
 * caller checked before.
 *
 * Guest-physical layout of a Linux boot (docs/PLATFORM.md):
 *   0x1000-0x7fff  GDT and identity page tables (the ELF64 loader's area)
 *   0x8000-0x8fff  boot_params (the "zero page"), or PVH's hvm_start_info,
 *                  module list and memory map
 *   0x20000-       the command line (at most KVMKIT_LINUX_CMDLINE_MAX bytes)
 *   0x9fc00-0xfffff reserved (EBDA, legacy video and BIOS area); the ACPI
 *                  tables at 0xe0000 (acpi.h of the machine)
 *   1 MiB-         the kernel (bzImage: pref_address or the lowest
 *                  kernel_alignment-aligned address from 1 MiB; PVH: its
 *                  segments' p_paddr), then free RAM
 *   top of low RAM the initrd, page aligned, as high as initrd_addr_max and
 *                  the end of low RAM allow, above the kernel's init_size
 * e820 (kvmkit_linux_e820): RAM 0-0x9fc00, reserved 0x9fc00-1 MiB, RAM from
 * 1 MiB to the end of low RAM (KVMKIT_X86_MMIO_HOLE at most), RAM above
 * 4 GiB for the rest; the 32-bit MMIO gap (virtio-mmio, IOAPIC, LAPIC) is
 * not RAM and not listed.
 */
#ifndef KVMKIT_LINUX_BOOT_H
#define KVMKIT_LINUX_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvmkit/vm.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Oldest boot protocol kvmkit boots: 2.12, the first whose header says
 * (xloadflags XLF_KERNEL_64) that the kernel has the 64-bit entry kvmkit
 * uses; it also has pref_address and init_size (2.10), cmdline_size
 * (2.06) and relocatable_kernel/kernel_alignment (2.05). Linux 3.8 on. */
#define KVMKIT_LINUX_MIN_VERSION 0x020c

#define KVMKIT_LINUX_ZERO_PAGE 0x8000ULL
#define KVMKIT_LINUX_CMDLINE 0x20000ULL
#define KVMKIT_LINUX_CMDLINE_MAX 0x10000ULL /* bytes with the NUL */
#define KVMKIT_LINUX_LOW_RESERVED 0x9fc00ULL /* to 1 MiB: EBDA, BIOS */
#define KVMKIT_LINUX_KERNEL_MIN 0x100000ULL
#define KVMKIT_LINUX_E820_MAX 128 /* boot_params' table */

/* Setup header offsets (from the start of the image and of boot_params). */
#define KVMKIT_BZ_SETUP_SECTS 0x1f1
#define KVMKIT_BZ_BOOT_FLAG 0x1fe /* 0xaa55 */
#define KVMKIT_BZ_HEADER 0x202 /* "HdrS" */
#define KVMKIT_BZ_VERSION 0x206
#define KVMKIT_BZ_TYPE_OF_LOADER 0x210
#define KVMKIT_BZ_LOADFLAGS 0x211
#define KVMKIT_BZ_CODE32_START 0x214
#define KVMKIT_BZ_RAMDISK_IMAGE 0x218
#define KVMKIT_BZ_RAMDISK_SIZE 0x21c
#define KVMKIT_BZ_CMD_LINE_PTR 0x228
#define KVMKIT_BZ_INITRD_ADDR_MAX 0x22c
#define KVMKIT_BZ_KERNEL_ALIGNMENT 0x230
#define KVMKIT_BZ_RELOCATABLE 0x234
#define KVMKIT_BZ_MIN_ALIGNMENT 0x235
#define KVMKIT_BZ_XLOADFLAGS 0x236
#define KVMKIT_BZ_CMDLINE_SIZE 0x238
#define KVMKIT_BZ_PREF_ADDRESS 0x258
#define KVMKIT_BZ_INIT_SIZE 0x260
/* boot_params outside the setup header. */
#define KVMKIT_BP_ACPI_RSDP_ADDR 0x070
#define KVMKIT_BP_EXT_RAMDISK_IMAGE 0x0c0
#define KVMKIT_BP_EXT_RAMDISK_SIZE 0x0c4
#define KVMKIT_BP_EXT_CMD_LINE_PTR 0x0c8
#define KVMKIT_BP_E820_ENTRIES 0x1e8
#define KVMKIT_BP_E820_TABLE 0x2d0

#define KVMKIT_BZ_LOADED_HIGH 0x01 /* loadflags */
#define KVMKIT_BZ_XLF_KERNEL_64 0x01 /* xloadflags: 64-bit entry at +0x200 */

/* What kvmkit uses of a bzImage's setup header, after validation. */
struct kvmkit_bzimage {
	uint16_t version;
	uint8_t loadflags;
	uint16_t xloadflags;
	uint32_t setup_size; /* (setup_sects + 1) * 512: the real-mode part */
	uint32_t header_end; /* 0x202 + byte 0x201: setup header bytes to copy */
	uint64_t kernel_offset; /* file offset of the protected-mode kernel */
	uint64_t kernel_size; /* its bytes (the rest of the file) */
	uint32_t initrd_addr_max; /* highest address of the initrd's last byte */
	uint32_t kernel_alignment;
	bool relocatable;
	uint8_t min_alignment; /* log2 */
	uint32_t cmdline_size; /* longest command line, without the NUL */
	uint64_t pref_address;
	uint32_t init_size; /* RAM from the load address the kernel needs */
};

/* True if @buf starts like a bzImage (boot flag 0xaa55, "HdrS"): what
 * `kvmkit run` uses to pick this loader; the parse then checks it. */
bool kvmkit_bzimage_detect(const void *buf, size_t len);
/* Validates the setup header against the @len-byte image: magic, version
 * >= KVMKIT_LINUX_MIN_VERSION, XLF_KERNEL_64, LOADED_HIGH, setup size and
 * header end inside the image, a non-empty kernel, kernel_alignment a
 * power of two from 4 KiB to 1 GiB, min_alignment from 12 to it,
 * init_size from the kernel's size up to 1 GiB, pref_address aligned,
 * initrd_addr_max at least 1 MiB, cmdline_size non-zero.
 * KVMKIT_ERR_FORMAT naming the field. */
int kvmkit_bzimage_parse(const void *buf, size_t len, struct kvmkit_bzimage *out);

/* Where a Linux boot puts its parts (guest-physical). */
struct kvmkit_linux_layout {
	uint64_t kernel, kernel_end; /* [load address, + init_size) */
	uint64_t entry; /* bzImage: kernel + 0x200; PVH: the note's */
	uint64_t initrd, initrd_size; /* initrd_size 0: none */
	uint64_t cmdline; /* KVMKIT_LINUX_CMDLINE */
	uint64_t info; /* boot_params or hvm_start_info */
};

/* Places a bzImage for a VM with @mem_size bytes of RAM, a command line of
 * @cmdline_len bytes (without the NUL) and an initrd of @initrd_len bytes
 * (0: none): the kernel at pref_address if [pref_address, + init_size)
 * lies in low RAM from 1 MiB, else (relocatable kernels only) at the lowest
 * kernel_alignment-aligned address from 1 MiB where it does; the initrd
 * page aligned as high as min(initrd_addr_max + 1, end of low RAM) allows,
 * above the kernel's init_size. @img is checked again. KVMKIT_ERR_PARAM
 * saying what does not fit (the kernel, the initrd, the command line). */
int kvmkit_linux_place(const struct kvmkit_bzimage *img, uint64_t mem_size, size_t cmdline_len,
		       size_t initrd_len, struct kvmkit_linux_layout *out);

/* One e820 entry as boot_params holds it (20 bytes). */
struct __attribute__((packed)) kvmkit_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* 1 RAM, 2 reserved */
};
#define KVMKIT_E820_RAM 1
#define KVMKIT_E820_RESERVED 2

/* The memory map of a VM with @mem_size bytes (layout above; below
 * 0x9fc00 bytes the first RAM entry ends at @mem_size) into @out (at most
 * @max entries); returns the number of entries (at most 4). */
unsigned int kvmkit_linux_e820(uint64_t mem_size, struct kvmkit_e820_entry *out, unsigned int max);

/* ---- PVH ----------------------------------------------------------------
 * A vmlinux (ELF64 or ELF32) whose PT_NOTE holds a "Xen" note of type
 * XEN_ELFNOTE_PHYS32_ENTRY (18) with a 4- or 8-byte physical entry point
 * below 4 GiB, inside a PT_LOAD. Segments go to their p_paddr, which must
 * lie in low RAM from 1 MiB; vCPU 0 enters in flat 32-bit protected mode
 * (CS 0x08, DS/ES/SS 0x10, paging off, CR4 0, TR a 32-bit TSS of limit
 * 0x67) with EBX = the hvm_start_info (version 1: command line, initrd as
 * module 0, RSDP, memory map in e820 types). */
#define KVMKIT_PVH_NOTE_PHYS32_ENTRY 18
#define KVMKIT_PVH_MAGIC 0x336ec578u

/* Entry point of a PVH image, or 0 if @buf is no ELF with a valid PVH
 * note (nothing recorded: detection). */
uint32_t kvmkit_pvh_entry(const void *buf, size_t len);

/* ---- booting ------------------------------------------------------------ */

struct kvmkit_linux_boot {
	const void *kernel; /* bzImage or PVH vmlinux */
	size_t kernel_len;
	const void *initrd; /* NULL: none */
	size_t initrd_len;
	const char *cmdline; /* NULL: "" */
	uint64_t rsdp; /* the ACPI RSDP's address (0: none) for boot_params/PVH */
};

/* True if @buf is a bzImage or a PVH vmlinux. */
bool kvmkit_linux_detect(const void *buf, size_t len);
/* Checks before any VM exists that the kernel parses and that it, the
 * command line and an initrd of @initrd_len bytes fit @mem_size bytes of
 * RAM (the initrd's data is not needed). */
int kvmkit_boot_check_linux(const void *kernel, size_t len, uint64_t mem_size, const char *cmdline,
			    size_t initrd_len);
/* Loads the kernel, initrd, command line, boot_params or hvm_start_info and
 * the boot GDT and page tables, and puts vCPU 0 at the kernel's entry (the
 * others wait for INIT/SIPI: the VM needs an irqchip). The VM must be
 * CREATED with all its vCPUs created. Nothing is written unless it all
 * fits. */
int kvmkit_boot_linux(struct kvmkit_vm *vm, const struct kvmkit_linux_boot *boot);

#ifdef __cplusplus
}
#endif
#endif
