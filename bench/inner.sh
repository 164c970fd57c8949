#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the benchmarks on a machine with /dev/kvm (inside the emulated x86
# host, or directly) and prints raw INFO/RESULT lines for bench/summarize.py.
# bench/run.sh calls it; it needs nothing but a POSIX shell.
#
# usage: inner.sh BENCH_DIR GUEST_DIR KVMKIT REPS ITERS [QEMU BOOTROM [IRQ_M]]
#   BENCH_DIR  directory holding the bench-* programs
#   GUEST_DIR  directory holding exits_bench.elf, hello.elf, mb_hello.elf and
#              irq_lab.elf
#   KVMKIT     the kvmkit CLI
#   REPS       repetitions of every measurement
#   ITERS      MMIO and PIO writes per exits run (N)
#   QEMU       qemu-system-x86_64 for the start-up baseline (optional)
#   BOOTROM    the stand-in firmware QEMU boots the guest with
#   IRQ_M      interrupts per path per interrupt-rate run (default 1000)
# Env: BENCH_QEMU_MACHINES  QEMU machine types to start (default microvm;
#      "microvm pc" adds -M pc, which hung with this firmware under nested KVM)
#      BENCH_ONLY  run only these sections (words: micro exits startup irq;
#      default: all of them)
#      BENCH_STARTUP_REPS  repetitions of the kvmkit-vs-bare start-up pair
#      (default 31: a KVM stall makes that distribution bimodal)
#      BENCH_RT=1  run every measured program under SCHED_FIFO (chrt -f 20),
#      so that other load on a shared machine does not preempt it
set -u
bench=$1 guests=$2 kvmkit=$3 reps=$4 iters=$5 qemu=${6:-} bootrom=${7:-} irq_m=${8:-1000}
only=${BENCH_ONLY:-micro exits startup irq}
startup_reps=${BENCH_STARTUP_REPS:-31}
mem_mib=16
fails=0
machines=${BENCH_QEMU_MACHINES:-microvm}
# Every measurement is bounded: a hung VMM costs one ERROR, not the run.
limit=
command -v timeout >/dev/null 2>&1 && limit="timeout -k 5 120"
rt=
if [ "${BENCH_RT:-0}" = 1 ]; then
	if command -v chrt >/dev/null 2>&1 && chrt -f 20 true 2>/dev/null; then
		rt="chrt -f 20"
	else
		echo "ERROR BENCH_RT=1 but chrt -f does not work here"
		exit 1
	fi
fi

info() { echo "INFO $1=$2"; }
want() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }
run() {
	# One measurement; a failure is reported and counted, never fatal.
	# shellcheck disable=SC2086 # limit and rt are word lists
	out=$($limit $rt "$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep '^RESULT '
	if [ $rc -ne 0 ] || ! printf '%s\n' "$out" | grep -q '^RESULT '; then
		echo "ERROR rc=$rc: $*"
		printf '%s\n' "$out" | tail -5 | sed 's/^/ERROR |/'
		fails=$((fails + 1))
	fi
	return 0
}

[ -w /dev/kvm ] || { echo "ERROR /dev/kvm is not usable here"; exit 1; }

info kernel "$(uname -r | tr ' ' _)"
info cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1 | tr ' ' _)"
info cpus "$(grep -c ^processor /proc/cpuinfo)"
info kvm_module "$(for m in kvm_amd kvm_intel kvm_pvm; do [ -d /sys/module/$m ] && echo $m; done | head -1)"
info clocksource "$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
info thp "$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
info mem_mib $mem_mib
info iters "$iters"
info reps "$reps"
info irq_m "$irq_m"
info sections "$(echo "$only" | tr ' ' ,)"
info startup_reps "$startup_reps"
info loadavg_before "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)"
info rt "${rt:-none}"
[ -n "$qemu" ] && info qemu "$("$qemu" --version | head -1 | tr ' ' _)"

if want micro; then
	echo "# micro-benchmark (no KVM)" >&2
	run "$bench/bench-dispatch" 2000000
fi

if want exits; then
	echo "# exit round trip: $reps x (kvmkit, bare, bare-timed, kvmkit-run-once), N=$iters" >&2
	elf=$guests/exits_bench.elf
	# Warm-up, not recorded.
	"$bench/bench-exits-kvmkit" "$elf" 1000 >/dev/null 2>&1
	"$bench/bench-exits-bare" "$elf" 1000 >/dev/null 2>&1
	i=1
	while [ $i -le "$reps" ]; do
		# Alternate the order so neither variant always runs first.
		if [ $((i % 2)) -eq 1 ]; then
			run "$bench/bench-exits-kvmkit" "$elf" "$iters"
			run "$bench/bench-exits-bare" "$elf" "$iters"
		else
			run "$bench/bench-exits-bare" "$elf" "$iters"
			run "$bench/bench-exits-kvmkit" "$elf" "$iters"
		fi
		run "$bench/bench-exits-bare" --timed "$elf" "$iters"
		run "$bench/bench-exits-kvmkit" --run-once "$elf" "$iters"
		i=$((i + 1))
	done
fi

if want startup; then
	echo "# start-up: $reps x (kvmkit run, phases, qemu: $machines); $startup_reps x (kvmkit run, bare) on mb_hello" >&2
	hello=$guests/hello.elf
	mb=$guests/mb_hello.elf
	entry=0x100000
	qemu_common="-accel kvm -cpu host -m ${mem_mib}M -smp 1 -display none -nodefaults -no-reboot
	 -serial stdio -device isa-debug-exit,iobase=0x504,iosize=4 -device loader,file=$hello
	 -device loader,addr=0x9000,data=$entry,data-len=8 -device loader,addr=0x9008,data=1,data-len=8
	 -device loader,addr=0x9010,data=$((mem_mib << 20)),data-len=8"
	start_kvmkit() { run "$bench/bench-startup-exec" kvmkit "$kvmkit" run --kernel "$hello" --mem ${mem_mib}M; }
	start_phases() {
		run "$bench/bench-startup-exec" --echo phases "$bench/bench-startup-phases" "$hello" $mem_mib
		run "$bench/bench-startup-exec" --echo phases-mb "$bench/bench-startup-phases" "$mb" $mem_mib
	}
	# shellcheck disable=SC2086 # qemu_common is a word list
	start_qemu() { run "$bench/bench-startup-exec" "qemu-$1" "$qemu" -M "$1" -bios "$bootrom" $qemu_common; }
	# The four-instruction Multiboot payload, by kvmkit and by raw ioctls.
	start_kvmkit_mb() { run "$bench/bench-startup-exec" kvmkit-mb "$kvmkit" run --kernel "$mb" --mem ${mem_mib}M; }
	start_bare_mb() { run "$bench/bench-startup-exec" bare-mb "$bench/bench-startup-bare" "$mb" $mem_mib; }
	# The floor again with KVM's default PIT reinjection left on: no grace
	# period before vCPU 0's first KVM_RUN (see docs/BENCHMARKS.md).
	start_bare_mb_on() {
		run "$bench/bench-startup-exec" bare-mb-on "$bench/bench-startup-bare" --reinject on "$mb" $mem_mib
	}
	have_qemu=0
	[ -n "$qemu" ] && [ -x "$qemu" ] && [ -f "$bootrom" ] && have_qemu=1
	# Warm-up (page cache, first KVM use), not recorded.
	"$bench/bench-startup-exec" w "$kvmkit" run --kernel "$hello" --mem ${mem_mib}M >/dev/null 2>&1
	"$bench/bench-startup-exec" w "$bench/bench-startup-bare" "$mb" $mem_mib >/dev/null 2>&1
	# shellcheck disable=SC2086
	[ $have_qemu -eq 1 ] && $limit "$bench/bench-startup-exec" w "$qemu" -M microvm -bios "$bootrom" $qemu_common >/dev/null 2>&1
	n=$reps
	[ "$startup_reps" -gt "$n" ] && n=$startup_reps
	i=1
	while [ $i -le "$n" ]; do
		if [ $i -le "$startup_reps" ]; then
			if [ $((i % 2)) -eq 1 ]; then
				start_kvmkit_mb
				start_bare_mb
			else
				start_bare_mb
				start_kvmkit_mb
			fi
			start_bare_mb_on
		fi
		if [ $i -le "$reps" ]; then
			if [ $((i % 2)) -eq 1 ]; then
				start_kvmkit
				if [ $have_qemu -eq 1 ]; then for mt in $machines; do start_qemu "$mt"; done; fi
			else
				if [ $have_qemu -eq 1 ]; then for mt in $machines; do start_qemu "$mt"; done; fi
				start_kvmkit
			fi
			start_phases
		fi
		i=$((i + 1))
	done
fi

if want irq; then
	# Every path in one process, interleaved in blocks (see irq_rate.c). Both
	# the guest and this side spin, so the run wants two otherwise idle CPUs.
	echo "# interrupt rate: $reps x bench-irq-rate, M=$irq_m per path" >&2
	lab=$guests/irq_lab.elf
	# M interrupts on each of six paths: minutes when the CPUs are contended.
	command -v timeout >/dev/null 2>&1 && limit="timeout -k 5 900"
	"$bench/bench-irq-rate" "$lab" 100 >/dev/null 2>&1 # warm-up, not recorded
	i=1
	while [ $i -le "$reps" ]; do
		# Kernel and split irqchip, alternating which goes first.
		if [ $((i % 2)) -eq 1 ]; then
			run "$bench/bench-irq-rate" "$lab" "$irq_m"
			run "$bench/bench-irq-rate" --split "$lab" "$irq_m"
		else
			run "$bench/bench-irq-rate" --split "$lab" "$irq_m"
			run "$bench/bench-irq-rate" "$lab" "$irq_m"
		fi
		i=$((i + 1))
	done
fi
info loadavg_after "$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' /)"
echo "DONE failures=$fails"
[ $fails -eq 0 ]
