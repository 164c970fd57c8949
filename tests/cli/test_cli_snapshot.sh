#!/bin/sh
# Snapshot and restore through the CLI, each VM in its own process:
# `kvmkit run --api` runs snap_loop (two vCPUs, split irqchip), `kvmkit
# snapshot` saves it and `kvmkit stop` ends that process; `kvmkit run
# --restore DIR` continues it in a new one (the counters go on from the
# saved values, never booted again), and a copy of the snapshot whose
# memory file carries snap_loop's FINISH command runs to the guest's own
# verdict. Then the refusals: a configuration that differs, a corrupted
# state file, a missing directory.
# Usage: test_cli_snapshot.sh KVMKIT GUEST_DIR
kvmkit=$1 guests=$2
. "$(dirname "$0")/cli_lib.sh"
need_kvm

# snap_loop's blocks (tests/guest/include/guest_abi.h): GPA = offset in the
# memory file for RAM below the MMIO hole.
snap_base=$((0x200000 + 0x30000))
cmd_off=$((snap_base + 4))
cpu0=$((snap_base + 0x100))
cpu1=$((snap_base + 0x140))

# snap_until SOCK DIR [--paused]: snapshots until both vCPUs have counted
# (the guest may not have reached its loop yet), at most 50 tries.
snap_until() {
	i=0
	while [ $i -lt 50 ]; do
		rm -rf "$2"
		"$kvmkit" snapshot "$1" "$2" $3 >"$tmp/out" 2>"$tmp/err" || break
		[ "$(u64 "$2/memory" $cpu0)" -gt 0 ] && [ "$(u64 "$2/memory" $cpu1)" -gt 0 ] &&
			return 0
		sleep 0.1
		i=$((i + 1))
	done
	sed 's/^/  /' "$tmp/err"
	return 1
}

s1=$tmp/s1
start_run "$s1" --kernel "$guests/snap_loop.elf" --vcpus 2 --irqchip split --api "$s1" \
	--timeout 120
if snap_until "$s1" "$tmp/d1"; then ok "kvmkit snapshot"; else bad "kvmkit snapshot"; fi
grep -q "^state: running$" "$tmp/out" && ok "resumed after the snapshot" ||
	bad "state after snapshot: $(cat "$tmp/out")"
expect 1 "^kvmkit: snapshot: .*not empty" -- "$kvmkit" snapshot "$s1" "$tmp/d1"
expect 0 "" -- "$kvmkit" stop "$s1"
wait $run
rc=$?
[ $rc -eq 0 ] && ok "first run exits 0 after stop" || bad "first run: exit $rc"
c0=$(u64 "$tmp/d1/memory" $cpu0)
c1=$(u64 "$tmp/d1/memory" $cpu1)

# A new process continues it; its own snapshot shows the counters ahead.
s2=$tmp/s2
start_run "$s2" --restore "$tmp/d1" --api "$s2" --timeout 120
sleep 0.5
expect 0 "" -- "$kvmkit" snapshot "$s2" "$tmp/d2" --paused
grep -q "^state: paused$" "$tmp/out" && ok "--paused leaves it paused" ||
	bad "state after snapshot --paused: $(cat "$tmp/out")"
n0=$(u64 "$tmp/d2/memory" $cpu0)
n1=$(u64 "$tmp/d2/memory" $cpu1)
if [ "$n0" -gt "$c0" ] && [ "$n1" -gt "$c1" ]; then
	ok "counters went on: $c0 -> $n0, $c1 -> $n1"
else
	bad "counters after restore: $c0 -> $n0, $c1 -> $n1"
fi
b0=$(u32 "$tmp/d2/memory" $((cpu0 + 0x28)))
b1=$(u32 "$tmp/d2/memory" $((cpu1 + 0x28)))
[ "$b0" = 1 ] && [ "$b1" = 1 ] && ok "never booted again" || bad "boots: $b0 $b1"
expect 0 "" -- "$kvmkit" stop "$s2"
wait $run
rc=$?
[ $rc -eq 0 ] && ! [ -s "$tmp/run.err" ] && ok "restored run exits 0 after stop" ||
	{ bad "restored run: exit $rc"; sed 's/^/  stderr: /' "$tmp/run.err"; }

# The guest's own verdict: FINISH (2) in the memory file's command word.
mkdir "$tmp/d3"
cp "$tmp/d1/state" "$tmp/d1/memory" "$tmp/d3/"
poke "$tmp/d3/memory" $cmd_off 002
expect 0 "" -- "$kvmkit" run --restore "$tmp/d3" --vcpus 2 --irqchip split --timeout 60

# Refusals: one line, exit 2, nothing run.
expect 2 "^kvmkit: --restore: .*vcpus.*3 here, 2 in the snapshot" -- \
	"$kvmkit" run --restore "$tmp/d1" --vcpus 3
expect 2 "^kvmkit: --restore: .*irqchip.*kernel here, split in the snapshot" -- \
	"$kvmkit" run --restore "$tmp/d1" --irqchip kernel
expect 2 "^kvmkit: --restore: the snapshot holds the guest" -- \
	"$kvmkit" run --restore "$tmp/d1" --kernel "$guests/snap_loop.elf"
poke "$tmp/d3/state" 100 377
expect 2 "^kvmkit: --restore: .*CRC-32" -- "$kvmkit" run --restore "$tmp/d3"
expect 2 "^kvmkit: --restore: .*No such file" -- "$kvmkit" run --restore "$tmp/none"
finish
