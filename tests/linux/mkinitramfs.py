#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Builds the Linux boot tests' initramfs: a cpio "newc" archive (written
here, so that /dev/console needs no mknod and no root) holding a static
busybox and tests/linux/init as /init.

usage: mkinitramfs.py INIT_SCRIPT OUT.cpio [BUSYBOX]
"""
import os
import shutil
import stat
import sys


def entry(out, ino, name, mode, data=b'', rmaj=0, rmin=0):
    name_b = name.encode() + b'\0'
    hdr = '070701' + ''.join('%08X' % v for v in (
        ino, mode, 0, 0, 1, 0, len(data), 0, 0, rmaj, rmin, len(name_b), 0))
    out.write(hdr.encode() + name_b)
    out.write(b'\0' * (-(110 + len(name_b)) % 4))
    out.write(data)
    out.write(b'\0' * (-len(data) % 4))


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__)
    init, out_path = argv[1], argv[2]
    busybox = argv[3] if len(argv) == 4 else (shutil.which('busybox') or '/bin/busybox')
    with open(busybox, 'rb') as f:
        bb = f.read()
    if bb[:4] != b'\x7fELF':
        sys.exit('%s: not an ELF file' % busybox)
    # A static binary has no PT_INTERP: the string would name the loader.
    if b'ld-linux' in bb[:4096]:
        sys.exit('%s: dynamically linked; install busybox-static' % busybox)
    with open(init, 'rb') as f:
        init_data = f.read()
    items = [
        ('bin', stat.S_IFDIR | 0o755, b''),
        ('dev', stat.S_IFDIR | 0o755, b''),
        ('proc', stat.S_IFDIR | 0o755, b''),
        ('sys', stat.S_IFDIR | 0o755, b''),
        ('bin/busybox', stat.S_IFREG | 0o755, bb),
        ('bin/sh', stat.S_IFLNK | 0o777, b'busybox'),
        ('init', stat.S_IFREG | 0o755, init_data),
    ]
    tmp = out_path + '.tmp'
    with open(tmp, 'wb') as out:
        ino = 1
        for name, mode, data in items:
            entry(out, ino, name, mode, data)
            ino += 1
        # The kernel opens /dev/console for init's stdio.
        entry(out, ino, 'dev/console', stat.S_IFCHR | 0o600, b'', 5, 1)
        entry(out, 0, 'TRAILER!!!', 0)
    os.replace(tmp, out_path)


if __name__ == '__main__':
    main(sys.argv)
