// SPDX-License-Identifier: MIT
/*
 * ELF image parsing and loading. The file is user input: every offset and
 * size is checked against the buffer before use, in 64-bit arithmetic with
 * explicit wrap checks.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KVMK_LOG_MODULE "elf"
#include "core/internal.h"
#include "boot/boot_internal.h"
#include <kvmkit/loader.h>
#include <kvmkit/vm.h>

#define OP "kvmkit_elf_parse"

static bool add_overflows(uint64_t a, uint64_t b)
{
	return a + b < a;
}

static int add_segment(struct kvmkit_elf_image *img, size_t file_len, uint64_t paddr,
		       uint64_t offset, uint64_t filesz, uint64_t memsz, uint32_t flags,
		       unsigned int idx)
{
	struct kvmkit_elf_segment *s;

	if (filesz > memsz)
		return kvmk_err_format(OP, "segment %u: p_filesz 0x%llx > p_memsz 0x%llx", idx,
				       (unsigned long long)filesz, (unsigned long long)memsz);
	if (add_overflows(offset, filesz) || offset + filesz > file_len)
		return kvmk_err_format(
			OP,
			"segment %u: file range 0x%llx+0x%llx beyond the %zu-byte file (truncated?)",
			idx, (unsigned long long)offset, (unsigned long long)filesz, file_len);
	if (add_overflows(paddr, memsz))
		return kvmk_err_format(OP, "segment %u: address 0x%llx+0x%llx wraps", idx,
				       (unsigned long long)paddr, (unsigned long long)memsz);
	if (memsz == 0)
		return 0;
	for (unsigned int i = 0; i < img->nsegs; i++) {
		const struct kvmkit_elf_segment *o = &img->segs[i];

		if (paddr < o->paddr + o->memsz && o->paddr < paddr + memsz)
			return kvmk_err_format(
				OP,
				"segment %u (0x%llx+0x%llx) overlaps another PT_LOAD (0x%llx+0x%llx)",
				idx, (unsigned long long)paddr, (unsigned long long)memsz,
				(unsigned long long)o->paddr, (unsigned long long)o->memsz);
	}
	if (img->nsegs == KVMKIT_ELF_MAX_SEGMENTS)
		return kvmk_err_format(OP, "more than %d PT_LOAD segments",
				       KVMKIT_ELF_MAX_SEGMENTS);
	s = &img->segs[img->nsegs++];
	*s = (struct kvmkit_elf_segment){ paddr, offset, filesz, memsz, flags };
	if (img->nsegs == 1 || paddr < img->lowest)
		img->lowest = paddr;
	if (paddr + memsz > img->highest)
		img->highest = paddr + memsz;
	return 0;
}

static int check_phdrs(size_t len, uint64_t phoff, uint64_t phnum, uint64_t phentsize,
		       uint64_t want)
{
	if (phnum == 0)
		return kvmk_err_format(OP, "no program headers");
	if (phnum == PN_XNUM)
		return kvmk_err_format(
			OP, "e_phnum 0x%llx: extended program header numbering is not supported",
			(unsigned long long)phnum);
	if (phentsize != want)
		return kvmk_err_format(OP, "e_phentsize %llu, expected %llu",
				       (unsigned long long)phentsize, (unsigned long long)want);
	if (phoff > len || phnum * phentsize > len - phoff)
		return kvmk_err_format(
			OP,
			"program header table (offset 0x%llx, %llu entries) beyond the %zu-byte file",
			(unsigned long long)phoff, (unsigned long long)phnum, len);
	return 0;
}

#define EHDR_FIELDS(h)                                                                            \
	(struct kvmk_elf_ehdr)                                                                    \
	{                                                                                         \
		(h).e_type, (h).e_machine, (h).e_entry, (h).e_phoff, (h).e_phnum, (h).e_phentsize \
	}
#define PHDR_FIELDS(h)                                                                         \
	(struct kvmk_elf_phdr)                                                                 \
	{                                                                                      \
		(h).p_type, (h).p_flags, (h).p_vaddr, (h).p_paddr, (h).p_offset, (h).p_filesz, \
			(h).p_memsz                                                            \
	}

struct kvmk_elf_ehdr kvmk_elf_ehdr(const uint8_t *buf, unsigned int cls)
{
	Elf64_Ehdr h64;
	Elf32_Ehdr h32;

	if (cls == 64) {
		memcpy(&h64, buf, sizeof(h64));
		return EHDR_FIELDS(h64);
	}
	memcpy(&h32, buf, sizeof(h32));
	return EHDR_FIELDS(h32);
}

struct kvmk_elf_phdr kvmk_elf_phdr(const uint8_t *buf, unsigned int cls,
				   const struct kvmk_elf_ehdr *eh, unsigned int i)
{
	Elf64_Phdr h64;
	Elf32_Phdr h32;

	if (cls == 64) {
		memcpy(&h64, buf + eh->phoff + (uint64_t)i * sizeof(h64), sizeof(h64));
		return PHDR_FIELDS(h64);
	}
	memcpy(&h32, buf + eh->phoff + (uint64_t)i * sizeof(h32), sizeof(h32));
	return PHDR_FIELDS(h32);
}

/* The header and the PT_LOAD segments of an ELF file of img->elf_class. */
static int parse(const uint8_t *buf, size_t len, struct kvmkit_elf_image *img)
{
	unsigned int cls = img->elf_class;
	size_t ehsize = cls == 64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t phsize = cls == 64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	struct kvmk_elf_ehdr eh;
	int r;

	if (len < ehsize)
		return kvmk_err_format(OP, "truncated ELF%u header (%zu bytes)", cls, len);
	eh = kvmk_elf_ehdr(buf, cls);
	if (eh.type != ET_EXEC)
		return kvmk_err_format(OP, "not an executable (e_type %u)", (unsigned int)eh.type);
	img->machine = (unsigned int)eh.machine;
	img->entry = eh.entry;
	r = check_phdrs(len, eh.phoff, eh.phnum, eh.phentsize, phsize);
	if (r)
		return r;
	for (unsigned int i = 0; i < eh.phnum; i++) {
		struct kvmk_elf_phdr ph = kvmk_elf_phdr(buf, cls, &eh, i);

		if (ph.type != PT_LOAD)
			continue;
		/* 32-bit guests address at most 4 GiB. */
		if (cls == 32 && ph.paddr + ph.memsz > (1ull << 32))
			return kvmk_err_format(OP, "segment %u: 0x%x+0x%x crosses 4 GiB", i,
					       (unsigned int)ph.paddr, (unsigned int)ph.memsz);
		r = add_segment(img, len, ph.paddr, ph.offset, ph.filesz, ph.memsz,
				(uint32_t)ph.flags, i);
		if (r)
			return r;
	}
	return 0;
}

int kvmkit_elf_parse(const void *buf, size_t len, struct kvmkit_elf_image *img)
{
	const uint8_t *b = buf;
	int r;

	memset(img, 0, sizeof(*img));
	if (!buf || len < EI_NIDENT)
		return kvmk_err_format(OP, "file too short for an ELF header (%zu bytes)", len);
	if (memcmp(b, ELFMAG, SELFMAG))
		return kvmk_err_format(OP, "not an ELF file (bad magic)");
	if (b[EI_DATA] != ELFDATA2LSB)
		return kvmk_err_format(OP, "not little-endian");
	if (b[EI_VERSION] != EV_CURRENT)
		return kvmk_err_format(OP, "unknown ELF version %u", b[EI_VERSION]);
	switch (b[EI_CLASS]) {
	case ELFCLASS64:
		img->elf_class = 64;
		break;
	case ELFCLASS32:
		img->elf_class = 32;
		break;
	default:
		return kvmk_err_format(OP, "unknown ELF class %u", b[EI_CLASS]);
	}
	r = parse(b, len, img);
	if (r)
		return r;
	if (img->nsegs == 0)
		return kvmk_err_format(OP, "no loadable (PT_LOAD) segment");
	return 0;
}

/* A caller can build or change a kvmkit_elf_image by hand: loaders trust
 * none of it. */
int kvmk_elf_check_image(const char *op, const struct kvmkit_elf_image *img, size_t file_len)
{
	if (!img)
		return kvmk_err_param(op, "img", "no image description", "NULL");
	if (img->nsegs > KVMKIT_ELF_MAX_SEGMENTS)
		return kvmk_err_format(op, "%u segments, more than %d", img->nsegs,
				       KVMKIT_ELF_MAX_SEGMENTS);
	for (unsigned int i = 0; i < img->nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->segs[i];

		if (s->filesz > s->memsz)
			return kvmk_err_format(op, "segment %u: filesz 0x%llx > memsz 0x%llx", i,
					       (unsigned long long)s->filesz,
					       (unsigned long long)s->memsz);
		if (s->offset > file_len || s->filesz > file_len - s->offset)
			return kvmk_err_format(
				op,
				"segment %u: file range 0x%llx+0x%llx beyond the %zu-byte image", i,
				(unsigned long long)s->offset, (unsigned long long)s->filesz,
				file_len);
		if (add_overflows(s->paddr, s->memsz))
			return kvmk_err_format(op, "segment %u: address 0x%llx+0x%llx wraps", i,
					       (unsigned long long)s->paddr,
					       (unsigned long long)s->memsz);
		for (unsigned int j = 0; j < i; j++) {
			const struct kvmkit_elf_segment *o = &img->segs[j];

			if (s->memsz && o->memsz && s->paddr < o->paddr + o->memsz &&
			    o->paddr < s->paddr + s->memsz)
				return kvmk_err_format(
					op,
					"segment %u (0x%llx+0x%llx) overlaps segment %u (0x%llx+0x%llx)",
					i, (unsigned long long)s->paddr,
					(unsigned long long)s->memsz, j,
					(unsigned long long)o->paddr, (unsigned long long)o->memsz);
		}
	}
	return 0;
}

bool kvmk_elf_in_segment(const struct kvmkit_elf_image *img, uint64_t addr)
{
	for (unsigned int i = 0; i < img->nsegs && i < KVMKIT_ELF_MAX_SEGMENTS; i++)
		if (addr >= img->segs[i].paddr && addr - img->segs[i].paddr < img->segs[i].memsz)
			return true;
	return false;
}

int kvmk_elf_load(const struct kvmk_guest_ram *ram, const void *buf, size_t len,
		  const struct kvmkit_elf_image *img, uint64_t reserved_start,
		  uint64_t reserved_end)
{
	const char *op = "kvmkit_elf_load";
	uint8_t *dst[KVMKIT_ELF_MAX_SEGMENTS];
	int r;

	if (!buf && len)
		return kvmk_err_param(op, "buf", "NULL with a length", "%zu", len);
	r = kvmk_elf_check_image(op, img, buf ? len : 0);
	if (r)
		return r;
	/* Every segment is checked before the first byte is written. */
	for (unsigned int i = 0; i < img->nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->segs[i];

		dst[i] = NULL;
		if (!s->memsz)
			continue;
		if (s->paddr < reserved_end && reserved_start < s->paddr + s->memsz)
			return kvmk_err_param(op, "segment", "overlaps the loader's boot area",
					      "%u: 0x%llx+0x%llx (area 0x%llx-0x%llx)", i,
					      (unsigned long long)s->paddr,
					      (unsigned long long)s->memsz,
					      (unsigned long long)reserved_start,
					      (unsigned long long)reserved_end);
		dst[i] = ram->hva(ram, s->paddr, s->memsz);
		if (!dst[i])
			return kvmk_err_param(op, "segment", "outside guest RAM",
					      "%u: 0x%llx+0x%llx (RAM %llu MiB)", i,
					      (unsigned long long)s->paddr,
					      (unsigned long long)s->memsz,
					      (unsigned long long)(ram->size >> 20));
	}
	for (unsigned int i = 0; i < img->nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->segs[i];

		if (!dst[i])
			continue;
		memcpy(dst[i], (const uint8_t *)buf + s->offset, s->filesz);
		memset(dst[i] + s->filesz, 0, s->memsz - s->filesz);
		if (ram->wrote)
			ram->wrote(ram, s->paddr, s->memsz);
	}
	return 0;
}

static void *vm_hva(const struct kvmk_guest_ram *ram, uint64_t gpa, uint64_t len)
{
	return kvmkit_vm_gpa_to_hva(ram->ctx, gpa, len);
}

static void vm_wrote(const struct kvmk_guest_ram *ram, uint64_t gpa, uint64_t len)
{
	kvmkit_vm_mark_dirty(ram->ctx, gpa, len); /* the range passed vm_hva */
}

void kvmk_guest_ram_of_vm(struct kvmk_guest_ram *ram, struct kvmkit_vm *vm)
{
	ram->hva = vm_hva;
	ram->wrote = vm_wrote;
	ram->ctx = vm;
	ram->size = kvmkit_vm_ram_size(vm);
}

static void *buffer_hva(const struct kvmk_guest_ram *ram, uint64_t gpa, uint64_t len)
{
	if (gpa > ram->size || len > ram->size - gpa)
		return NULL;
	return (uint8_t *)ram->ctx + gpa;
}

void kvmk_guest_ram_of_buffer(struct kvmk_guest_ram *ram, void *buf, uint64_t size)
{
	ram->hva = buffer_hva;
	ram->wrote = NULL;
	ram->ctx = buf;
	ram->size = size;
}

int kvmkit_elf_load(struct kvmkit_vm *vm, const void *buf, size_t len,
		    const struct kvmkit_elf_image *img, uint64_t reserved_start,
		    uint64_t reserved_end)
{
	struct kvmk_guest_ram ram;

	if (!vm)
		return kvmk_err_param("kvmkit_elf_load", "vm", "no VM", "NULL");
	kvmk_guest_ram_of_vm(&ram, vm);
	return kvmk_elf_load(&ram, buf, len, img, reserved_start, reserved_end);
}

int kvmkit_read_file(const char *path, void **buf, size_t *len)
{
	struct stat st;
	uint8_t *b;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kvmk_err_sys("open", errno, "%s", path);
	if (fstat(fd, &st) < 0) {
		int r = kvmk_err_sys("fstat", errno, "%s", path);

		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return kvmk_err_param("kvmkit_read_file", "path", "not a regular file", "%s", path);
	}
	if ((uint64_t)st.st_size > KVMKIT_IMAGE_MAX_SIZE) {
		close(fd);
		return kvmk_err_param("kvmkit_read_file", "path", "file larger than 1 GiB", "%s",
				      path);
	}
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b) {
		close(fd);
		return kvmk_err_resource("kvmkit_read_file", ENOMEM, "%s", path);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int r = kvmk_err_sys("read", n < 0 ? errno : EIO, "%s", path);

			free(b);
			close(fd);
			return r;
		}
		got += (size_t)n;
	}
	close(fd);
	*buf = b;
	*len = got;
	return 0;
}
