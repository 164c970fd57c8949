// SPDX-License-Identifier: MIT
/*
 * arm64 direct boot of an AArch64 ELF64 image (include/kvmkit/arm64.h
 * states the entry protocol): segments into RAM at KVMKIT_ARM64_RAM_BASE,
 * vCPU 0 at the entry point, the others left powered off for PSCI CPU_ON.
 * KVM's vCPU reset state is the rest of the entry state (EL1h, DAIF
 * masked, MMU and caches off).
 */
#include <elf.h>
#include <stdint.h>

#define KVMK_LOG_MODULE "boot"
#include "core/internal.h"
#include <kvmkit/loader.h>
#include <kvmkit/vcpu.h>
#include <kvmkit/arm64.h>
#include "boot/boot_internal.h"

static int check_layout(const char *op, const struct kvmkit_elf_image *img, uint64_t mem_size)
{
	int r;

	if (img->elf_class != 64 || img->machine != EM_AARCH64)
		return kvmk_err_format(op, "not an AArch64 ELF64 executable (class %u, machine %u)",
				       img->elf_class, img->machine);
	r = kvmk_elf_check_image(op, img, SIZE_MAX);
	if (r)
		return r;
	for (unsigned int i = 0; i < img->nsegs; i++) {
		const struct kvmkit_elf_segment *s = &img->segs[i];

		if (!s->memsz)
			continue;
		if (s->paddr < KVMKIT_ARM64_RAM_BASE ||
		    s->paddr - KVMKIT_ARM64_RAM_BASE > mem_size ||
		    s->memsz > mem_size - (s->paddr - KVMKIT_ARM64_RAM_BASE))
			return kvmk_err_param(
				op, "segment", "outside guest RAM (arm64 RAM starts at 0x80000000)",
				"%u: 0x%llx+0x%llx (RAM %llu MiB)", i, (unsigned long long)s->paddr,
				(unsigned long long)s->memsz, (unsigned long long)(mem_size >> 20));
	}
	if (img->entry & 3 || !kvmk_elf_in_segment(img, img->entry))
		return kvmk_err_format(op, "entry point 0x%llx is not an instruction of the image",
				       (unsigned long long)img->entry);
	return 0;
}

int kvmkit_boot_check_elf64(const void *buf, size_t len, uint64_t mem_size)
{
	struct kvmkit_elf_image img;
	int r = kvmkit_elf_parse(buf, len, &img);

	return r ? r : check_layout("kvmkit_boot_elf64", &img, mem_size);
}

int kvmkit_boot_elf64(struct kvmkit_vm *vm, const void *buf, size_t len)
{
	const char *op = "kvmkit_boot_elf64";
	unsigned int n = kvmkit_vm_config(vm)->vcpus;
	struct kvmkit_elf_image img;
	uint64_t x[4];
	int r;

	if (kvmkit_vm_vcpu_count(vm) != n)
		return kvmk_err_state("vm", "missing vCPUs", "all vCPUs created", "boot_elf64");
	r = kvmkit_elf_parse(buf, len, &img);
	if (!r)
		r = check_layout(op, &img, kvmkit_vm_ram_size(vm));
	if (!r)
		r = kvmkit_elf_load(vm, buf, len, &img, 0, 0);
	if (r)
		return r;
	x[0] = 0;
	x[1] = n;
	x[2] = kvmkit_vm_ram_size(vm);
	x[3] = KVMKIT_ARM64_RAM_BASE;
	r = kvmkit_arm64_vcpu_set_entry(kvmkit_vm_vcpu(vm, 0), img.entry, x, 4);
	if (r)
		return r;
	kvmk_debug("ELF64 loaded: %u segment(s) 0x%llx-0x%llx, entry 0x%llx", img.nsegs,
		   (unsigned long long)img.lowest, (unsigned long long)img.highest,
		   (unsigned long long)img.entry);
	return 0;
}
