#!/bin/sh
# SPDX-License-Identifier: MIT
# Bad Linux input to `kvmkit run`: refused with one "kvmkit:" line and
# status 2 before /dev/kvm is opened (no KVM needed).
# usage: test_cli_linux.sh KVMKIT SRCDIR
kvmkit=$1 src=$2
. "$src/../cli/cli_lib.sh"

mk() { python3 "$src/mkbzimage.py" "$@" || exit 1; }
mk "$tmp/bz"
mk "$tmp/old" version=0x20b
mk "$tmp/no64" xloadflags=0
mk "$tmp/huge" init_size=0x3f98000
mk "$tmp/trunc" syssize=0x2000
head -c 600 "$tmp/bz" >"$tmp/short"
head -c 4096 /dev/zero >"$tmp/zeros"
dd if=/dev/null of="$tmp/big.initrd" bs=1048576 seek=200 count=0 2>/dev/null
long=$(head -c 2100 /dev/zero | tr '\0' x)

expect 2 "^kvmkit: .*boot protocol 2.11 is too old: kvmkit needs 2.12" -- "$kvmkit" run --kernel "$tmp/old"
expect 2 "^kvmkit: .*xloadflags 0x0: no 64-bit entry point" -- "$kvmkit" run --kernel "$tmp/no64"
expect 2 "^kvmkit: .*syssize says" -- "$kvmkit" run --kernel "$tmp/trunc"
expect 2 "^kvmkit: .*too short for a setup header" -- "$kvmkit" run --kernel "$tmp/short"
expect 2 "^kvmkit: .*not a kernel" -- "$kvmkit" run --kernel "$tmp/zeros"
expect 2 "^kvmkit: .*the kernel does not fit in RAM" -- "$kvmkit" run --kernel "$tmp/huge" --mem 64M
expect 2 "^kvmkit: --initrd .*initrd too big" -- "$kvmkit" run --kernel "$tmp/bz" --mem 128M --initrd "$tmp/big.initrd"
expect 2 "^kvmkit: .*invalid cmdline '2100 bytes, the kernel takes at most 2047': command line too long" -- "$kvmkit" run --kernel "$tmp/bz" --append "$long"
expect 2 "^kvmkit: .*a Linux guest needs an irqchip" -- "$kvmkit" run --kernel "$tmp/bz" --irqchip none
expect 2 "No such file" -- "$kvmkit" run --kernel "$tmp/bz" --initrd "$tmp/missing"
finish
