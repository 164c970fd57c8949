/* SPDX-License-Identifier: MIT */
/*
 * The loaders' view of guest RAM, so that loading (ELF segments, Multiboot
 * modules and information area) runs on a VM or on a plain buffer standing
 * for guest RAM (unit tests and fuzz targets, no KVM). Not installed.
 */
#ifndef KVMKIT_BOOT_INTERNAL_H
#define KVMKIT_BOOT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvmkit/loader.h>
#include <kvmkit/linux_boot.h>
#if defined(__x86_64__)
#include "boot/x86_boot.h"
#endif

struct kvmk_guest_ram {
	/* Host address of [gpa, gpa + len) if the range lies wholly inside one
	 * RAM region, else NULL: the one bounds check every write goes through. */
	void *(*hva)(const struct kvmk_guest_ram *ram, uint64_t gpa, uint64_t len);
	/* Called after [gpa, gpa + len) was written (NULL: nothing to tell):
	 * a VM marks the pages for dirty logging (kvmkit_vm_mark_dirty). */
	void (*wrote)(const struct kvmk_guest_ram *ram, uint64_t gpa, uint64_t len);
	void *ctx; /* the VM, or the buffer */
	uint64_t size; /* bytes of RAM, laid out as a VM's (low part, rest at 4 GiB) */
};

/* A VM's RAM (through kvmkit_vm_gpa_to_hva). */
void kvmk_guest_ram_of_vm(struct kvmk_guest_ram *ram, struct kvmkit_vm *vm);
/* @size bytes at @buf standing for RAM at guest-physical 0 (@size at most
 * the 3 GiB hole, so that it is all low RAM). */
void kvmk_guest_ram_of_buffer(struct kvmk_guest_ram *ram, void *buf, uint64_t size);

/* What the loaders read of an ELF header and of a program header, the
 * same for both classes (whose structures name these fields alike). */
struct kvmk_elf_ehdr {
	uint64_t type, machine, entry, phoff, phnum, phentsize;
};

struct kvmk_elf_phdr {
	uint64_t type, flags, vaddr, paddr, offset, filesz, memsz;
};

/* The header of an ELF file of class @cls (32 or 64) at @buf, which holds
 * it whole, and its program header @i (the table checked to lie in the
 * buffer, with entries of the class's size, as kvmkit_elf_parse does). */
struct kvmk_elf_ehdr kvmk_elf_ehdr(const uint8_t *buf, unsigned int cls);
struct kvmk_elf_phdr kvmk_elf_phdr(const uint8_t *buf, unsigned int cls,
				   const struct kvmk_elf_ehdr *eh, unsigned int i);

/* The checks kvmkit_elf_parse makes, repeated on a description that may
 * not come from it: segment count, filesz <= memsz, file range inside
 * @file_len bytes (SIZE_MAX: no file to check against), no address wrap, no
 * two segments overlapping. KVMKIT_ERR_FORMAT naming the segment. */
int kvmk_elf_check_image(const char *op, const struct kvmkit_elf_image *img, size_t file_len);
/* Whether @addr lies inside one of @img's segments. */
bool kvmk_elf_in_segment(const struct kvmkit_elf_image *img, uint64_t addr);

/* kvmkit_elf_load on any guest RAM: re-validates @img against the @len-byte
 * image and the RAM before writing anything. */
int kvmk_elf_load(const struct kvmk_guest_ram *ram, const void *buf, size_t len,
		  const struct kvmkit_elf_image *img, uint64_t reserved_start,
		  uint64_t reserved_end);

/* Parses, places and loads a Multiboot image with its modules, GDT and
 * information area into @ram; the layout and the physical entry point come
 * back for the vCPU set-up. Nothing is written unless everything fits. */
int kvmk_multiboot_load(const struct kvmk_guest_ram *ram, const void *image, size_t len,
			const char *cmdline, const struct kvmkit_multiboot_module *mods,
			unsigned int nmods, struct kvmkit_multiboot_layout *layout,
			uint32_t *entry);

/* ---- Linux (linux.c, pvh.c) ---------------------------------------------- */
struct kvmkit_bzimage;
struct kvmkit_linux_boot;
struct kvmkit_linux_layout;

/* Command line and initrd placement shared by the bzImage and PVH: the
 * command line at most min(@cmdline_size, KVMKIT_LINUX_CMDLINE_MAX - 1)
 * bytes; the initrd page aligned as high as min(@initrd_top, end of low
 * RAM) allows, at or above @kernel_end. */
int kvmk_linux_place_common(const char *op, uint64_t mem_size, uint64_t kernel_end,
			    uint64_t initrd_top, size_t cmdline_len, uint64_t cmdline_size,
			    size_t initrd_len, struct kvmkit_linux_layout *out);
/* boot_params for a placed bzImage into the 4096 bytes at @zp. */
void kvmk_linux_zero_page(uint8_t *zp, const void *image, const struct kvmkit_bzimage *img,
			  const struct kvmkit_linux_layout *lay, uint64_t mem_size, uint64_t rsdp);
/* Parse, place and load a bzImage (boot area with the 64-bit GDT, zero
 * page, command line, kernel, initrd) into @ram; nothing is written unless
 * everything fits. */
int kvmk_linux_load_bzimage(const struct kvmk_guest_ram *ram, const struct kvmkit_linux_boot *boot,
			    struct kvmkit_linux_layout *lay);
/* The same for a PVH vmlinux (32-bit GDT, hvm_start_info). */
int kvmk_pvh_place(const void *buf, size_t len, uint64_t mem_size, size_t cmdline_len,
		   size_t initrd_len, struct kvmkit_linux_layout *lay);
int kvmk_linux_load_pvh(const struct kvmk_guest_ram *ram, const struct kvmkit_linux_boot *boot,
			struct kvmkit_linux_layout *lay);

#endif
