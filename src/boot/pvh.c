// SPDX-License-Identifier: MIT
/*
 * PVH boot of a vmlinux ELF: the XEN_ELFNOTE_PHYS32_ENTRY note, the
 * segments at their physical addresses, and hvm_start_info (version 1)
 * with the command line, the initrd as module 0, the RSDP and the memory
 * map. The ELF is user input: the note walk checks every size against its
 * segment and the file.
 */
#include <elf.h>
#include <stdint.h>
#include <string.h>

#define KVMK_LOG_MODULE "pvh"
#include "core/internal.h"
#include "boot/boot_internal.h"
#include <kvmkit/linux_boot.h>

#define ONE_MIB 0x100000ull
#define PAGE 4096ull

/* Xen's public/arch-x86/hvm/start_info.h, version 1. */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* Where the parts go inside the info page (KVMKIT_LINUX_ZERO_PAGE). */
#define MODLIST_OFF 0x40
#define MEMMAP_OFF 0x80

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");
_Static_assert(MEMMAP_OFF + 4 * sizeof(struct hvm_memmap_table_entry) <= PAGE, "info page");

/* The PHYS32 entry in the notes at [off, off + size) of the file, or 0. */
static uint32_t scan_notes(const uint8_t *b, size_t len, uint64_t off, uint64_t size)
{
	uint64_t end;

	if (off > len || size > len - off)
		return 0;
	end = off + size;
	while (end - off >= 12) {
		uint32_t namesz, descsz, type;
		uint64_t name, desc, next;

		memcpy(&namesz, b + off, 4);
		memcpy(&descsz, b + off + 4, 4);
		memcpy(&type, b + off + 8, 4);
		name = off + 12;
		desc = name + (((uint64_t)namesz + 3) & ~3ull);
		next = desc + (((uint64_t)descsz + 3) & ~3ull);
		if (next > end)
			return 0;
		if (namesz == 4 && !memcmp(b + name, "Xen", 4) &&
		    type == KVMKIT_PVH_NOTE_PHYS32_ENTRY) {
			uint64_t v = 0;

			if (descsz != 4 && descsz != 8)
				return 0;
			memcpy(&v, b + desc, descsz);
			return v && v < (1ull << 32) ? (uint32_t)v : 0;
		}
		off = next;
	}
	return 0;
}

/* The note of any PT_NOTE segment; kvmkit_elf_parse has checked the ELF
 * header and that the program header table lies in the file. */
static uint32_t find_note(const uint8_t *b, size_t len, unsigned int elf_class)
{
	struct kvmk_elf_ehdr eh = kvmk_elf_ehdr(b, elf_class);

	for (unsigned int i = 0; i < eh.phnum; i++) {
		struct kvmk_elf_phdr ph = kvmk_elf_phdr(b, elf_class, &eh, i);
		uint32_t e;

		if (ph.type == PT_NOTE && (e = scan_notes(b, len, ph.offset, ph.filesz)))
			return e;
	}
	return 0;
}

/* The image, parsed, and its entry inside a segment (else 0). */
static uint32_t parse(const void *buf, size_t len, struct kvmkit_elf_image *img)
{
	uint32_t entry;

	if (!buf || len < SELFMAG || memcmp(buf, ELFMAG, SELFMAG))
		return 0;
	if (kvmkit_elf_parse(buf, len, img))
		return 0;
	if (img->machine != EM_X86_64 && img->machine != EM_386)
		return 0;
	entry = find_note(buf, len, img->elf_class);
	return entry && kvmk_elf_in_segment(img, entry) ? entry : 0;
}

uint32_t kvmkit_pvh_entry(const void *buf, size_t len)
{
	struct kvmkit_elf_image img;
	struct kvmkit_error saved;
	uint32_t e;

	/* Detection: a non-ELF or an ELF without the note is no error. */
	kvmk_err_save(&saved);
	e = parse(buf, len, &img);
	kvmk_err_restore(&saved);
	return e;
}

/* Segments (of an image kvmkit_elf_parse made: no hand-made description
 * reaches here) in low RAM from 1 MiB: the low areas (boot GDT, start info,
 * command line) and the legacy hole stay kvmkit's. */
static int place(const char *op, const struct kvmkit_elf_image *img, uint64_t mem_size,
		 size_t cmdline_len, size_t initrd_len, struct kvmkit_linux_layout *lay)
{
	uint64_t low = mem_size < KVMKIT_X86_MMIO_HOLE ? mem_size : KVMKIT_X86_MMIO_HOLE;

	for (unsigned int i = 0; i < img->nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->segs[i];

		if (s->memsz && (s->paddr < ONE_MIB || s->paddr > low || s->memsz > low - s->paddr))
			return kvmk_err_param(op, "segment", "not in RAM from 1 MiB",
					      "%u: 0x%llx+0x%llx (RAM below 0x%llx)", i,
					      (unsigned long long)s->paddr,
					      (unsigned long long)s->memsz,
					      (unsigned long long)low);
	}
	memset(lay, 0, sizeof(*lay));
	lay->kernel = img->lowest;
	lay->kernel_end = img->highest;
	/* PVH sets no command line limit: kvmkit's own bounds it. */
	return kvmk_linux_place_common(op, mem_size, lay->kernel_end, 1ull << 32, cmdline_len,
				       KVMKIT_LINUX_CMDLINE_MAX - 1, initrd_len, lay);
}

/* The image parsed into @img and placed into @lay, entry included. */
static int parse_place(const char *op, const void *buf, size_t len, uint64_t mem_size,
		       size_t cmdline_len, size_t initrd_len, struct kvmkit_elf_image *img,
		       struct kvmkit_linux_layout *lay)
{
	uint32_t entry = parse(buf, len, img);
	int r;

	if (!entry)
		return kvmk_err_format(
			op, "no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) inside a segment");
	r = place(op, img, mem_size, cmdline_len, initrd_len, lay);
	lay->entry = entry;
	return r;
}

int kvmk_pvh_place(const void *buf, size_t len, uint64_t mem_size, size_t cmdline_len,
		   size_t initrd_len, struct kvmkit_linux_layout *lay)
{
	struct kvmkit_elf_image img;

	return parse_place("kvmkit_boot_linux", buf, len, mem_size, cmdline_len, initrd_len, &img,
			   lay);
}

int kvmk_linux_load_pvh(const struct kvmk_guest_ram *ram, const struct kvmkit_linux_boot *boot,
			struct kvmkit_linux_layout *lay)
{
	const char *op = "kvmkit_boot_linux";
	const uint64_t gdt[3] = { 0, KVMK_GDT_CODE32, KVMK_GDT_DATA };
	const char *cmdline = boot->cmdline ? boot->cmdline : "";
	size_t clen = strlen(cmdline);
	struct kvmkit_e820_entry map[4];
	struct hvm_memmap_table_entry mm[4];
	struct hvm_modlist_entry mod = { 0 };
	struct hvm_start_info si = { 0 };
	struct kvmkit_elf_image img;
	uint8_t *info, *cl, *gd, *rd = NULL;
	unsigned int n;
	int r;

	r = parse_place(op, boot->kernel, boot->kernel_len, ram->size, clen,
			boot->initrd ? boot->initrd_len : 0, &img, lay);
	if (r)
		return r;
	info = ram->hva(ram, lay->info, PAGE);
	cl = ram->hva(ram, lay->cmdline, clen + 1);
	gd = ram->hva(ram, KVMKIT_X86_BOOT_GDT, PAGE);
	if (lay->initrd_size)
		rd = ram->hva(ram, lay->initrd, lay->initrd_size);
	if (!info || !cl || !gd || (lay->initrd_size && !rd))
		return kvmk_err_param(op, "mem_size", "RAM does not cover the PVH layout",
				      "initrd 0x%llx+%llu (RAM %llu MiB)",
				      (unsigned long long)lay->initrd,
				      (unsigned long long)lay->initrd_size,
				      (unsigned long long)(ram->size >> 20));
	/* The segments' own checks come last, in kvmk_elf_load, before it
	 * writes: nothing below 1 MiB is theirs. */
	r = kvmk_elf_load(ram, boot->kernel, boot->kernel_len, &img, 0, ONE_MIB);
	if (r)
		return r;
	memset(gd, 0, PAGE);
	memcpy(gd, gdt, sizeof(gdt));
	n = kvmkit_linux_e820(ram->size, map, 4);
	for (unsigned int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_table_entry){ map[i].addr, map[i].size, map[i].type, 0 };
	si.magic = KVMKIT_PVH_MAGIC;
	si.version = 1;
	si.cmdline_paddr = lay->cmdline;
	si.rsdp_paddr = boot->rsdp;
	si.memmap_paddr = lay->info + MEMMAP_OFF;
	si.memmap_entries = n;
	if (rd) {
		mod.paddr = lay->initrd;
		mod.size = lay->initrd_size;
		si.nr_modules = 1;
		si.modlist_paddr = lay->info + MODLIST_OFF;
	}
	memset(info, 0, PAGE);
	memcpy(info, &si, sizeof(si));
	memcpy(info + MODLIST_OFF, &mod, sizeof(mod));
	memcpy(info + MEMMAP_OFF, mm, n * sizeof(mm[0]));
	memcpy(cl, cmdline, clen + 1);
	if (rd)
		memcpy(rd, boot->initrd, lay->initrd_size);
	if (ram->wrote) {
		ram->wrote(ram, KVMKIT_X86_BOOT_GDT, PAGE);
		ram->wrote(ram, lay->info, PAGE);
		ram->wrote(ram, lay->cmdline, clen + 1);
		if (rd)
			ram->wrote(ram, lay->initrd, lay->initrd_size);
	}
	return 0;
}
