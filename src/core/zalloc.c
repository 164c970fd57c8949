// SPDX-License-Identifier: MIT
/*
 * Zeroed memory for large tables most of whose pages are never written (a
 * device's buffers, per-GSI arrays, route tables sized by what KVM takes).
 * calloc() clears what it hands out unless the memory is fresh from the
 * kernel, and glibc's heap rarely is, so every page of such a table would
 * be resident from the start: tens to hundreds of KiB per VM for nothing.
 * An anonymous mapping of its own is zero-filled on demand instead: a page
 * becomes resident when it is first written.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "core/internal.h"

/* Below this, a mapping's page rounding costs more than it saves. */
#define ZALLOC_MMAP_MIN (16u * 1024)

/* AddressSanitizer only sees heap overflows with its own allocator's
 * redzones: its builds keep calloc(). */
#if defined(__SANITIZE_ADDRESS__)
#define ZALLOC_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZALLOC_HEAP 1
#endif
#endif

static bool use_mmap(size_t size)
{
#ifdef ZALLOC_HEAP
	(void)size;
	return false;
#else
	return size >= ZALLOC_MMAP_MIN;
#endif
}

void *kvmk_zalloc(size_t size)
{
	void *p;

	if (!use_mmap(size))
		return calloc(1, size ? size : 1);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void kvmk_zfree(void *p, size_t size)
{
	if (!p)
		return;
	if (use_mmap(size))
		munmap(p, size);
	else
		free(p);
}
