#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the initramfs of the arm64 Linux boot test: a static busybox, a
/dev/console node (without it the kernel gives init no console), the
kernel modules given (loaded by /init in that order: Debian builds the
virtio-mmio transport and its drivers as modules) and an /init that reports
what the test checks, then powers off (PSCI SYSTEM_OFF). With virtio
devices, /init moves its output to /dev/hvc0 if there is a virtio console,
reads the disk's pattern (32 bytes at 1 MiB of /dev/vda) and
16 bytes of /dev/hwrng.

usage: mk_initramfs.py BUSYBOX OUTPUT [MODULE.ko]...
"""
import os
import stat
import sys

INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
for m in /modules/*.ko; do
	[ -e "$m" ] && /bin/busybox insmod "$m" && echo "KVMKIT-INSMOD ${m##*/}"
done
/bin/busybox mount -t devtmpfs dev /dev
n=0
while [ ! -b /dev/vda ] && [ $n -lt 5 ] && [ -d /modules ]; do
	/bin/busybox sleep 1; n=$((n + 1))
done
# With a virtio console (kvmkit run --console virtio) the terminal is on
# it, not on the UART: the rest goes there.
hvc=0
if [ -c /dev/hvc0 ]; then
	exec >/dev/hvc0 2>&1
	hvc=1
	echo KVMKIT-HVC0
fi
echo "KVMKIT-LINUX-INIT cpus=$(/bin/busybox grep -c ^processor /proc/cpuinfo)"
if [ -b /dev/vda ]; then
	echo "KVMKIT-VDA [$(/bin/busybox dd if=/dev/vda bs=32 skip=32768 count=1 2>/dev/null)]"
fi
if [ -c /dev/hwrng ]; then
	echo "KVMKIT-HWRNG $(/bin/busybox dd if=/dev/hwrng bs=16 count=1 2>/dev/null | /bin/busybox wc -c) bytes"
fi
echo "KVMKIT-FEATURES [$(/bin/busybox grep -m 1 ^Features /proc/cpuinfo)]"
/bin/busybox cat /proc/interrupts
echo KVMKIT-LINUX-DONE
# The virtio console's queue is served by kvmkit's device thread: a moment
# for it before the power goes.
[ $hvc = 1 ] && /bin/busybox sleep 1
/bin/busybox poweroff -f
"""


def entry(name, mode, data=b"", rdev=(0, 0), ino=[0]):
    ino[0] += 1
    hdr = "070701" + "".join("%08x" % v for v in (
        ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
        len(name) + 1, 0))
    out = hdr.encode() + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        busybox = f.read()
    blob = b""
    for d in ("bin", "dev", "proc", "sys"):
        blob += entry(d, stat.S_IFDIR | 0o755)
    blob += entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    blob += entry("bin/busybox", stat.S_IFREG | 0o755, busybox)
    if sys.argv[3:]:
        blob += entry("modules", stat.S_IFDIR | 0o755)
    # Numbered: /init loads them in the order given.
    for i, path in enumerate(sys.argv[3:]):
        with open(path, "rb") as f:
            blob += entry("modules/%02d-%s" % (i, os.path.basename(path)),
                          stat.S_IFREG | 0o644, f.read())
    blob += entry("init", stat.S_IFREG | 0o755, INIT.encode())
    blob += entry("TRAILER!!!", 0)
    blob += b"\0" * (-len(blob) % 512)
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, sys.argv[2])


main()
