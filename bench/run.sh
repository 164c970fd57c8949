#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds kvmkit's benchmarks and runs them where KVM is: directly on
# /dev/kvm when this machine has it, and inside the emulated x86 host
# (tests/hosts/kvmkit-host: QEMU TCG + a Debian kernel with KVM). Prints a
# results table and writes results/<where>.{txt,json,csv,log}.
#
# usage: bench/run.sh [--build DIR] [--reps R] [--iters N] [--where WHERE]
#                     [--out DIR] [--no-qemu] [--irq-m M] [--only SECTIONS]
#                     [--startup-reps S] [--rt]
#   --build DIR    meson build directory (default build-bench; configured
#                  with -Dbench=true if it does not exist)
#   --reps R       repetitions of every measurement (default 11)
#   --iters N      MMIO and PIO writes per exits run (default 20000)
#   --where WHERE  local, host or auto (default auto: local if /dev/kvm is
#                  usable, and the emulated host whenever it can run)
#   --out DIR      where results go (default bench/results)
#   --no-qemu      skip the QEMU start-up baseline
#   --irq-m M      interrupts per path per interrupt-rate run (default 1000)
#   --only LIST    run only these sections, e.g. "irq" or "exits startup"
#                  (of: micro exits startup irq); results then go to
#                  <where>-<sections>.* so the full run's files are kept
#   --startup-reps S  repetitions of the kvmkit-vs-bare start-up pair
#                  (default 31)
#   --rt           run every measured program under SCHED_FIFO (chrt -f 20):
#                  on a shared machine, other load then cannot preempt it
# Env: KVMKIT_HOSTS_CACHE (the emulated host's cache), QEMU (the QEMU used as
# the start-up baseline; default qemu-system-x86_64 from PATH),
# BENCH_QEMU_MACHINES (QEMU machine types, default microvm).
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build-bench
reps=11
iters=20000
where=auto
out=$src/bench/results
use_qemu=1
irq_m=1000
only=

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$(realpath -m "$2"); shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--iters) iters=$2; shift 2 ;;
	--where) where=$2; shift 2 ;;
	--out) out=$(realpath -m "$2"); shift 2 ;;
	--no-qemu) use_qemu=0; shift ;;
	--irq-m) irq_m=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--startup-reps) export BENCH_STARTUP_REPS="$2"; shift 2 ;;
	--rt) export BENCH_RT=1; shift ;;
	-h|--help) sed -n '3,/^[^#]/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
	*) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
case $where in local|host|auto) ;; *) echo "run.sh: --where: local, host or auto" >&2; exit 2 ;; esac
for sec in $only; do
	case $sec in micro|exits|startup|irq) ;; *) echo "run.sh: --only: unknown section '$sec'" >&2; exit 2 ;; esac
done
# Results of a partial run get their own names: host-irq.*, local-irq.* ...
suffix=
if [ -n "$only" ]; then
	suffix=-$(echo "$only" | tr ' ' -)
	export BENCH_ONLY="$only"
fi

echo "== building in $build" >&2
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$src" -Dbench=true >/dev/null
else
	meson configure "$build" -Dbench=true >/dev/null
fi
ninja -C "$build" >/dev/null

benchdir=$build/bench
guests=$build/tests/guest
kvmkit=$build/cli/kvmkit
bootrom=$benchdir/bootrom.bin
for f in "$benchdir/bench-exits-kvmkit" "$benchdir/bench-irq-rate" "$benchdir/bench-startup-bare" \
	"$guests/exits_bench.elf" "$guests/hello.elf" "$guests/mb_hello.elf" "$guests/irq_lab.elf" \
	"$kvmkit"; do
	[ -e "$f" ] || { echo "run.sh: $f was not built (x86_64 guests need an x86_64 build)" >&2; exit 1; }
done
qemu=
if [ $use_qemu -eq 1 ]; then
	qemu=$(command -v "${QEMU:-qemu-system-x86_64}" || true)
	[ -n "$qemu" ] || echo "run.sh: no QEMU found; skipping the QEMU baseline" >&2
fi
mkdir -p "$out"

ran=0
status=0
summarize() {
	python3 "$src/bench/summarize.py" --where "$1" --log "$out/$1$suffix.log" \
		--json "$out/$1$suffix.json" --csv "$out/$1$suffix.csv" >"$out/$1$suffix.txt" || status=1
	cat "$out/$1$suffix.txt"
	ran=$((ran + 1))
}

if [ "$where" != host ] && [ -w /dev/kvm ]; then
	echo "== running on this machine's /dev/kvm" >&2
	sh "$src/bench/inner.sh" "$benchdir" "$guests" "$kvmkit" "$reps" "$iters" \
		"$qemu" "$bootrom" "$irq_m" >"$out/local$suffix.log" || status=1
	summarize local
elif [ "$where" = local ]; then
	echo "run.sh: --where local: /dev/kvm is not usable here" >&2
	exit 1
fi

if [ "$where" != local ]; then
	host=$src/tests/hosts/kvmkit-host
	set -- --arch x86_64 --mem 6G --smp 2 --timeout 3000 \
		--payload "$benchdir" --payload "$guests" --payload "$kvmkit" \
		--payload "$src/bench/inner.sh"
	if [ -n "${BENCH_QEMU_MACHINES:-}" ]; then
		set -- "$@" --env BENCH_QEMU_MACHINES
	fi
	if [ -n "$only" ]; then
		set -- "$@" --env BENCH_ONLY
	fi
	# Passed on only if set (kvmkit-host skips unset names).
	set -- "$@" --env BENCH_STARTUP_REPS --env BENCH_RT
	if [ -n "$qemu" ]; then
		# QEMU brings its shared libraries. With -bios it reads no firmware
		# except, on -M pc with KVM, the vAPIC option ROM.
		set -- "$@" --payload "$qemu"
		for f in /usr/share/qemu/kvmvapic.bin; do
			if [ -f "$f" ]; then
				set -- "$@" --payload "$f"
			fi
		done
	fi
	echo "== running inside the emulated x86 host (this takes minutes)" >&2
	# The emulated host shares this machine's CPUs: record how busy it was.
	log=$out/host$suffix.log
	echo "INFO outer_loadavg_before=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)" >"$log"
	if "$host" "$@" -- sh "$src/bench/inner.sh" "$benchdir" "$guests" "$kvmkit" \
		"$reps" "$iters" "$qemu" "$bootrom" "$irq_m" >>"$log"; then
		echo "INFO outer_loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)" >>"$log"
	else
		rc=$?
		echo "run.sh: the emulated host run failed ($rc); see $log" >&2
		status=1
	fi
	if grep -q '^RESULT ' "$log"; then
		summarize host
	fi
fi

[ $ran -gt 0 ] || { echo "run.sh: nothing ran" >&2; exit 1; }
exit $status
