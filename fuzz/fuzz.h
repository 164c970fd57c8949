/* SPDX-License-Identifier: MIT */
/* Shared by the libFuzzer targets: the entry point and an invariant check
 * that traps (libFuzzer reports a trap as a crash with its input). */
#ifndef KVMKIT_FUZZ_H
#define KVMKIT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                          \
	do {                              \
		if (!(c))                 \
			__builtin_trap(); \
	} while (0)

#endif
