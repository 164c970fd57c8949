#!/bin/sh
# SPDX-License-Identifier: MIT
# The Linux boot path on this machine's /dev/kvm (KVM-PVM included), with
# a stand-in kernel (fake_linux.S wrapped as a bzImage): kvmkit's 64-bit
# entry state and boot_params as the guest sees them, the RSDP, and the
# ACPI poweroff, reset register and i8042 reset ending the run (0, 118).
# The PVH stand-in (fake_pvh.S) checks the 32-bit PVH entry and
# hvm_start_info the same way.
# usage: test_fake_linux.sh KVMKIT FAKE_BZIMAGE FAKE_PVH
kvmkit=$1 bz=$2 pvh=$3
. "$(dirname "$0")/../cli/cli_lib.sh"

need_kvm
printf 'INRD' >"$tmp/rd"
head -c 4092 /dev/zero >>"$tmp/rd"
printf 'XXXX' >"$tmp/bad.rd"
head -c 4092 /dev/zero >>"$tmp/bad.rd"

# quiet STATUS -- COMMAND...: expect STATUS, and nothing on stderr (the
# guest's verdict is its exit status; kvmkit has nothing to say).
quiet() {
	st=$1
	shift
	expect "$st" "" "$@"
	if [ -s "$tmp/err" ]; then bad "$*: stderr should be empty"; fi
}
run() { "$kvmkit" run --kernel "$bz" --mem 512M --timeout 60 "$@"; }
quiet 0 -- run --initrd "$tmp/rd" --append "p console=ttyS0"
quiet 0 -- run --initrd "$tmp/rd" --append "p" --vcpus 2
quiet 0 -- run --initrd "$tmp/rd" --append "p" --vcpus 2 --irqchip split
expect 118 "guest reset: ACPI reset register" -- run --initrd "$tmp/rd" --append "r"
expect 118 "guest reset: i8042 reset" -- run --initrd "$tmp/rd" --append "k" --irqchip split
# The guest's own checks can fail: an initrd without its magic is check 7,
# an unknown command letter check 9 (isa-debug-exit: (n << 1) | 1).
quiet 15 -- run --initrd "$tmp/bad.rd" --append "p"
quiet 19 -- run --initrd "$tmp/rd" --append "x"
pvh() { "$kvmkit" run --kernel "$pvh" --mem 512M --timeout 60 "$@"; }
quiet 0 -- pvh --initrd "$tmp/rd" --append "p"
quiet 0 -- pvh --initrd "$tmp/rd" --append "p" --vcpus 2 --irqchip split
quiet 9 -- pvh --initrd "$tmp/bad.rd" --append "p"
quiet 15 -- pvh --initrd "$tmp/rd" --append "x"
finish
