#!/bin/sh
# Live migration through the CLI, each VM in its own process: `kvmkit run
# --api` runs mig_loop (two vCPUs, split irqchip; the guest rewrites a
# 16 MiB pattern at about 50 MiB/s per vCPU and checks each page before it
# rewrites it), `kvmkit run --incoming unix:PATH` waits, and `kvmkit migrate`
# moves the guest across: the source exits 0 saying where it went, the
# target runs it with the source's configuration, and a snapshot of the
# target shows the guest went on without one page found wrong; the same
# snapshot, told to finish, runs to the guest's own verdict (its checksum
# and pattern checks). Then the refusals: a target of another
# configuration (the source runs on), a target killed while it waits (its
# socket file goes), a target given up by --incoming-timeout, bad
# addresses, conflicting options.
# Usage: test_cli_migrate.sh KVMKIT GUEST_DIR
kvmkit=$1 guests=$2
. "$(dirname "$0")/cli_lib.sh"
need_kvm

# mig_loop's blocks (tests/guest/include/mig_abi.h): GPA = offset in a
# snapshot's memory file.
mig_base=$((0x200000 + 0x40000))
cmd_off=$((mig_base + 0x10))
cpu0=$((mig_base + 0x100))
cpu1=$((mig_base + 0x140))

s1=$tmp/s1 s2=$tmp/s2 in=$tmp/in
"$kvmkit" run --kernel "$guests/mig_loop.elf" --vcpus 2 --irqchip split --api "$s1" \
	--timeout 120 </dev/null >"$tmp/src.out" 2>"$tmp/src.err" &
src=$!
"$kvmkit" run --incoming "unix:$in" --api "$s2" --timeout 120 \
	</dev/null >"$tmp/dst.out" 2>"$tmp/dst.err" &
dst=$!
wait_file "$s1"
wait_file "$in"
# Let the guest fill its area once (pass 1 runs flat out: milliseconds).
sleep 0.5
expect 0 "" -- "$kvmkit" migrate "$s1" --to "unix:$in"
grep -q "^migrated to unix:$in: downtime [0-9]* us" "$tmp/out" && ok "migrate: the stats" ||
	bad "migrate printed: $(cat "$tmp/out")"
grep -q "^state: stopped$" "$tmp/out" && ok "migrate: the source stopped" ||
	bad "migrate printed: $(cat "$tmp/out")"
wait $src
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/src.err")" -eq 1 ] &&
	grep -q "^kvmkit: the VM migrated to unix:$in; it runs there now$" "$tmp/src.err"; then
	ok "the source exits 0 saying where the VM went"
else
	bad "source: exit $rc"; sed 's/^/  stderr: /' "$tmp/src.err"
fi
[ -e "$in" ] && bad "the incoming socket was left behind" || ok "incoming socket removed"

# The target runs the guest with the source's configuration.
wait_file "$s2"
expect 0 "" -- "$kvmkit" query "$s2"
grep -q "^state: running$" "$tmp/out" && grep -q "^vcpus: 2$" "$tmp/out" &&
	grep -q "^irqchip: split$" "$tmp/out" && ok "target: running, 2 vCPUs, split irqchip" ||
	bad "target query: $(cat "$tmp/out")"
sleep 0.3
expect 0 "" -- "$kvmkit" snapshot "$s2" "$tmp/d1" --paused
expect 0 "" -- "$kvmkit" stop "$s2"
wait $dst
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/dst.err")" -eq 1 ] &&
	grep -q "^kvmkit: --incoming: waiting for a source on unix:$in$" "$tmp/dst.err"; then
	ok "target exits 0 after stop"
else
	bad "target: exit $rc"; sed 's/^/  stderr: /' "$tmp/dst.err"
fi
p0=$(u64 "$tmp/d1/memory" $cpu0) p1=$(u64 "$tmp/d1/memory" $cpu1)
e0=$(u32 "$tmp/d1/memory" $((cpu0 + 0x18))) e1=$(u32 "$tmp/d1/memory" $((cpu1 + 0x18)))
t0=$(u64 "$tmp/d1/memory" $((cpu0 + 0x10)))
if [ "$p0" -ge 2 ] && [ "$p1" -ge 2 ] && [ "$e0" = 0 ] && [ "$e1" = 0 ] && [ "$t0" -gt 0 ]; then
	ok "target: passes $p0 $p1, no page found wrong, $t0 ticks"
else
	bad "target memory: passes $p0 $p1, errors $e0 $e1, ticks $t0"
fi
# The guest's own verdict: FINISH in its command word.
poke "$tmp/d1/memory" $cmd_off 001
expect 0 "" -- "$kvmkit" run --restore "$tmp/d1" --timeout 60

# A target of another configuration refuses; the source runs on.
"$kvmkit" run --kernel "$guests/mig_loop.elf" --vcpus 2 --api "$s1" --timeout 120 \
	</dev/null >"$tmp/src.out" 2>"$tmp/src.err" &
src=$!
"$kvmkit" run --incoming "unix:$in" --vcpus 1 </dev/null >"$tmp/dst.out" 2>"$tmp/dst.err" &
dst=$!
wait_file "$s1"
wait_file "$in"
expect 1 "^kvmkit: migrate: .*refused: invalid vcpus '1 here, 2 from the source'" -- \
	"$kvmkit" migrate "$s1" --to "unix:$in"
wait $dst
rc=$?
if [ $rc -eq 2 ] && grep -q "^kvmkit: --incoming: .*vcpus '1 here, 2 from the source'" \
	"$tmp/dst.err"; then ok "target refuses, exit 2"; else
	bad "refusing target: exit $rc"; sed 's/^/  stderr: /' "$tmp/dst.err"; fi
expect 0 "" -- "$kvmkit" query "$s1"
grep -q "^state: running$" "$tmp/out" && ok "the source runs on" || bad "source: $(cat "$tmp/out")"
expect 0 "" -- "$kvmkit" stop "$s1"
wait $src
rc=$?
[ $rc -eq 0 ] && ! [ -s "$tmp/src.err" ] && ok "source exits 0 after stop" ||
	{ bad "source: exit $rc"; sed 's/^/  stderr: /' "$tmp/src.err"; }

# A target killed while it waits leaves no socket file behind.
"$kvmkit" run --incoming "unix:$tmp/in3" </dev/null >/dev/null 2>&1 &
dst=$!
wait_file "$tmp/in3"
kill -TERM $dst
wait $dst
rc=$?
[ $rc -eq 143 ] && ! [ -e "$tmp/in3" ] && ok "SIGTERM while waiting: socket removed" ||
	bad "SIGTERM while waiting: exit $rc, socket $(ls "$tmp/in3" 2>&1)"

# Bad input: one line, exit 2, nothing run.
# --incoming-timeout: no source within it ends the wait with 124, its
# reason on the last line, the socket file removed.
"$kvmkit" run --incoming "unix:$tmp/late" --incoming-timeout 1 >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 124 ] && [ "$(wc -l <"$tmp/err")" -eq 2 ] &&
	tail -n 1 "$tmp/err" | grep -q "no source connected within 1000 ms" && ! [ -e "$tmp/late" ]; then
	ok "--incoming-timeout 1: gave up with 124, the socket removed"
else
	bad "--incoming-timeout 1: exit $rc"; sed 's/^/  stderr: /' "$tmp/err"
fi
expect 2 "^kvmkit: --incoming-timeout: invalid seconds '0'" -- \
	"$kvmkit" run --incoming "unix:$tmp/late" --incoming-timeout 0
expect 2 "^kvmkit: --incoming 'tcp:x': tcp: needs HOST:PORT" -- "$kvmkit" run --incoming tcp:x
expect 2 "^kvmkit: --incoming 'unix:': unix: needs a path" -- "$kvmkit" run --incoming unix:
expect 2 "^kvmkit: --incoming: the source sends the guest" -- \
	"$kvmkit" run --incoming "unix:$in" --kernel "$guests/mig_loop.elf"
echo keep >"$tmp/file"
expect 2 "^kvmkit: --incoming: .*exists already" -- "$kvmkit" run --incoming "unix:$tmp/file"
finish
