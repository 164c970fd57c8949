# SPDX-License-Identifier: MIT
# Sourced by the Linux benchmarks (bench/linux_boot.sh, bench/linux_io.sh):
# sets $kernel to the Debian kernel the emulated x86 host boots (cached by
# tests/hosts/kvmkit-host) and $qemu to the QEMU that both benchmarks
# compare kvmkit with, or exits with one line saying what is missing.
cache=${KVMKIT_HOSTS_CACHE:-$HOME/.cache/kvmkit-hosts}
kernel=$(ls "$cache"/x86_64/kernel/*/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$kernel" ] || { echo "no Debian kernel in $cache (run tests/hosts/kvmkit-host once)"; exit 1; }
qemu=$(command -v qemu-system-x86_64) || { echo "no qemu-system-x86_64"; exit 1; }
