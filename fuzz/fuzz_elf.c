// SPDX-License-Identifier: MIT
/* libFuzzer target: ELF parsing and the ELF64 boot pre-checks must reject any
 * input cleanly, without reading outside it. */
#include <stddef.h>
#include <stdint.h>

#include <kvmkit/kvmkit.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kvmkit_elf_image img;

	if (kvmkit_elf_parse(data, size, &img) == 0) {
		/* Whatever parsed must describe bytes inside the input. */
		for (unsigned int i = 0; i < img.nsegs; i++)
			if (img.segs[i].offset + img.segs[i].filesz > size ||
			    img.segs[i].filesz > img.segs[i].memsz)
				__builtin_trap();
	}
	kvmkit_boot_check_elf64(data, size, 64 << 20);
	return 0;
}
