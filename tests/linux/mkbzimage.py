#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes a small fake bzImage (protocol 2.15, like Debian's 6.1) for the
CLI's input tests: a valid setup header over 4 setup sectors and 64 KiB of
"kernel". FIELD=VALUE arguments overwrite header fields (offsets below).

usage: mkbzimage.py OUT [--kernel FLAT_BINARY] [version=0x20b] [init_size=N] ...
(--kernel: the protected-mode part, instead of 64 KiB of zeros)
"""
import struct
import sys

FIELDS = {  # name: (offset, struct format)
    'setup_sects': (0x1f1, 'B'), 'syssize': (0x1f4, 'I'),
    'boot_flag': (0x1fe, 'H'), 'version': (0x206, 'H'),
    'loadflags': (0x211, 'B'), 'initrd_addr_max': (0x22c, 'I'),
    'kernel_alignment': (0x230, 'I'), 'relocatable': (0x234, 'B'),
    'min_alignment': (0x235, 'B'), 'xloadflags': (0x236, 'H'),
    'cmdline_size': (0x238, 'I'), 'pref_address': (0x258, 'Q'),
    'init_size': (0x260, 'I'),
}
KSIZE = 0x10000


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    args = argv[2:]
    kernel = bytes(KSIZE)
    if args[:1] == ['--kernel']:
        with open(args[1], 'rb') as f:
            kernel = f.read()
        kernel += bytes(-len(kernel) % 16)
        args = args[2:]
    b = bytearray(5 * 512) + bytearray(kernel)
    b[0x200:0x202] = b'\xeb\x6a'
    b[0x202:0x206] = b'HdrS'
    vals = {'setup_sects': 4, 'syssize': len(kernel) // 16, 'boot_flag': 0xaa55,
            'version': 0x20f, 'loadflags': 1, 'initrd_addr_max': 0x7fffffff,
            'kernel_alignment': 0x200000, 'relocatable': 1, 'min_alignment': 21,
            'xloadflags': 0x7f, 'cmdline_size': 2047, 'pref_address': 0x1000000,
            'init_size': 0x200000}
    for arg in args:
        k, v = arg.split('=', 1)
        vals[k] = int(v, 0)
    for k, v in vals.items():
        off, fmt = FIELDS[k]
        struct.pack_into('<' + fmt, b, off, v)
    with open(argv[1], 'wb') as f:
        f.write(b)


if __name__ == '__main__':
    main(sys.argv)
