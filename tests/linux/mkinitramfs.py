#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Builds the Linux boot tests' initramfs: a cpio "newc" archive (written
here, so that /dev/console needs no mknod and no root) holding a static
busybox, tests/linux/init as /init, files added into /lib (kernel
modules the init loads) and programs into /bin (static test helpers).

usage: mkinitramfs.py INIT_SCRIPT OUT.cpio [--busybox PATH] [--lib FILE]...
                      [--bin FILE]...
"""
import argparse
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
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument('init')
    ap.add_argument('out')
    ap.add_argument('--busybox', default=shutil.which('busybox') or '/bin/busybox')
    ap.add_argument('--lib', action='append', default=[])
    ap.add_argument('--bin', action='append', default=[])
    args = ap.parse_args(argv[1:])
    out_path = args.out
    with open(args.busybox, 'rb') as f:
        bb = f.read()
    if bb[:4] != b'\x7fELF':
        sys.exit('%s: not an ELF file' % args.busybox)
    # A static binary has no PT_INTERP: the string would name the loader.
    if b'ld-linux' in bb[:4096]:
        sys.exit('%s: dynamically linked; install busybox-static' % args.busybox)
    with open(args.init, 'rb') as f:
        init_data = f.read()
    items = [
        ('bin', stat.S_IFDIR | 0o755, b''),
        ('dev', stat.S_IFDIR | 0o755, b''),
        ('lib', stat.S_IFDIR | 0o755, b''),
        ('proc', stat.S_IFDIR | 0o755, b''),
        ('sys', stat.S_IFDIR | 0o755, b''),
        ('bin/busybox', stat.S_IFREG | 0o755, bb),
        ('bin/sh', stat.S_IFLNK | 0o777, b'busybox'),
        ('init', stat.S_IFREG | 0o755, init_data),
    ]
    for path in args.lib:
        with open(path, 'rb') as f:
            items.append(('lib/' + os.path.basename(path), stat.S_IFREG | 0o644, f.read()))
    for path in args.bin:
        with open(path, 'rb') as f:
            items.append(('bin/' + os.path.basename(path), stat.S_IFREG | 0o755, f.read()))
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
