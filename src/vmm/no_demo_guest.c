// SPDX-License-Identifier: MIT
/* Architectures without a demo guest yet: an empty image (kvmkit run needs --kernel). */
const unsigned char kvmkit_demo_guest_elf[1];
const unsigned long kvmkit_demo_guest_elf_len;
