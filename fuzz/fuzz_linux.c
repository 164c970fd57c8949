// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the Linux loaders (bzImage setup header parse,
 * placement, boot_params; PVH note walk, hvm_start_info) loading into a
 * plain buffer exactly RAM-sized, so ASan sees any write past it. The
 * input is a recipe (RAM size, command line and initrd lengths, loader)
 * and then either setup-header fields written over a valid bzImage
 * template (so most inputs get past the magic checks) or the bytes of an
 * ELF64 with a PVH note whose program headers and notes come from the
 * input. Traps if:
 *  - a load succeeds with the kernel, initrd, command line or info page
 *    outside low RAM, overlapping each other, or the initrd above
 *    initrd_addr_max;
 *  - boot_params does not say what was placed (command line, initrd,
 *    e820 count), or the kernel bytes in RAM differ from the file's;
 *  - the PVH start info does not carry the magic, or the entry found by
 *    detection differs from the one loaded.
 */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "boot/boot_internal.h"
#include <kvmkit/kvmkit.h>

#define MAX_FILE 0x4000u
#define MIB (1ull << 20)

/* A bzImage template with 4 setup sectors, then up to 16 field writes
 * (offset in the setup header, width, value) from the input. */
static size_t assemble_bz(struct fuzz_in *in, uint8_t *f)
{
	size_t len = 0xa00 + 0x400 + (size_t)fuzz_take(in, 2) % (MAX_FILE - 0xe00);
	unsigned int writes = (unsigned int)fuzz_take(in, 1) % 17;
	uint32_t v32;

	memset(f, 0, MAX_FILE);
	f[0x1f1] = 4;
	v32 = (uint32_t)((len - 0xa00) / 16);
	memcpy(f + 0x1f4, &v32, 4);
	f[0x1fe] = 0x55;
	f[0x1ff] = 0xaa;
	f[0x200] = 0xeb;
	f[0x201] = 0x6a;
	memcpy(f + 0x202, "HdrS", 4);
	f[0x206] = 0x0f;
	f[0x207] = 0x02;
	f[0x211] = 1;
	v32 = 0x7fffffff;
	memcpy(f + 0x22c, &v32, 4);
	v32 = 0x200000;
	memcpy(f + 0x230, &v32, 4);
	f[0x234] = 1;
	f[0x235] = 21;
	f[0x236] = 0x7f;
	v32 = 2047;
	memcpy(f + 0x238, &v32, 4);
	v32 = 0x1000000;
	memcpy(f + 0x258, &v32, 4);
	v32 = 0x100000;
	memcpy(f + 0x260, &v32, 4);
	for (unsigned int i = 0; i < writes; i++) {
		size_t off = 0x1f1 + (size_t)fuzz_take(in, 1) % (0x290 - 0x1f1);
		unsigned int w = 1u << (fuzz_take(in, 1) % 4);
		uint64_t v = fuzz_take(in, w);

		if (off + w <= len)
			memcpy(f + off, &v, w);
	}
	for (size_t i = 0xa00; i < len; i++)
		f[i] = (uint8_t)(i * 13);
	return len;
}

static void check_bz(const uint8_t *mem, uint64_t ram, const uint8_t *f, size_t len,
		     const struct kvmkit_linux_layout *lay, size_t clen, size_t rdlen)
{
	struct kvmkit_bzimage img;
	const uint8_t *zp = mem + lay->info;
	uint32_t v;

	CHECK(kvmkit_bzimage_parse(f, len, &img) == 0);
	CHECK(lay->kernel >= MIB && lay->kernel_end <= ram && lay->kernel < lay->kernel_end);
	CHECK(lay->kernel_end - lay->kernel == img.init_size);
	CHECK(lay->kernel % img.kernel_alignment == 0 || lay->kernel == img.pref_address);
	CHECK(lay->entry == lay->kernel + 0x200);
	CHECK(!memcmp(mem + lay->kernel, f + img.kernel_offset, img.kernel_size));
	CHECK(clen <= img.cmdline_size);
	if (rdlen) {
		CHECK(lay->initrd >= lay->kernel_end && lay->initrd + rdlen <= ram);
		CHECK(lay->initrd + rdlen - 1 <= img.initrd_addr_max);
		CHECK(lay->initrd % 4096 == 0);
	}
	memcpy(&v, zp + 0x228, 4);
	CHECK(v == lay->cmdline);
	memcpy(&v, zp + 0x21c, 4);
	CHECK(v == rdlen);
	memcpy(&v, zp + 0x218, 4);
	CHECK(v == (rdlen ? lay->initrd : 0));
	CHECK(zp[0x1e8] == (ram > MIB ? 3 : 2));
	CHECK(mem[lay->cmdline + clen] == 0);
}

/* An ELF64 header and up to 4 program headers from the input, a PVH note
 * somewhere in the file, the rest input bytes. */
static size_t assemble_pvh(struct fuzz_in *in, uint8_t *f)
{
	size_t len = 0x400 + (size_t)fuzz_take(in, 2) % (MAX_FILE - 0x400);
	unsigned int nph = (unsigned int)fuzz_take(in, 1) % 5;
	Elf64_Ehdr eh = { 0 };
	uint32_t hdr[3] = { 4, 8, KVMKIT_PVH_NOTE_PHYS32_ENTRY };
	size_t note_off = 0x200 + (size_t)fuzz_take(in, 1) * 4;
	uint64_t entry = MIB + fuzz_take(in, 3);
	bool first_load = true;

	memset(f, 0, MAX_FILE);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = (uint16_t)nph;
	memcpy(f, &eh, sizeof(eh));
	for (unsigned int i = 0; i < nph; i++) {
		Elf64_Phdr ph = { 0 };

		ph.p_type = fuzz_take(in, 1) & 1 ? PT_LOAD : PT_NOTE;
		ph.p_offset = fuzz_take(in, 2) % len; /* mostly inside the file */
		ph.p_paddr = MIB + fuzz_take(in, 2) * 16; /* mostly inside RAM */
		ph.p_filesz = fuzz_take(in, 2) % 0x2000;
		ph.p_memsz = ph.p_filesz + fuzz_take(in, 2);
		/* Often the entry lies in the first segment. */
		if (ph.p_type == PT_LOAD && first_load && fuzz_take(in, 1) & 1) {
			entry = ph.p_paddr + fuzz_take(in, 1);
			first_load = false;
		}
		if (ph.p_type == PT_NOTE && fuzz_take(in, 1) & 1) {
			ph.p_offset = note_off;
			ph.p_filesz = 24 + fuzz_take(in, 1) % 8;
		}
		memcpy(f + sizeof(eh) + i * sizeof(ph), &ph, sizeof(ph));
	}
	if (note_off + 24 <= len) {
		memcpy(f + note_off, hdr, 12);
		memcpy(f + note_off + 12, "Xen", 4);
		memcpy(f + note_off + 16, &entry, 8);
	}
	for (size_t i = 0x200 + 256 * 4 + 24; i < len && in->n; i++)
		f[i] = (uint8_t)fuzz_take(in, 1);
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t file[MAX_FILE];
	static char cmdline[4096];
	static const uint8_t initrd[0x20000];
	struct fuzz_in in = { data, size };
	uint64_t ram = MIB / 2 + (fuzz_take(&in, 1) % 16) * (MIB / 2);
	size_t clen = (size_t)fuzz_take(&in, 2) % sizeof(cmdline);
	size_t rdlen = (size_t)fuzz_take(&in, 3) % (sizeof(initrd) + 1);
	bool pvh = fuzz_take(&in, 1) & 1;
	struct kvmkit_linux_boot boot = { file, 0, rdlen ? initrd : NULL, rdlen, cmdline, 0xe0000 };
	struct kvmkit_linux_layout lay;
	struct kvmk_guest_ram gram;
	uint8_t *mem;
	int r;

	memset(cmdline, 'a', clen);
	cmdline[clen] = 0;
	boot.kernel_len = pvh ? assemble_pvh(&in, file) : assemble_bz(&in, file);
	mem = malloc(ram);
	if (!mem)
		return 0;
	kvmk_guest_ram_of_buffer(&gram, mem, ram);
	if (pvh) {
		uint32_t e = kvmkit_pvh_entry(file, boot.kernel_len);

		r = kvmk_linux_load_pvh(&gram, &boot, &lay);
		CHECK(r == 0 || r == -EINVAL || r == -ENOEXEC);
		if (!r) {
			uint32_t magic;

			CHECK(e && lay.entry == e);
			memcpy(&magic, mem + lay.info, 4);
			CHECK(magic == KVMKIT_PVH_MAGIC);
			CHECK(lay.kernel >= MIB && lay.kernel_end <= ram);
			CHECK(!rdlen ||
			      (lay.initrd >= lay.kernel_end && lay.initrd + rdlen <= ram));
			CHECK(!fuzz_overlap(lay.info, 4096, lay.kernel,
					    lay.kernel_end - lay.kernel));
		}
	} else {
		r = kvmk_linux_load_bzimage(&gram, &boot, &lay);
		CHECK(r == 0 || r == -EINVAL || r == -ENOEXEC);
		if (!r)
			check_bz(mem, ram, file, boot.kernel_len, &lay, clen, rdlen);
	}
	free(mem);
	return 0;
}
