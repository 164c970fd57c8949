#!/bin/sh
# SPDX-License-Identifier: MIT
# Snapshot/restore beside QEMU's own migration to a file, in one run:
# bench-snapshot (kvmkit) and qemu_snapshot.py (QEMU -M microvm, the same
# snap_loop guest through the kit's stand-in firmware) for each memory
# size, one after the other. QEMU uses KVM when it can start a VM with
# -accel kvm here, else TCG, and every QEMU line says which (accel=...).
# usage: bench/snapshot_qemu.sh BUILD_DIR REPS [MEM_MIB...]   (default 256 1024 4096)
# Raw INFO/RESULT lines on stdout (docs/BENCHMARKS.md section 6).
set -e
build=$1 reps=$2
[ -n "$build" ] && [ -n "$reps" ] || { echo "usage: $0 BUILD_DIR REPS [MEM_MIB...]" >&2; exit 2; }
shift 2
mems=${*:-256 1024 4096}
here=$(dirname "$0")
qemu=${QEMU:-qemu-system-x86_64}
bootrom=$build/bench/bootrom.bin
guest=$build/tests/guest/snap_loop.elf

accel=tcg
if printf '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n' |
	timeout 20 "$qemu" -accel kvm -M microvm -display none -nodefaults -S -qmp stdio \
		>/dev/null 2>&1; then
	accel=kvm
fi
echo "INFO date $(date -u +%Y-%m-%dT%H:%MZ)"
echo "INFO kernel $(uname -r)"
echo "INFO cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
echo "INFO mem_total_kib $(awk '/MemTotal/ {print $2}' /proc/meminfo)"
echo "INFO thp $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
echo "INFO kvm_pvm $([ -e /sys/module/kvm_pvm ] && echo yes || echo no)"
echo "INFO qemu $("$qemu" --version | head -1) accel=$accel"
echo "INFO kvmkit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "INFO tmpdir ${TMPDIR:-/var/tmp} $(df -h "${TMPDIR:-/var/tmp}" | awk 'NR == 2 {print $1}')"
echo "INFO load $(cut -d' ' -f1-3 /proc/loadavg)"
for m in $mems; do
	"$build/bench/bench-snapshot" "$guest" "$m" "$reps"
	python3 "$here/qemu_snapshot.py" --accel $accel "$qemu" "$bootrom" "$guest" "$m" "$reps"
	echo "INFO load $(cut -d' ' -f1-3 /proc/loadavg)"
done
