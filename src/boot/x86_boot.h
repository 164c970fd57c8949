/* SPDX-License-Identifier: MIT */
/* Internal x86 boot helpers shared by the ELF64 and Multiboot loaders. */
#ifndef KVMKIT_BOOT_X86_BOOT_H
#define KVMKIT_BOOT_X86_BOOT_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

/* A flat 4 GiB segment: 64-bit code if @long_code, else 32-bit. */
void kvmk_x86_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool long_code);

#endif
