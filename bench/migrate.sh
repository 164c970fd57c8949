#!/bin/sh
# The live-migration rows of docs/BENCHMARKS.md section 7: bench-migrate
# (kvmkit, unix socket, a target in another process) and qemu_migrate.py
# (QEMU to "exec:cat > FILE", the baseline) for the same guest, memory
# sizes and dirty rates, one after the other in the same run.
# usage: bench/migrate.sh BUILD_DIR [REPS] [QEMU_ACCEL]   (from the source tree)
# Prints INFO lines, the per-repetition lines and the RESULT lines.
build=${1:?usage: migrate.sh BUILD_DIR [REPS] [QEMU_ACCEL]}
reps=${2:-5}
accel=${3:-kvm}
here=$(dirname "$0")
elf=$build/tests/guest/mig_loop.elf
rom=$build/bench/bootrom.bin
qemu=$(command -v qemu-system-x86_64)
rt=""
chrt -f 20 true 2>/dev/null && rt="chrt -f 20"

echo "INFO date $(date -u +%FT%TZ)"
echo "INFO kernel $(uname -r) cpus $(nproc) load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "INFO cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "INFO kvmkit $(git -C "$here" rev-parse --short HEAD 2>/dev/null) rt=${rt:-no}"
[ -n "$qemu" ] && echo "INFO qemu $("$qemu" --version | head -1) accel=$accel"
for mem in 256 1024; do
	r=$reps
	[ "$mem" -gt 256 ] && r=$(((reps + 1) / 2))
	for rate in 0 64 256; do
		echo "INFO load $(cut -d' ' -f1-3 /proc/loadavg)"
		$rt "$build/bench/bench-migrate" "$elf" "$mem" "$rate" "$r" 2>&1
		if [ -n "$qemu" ] && [ -f "$rom" ]; then
			$rt python3 "$here/qemu_migrate.py" "$qemu" "$rom" "$elf" "$mem" "$rate" "$r" \
				"$accel" 2>&1
		fi
	done
done
