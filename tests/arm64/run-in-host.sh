#!/bin/sh
# Inside the emulated arm64 host: every arm64 guest test, then the CLI on
# arm64. usage: run-in-host.sh TEST_BIN KVMKIT GUEST_DIR EXPECTED_GIC_VERSION
set -u
test_bin=$1 kvmkit=$2 guests=$3 gic=$4
fail=0

"$test_bin" --expect-gic "$gic" "$guests" || fail=1

out=$("$kvmkit" run --kernel "$guests/hello.elf" --timeout 60 2>&1)
st=$?
case "$out" in
*"hello from vCPU 0 of 1"*) [ $st -eq 0 ] && echo "ok   cli-run-hello" ;;
esac
if [ $st -ne 0 ] || ! echo "$out" | grep -q "hello from vCPU 0 of 1"; then
	echo "FAIL cli-run-hello: status $st: $out"
	fail=1
fi

out=$("$kvmkit" run --kernel "$guests/hello.elf" --cpu +x2apic 2>&1)
st=$?
if [ $st -eq 2 ] && [ "$out" = "kvmkit: run: --cpu is x86_64-only (this kvmkit is built for arm64)" ]; then
	echo "ok   cli-x86-only-option"
else
	echo "FAIL cli-x86-only-option: status $st: $out"
	fail=1
fi

out=$("$kvmkit" run --kernel "$guests/hello.elf" --append "x" 2>&1)
st=$?
if [ $st -eq 2 ] && echo "$out" | grep -q "needs a Linux Image"; then
	echo "ok   cli-append-needs-image"
else
	echo "FAIL cli-append-needs-image: status $st: $out"
	fail=1
fi

out=$("$kvmkit" run 2>&1)
st=$?
if [ $st -eq 2 ] && [ "$out" = "kvmkit: run: no demo guest on this architecture: give --kernel FILE" ]; then
	echo "ok   cli-no-demo-guest"
else
	echo "FAIL cli-no-demo-guest: status $st: $out"
	fail=1
fi

# The control API on arm64: the lab guest serves its mailbox until stopped.
sock=/tmp/kvmkit-arm64-api.sock
"$kvmkit" run --kernel "$guests/lab.elf" --api "$sock" --timeout 60 >/tmp/kvmkit-api-run.out 2>&1 &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
q=$("$kvmkit" query "$sock" 2>&1)
"$kvmkit" stop "$sock" >/dev/null 2>&1
wait $pid
st=$?
if [ $st -eq 0 ] && echo "$q" | grep -q "running" && echo "$q" | grep -q "kernel"; then
	echo "ok   cli-api-query-stop"
else
	echo "FAIL cli-api-query-stop: run status $st; query: $q; run: $(cat /tmp/kvmkit-api-run.out)"
	fail=1
fi

# kvmkit snapshot and run --restore.
snap=/tmp/kvmkit-arm64-snap
rm -rf "$snap"
"$kvmkit" run --kernel "$guests/lab.elf" --api "$sock" --timeout 60 >/tmp/kvmkit-api-run.out 2>&1 &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
s_out=$("$kvmkit" snapshot "$sock" "$snap" 2>&1)
s_st=$?
"$kvmkit" stop "$sock" >/dev/null 2>&1
wait $pid
"$kvmkit" run --restore "$snap" --api "$sock" --timeout 60 >/tmp/kvmkit-api-run.out 2>&1 &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
q=$("$kvmkit" query "$sock" 2>&1)
"$kvmkit" stop "$sock" >/dev/null 2>&1
wait $pid
st=$?
if [ $s_st -eq 0 ] && [ $st -eq 0 ] && echo "$q" | grep -q "running"; then
	echo "ok   cli-snapshot-restore"
else
	echo "FAIL cli-snapshot-restore: snapshot $s_st ($s_out), restored run $st; query: $q; run: $(cat /tmp/kvmkit-api-run.out)"
	fail=1
fi
rm -rf "$snap"

out=$("$kvmkit" caps 2>&1)
if echo "$out" | grep -q "vGIC: .*kvmkit creates GICv$gic"; then
	echo "ok   cli-caps-vgic"
else
	echo "FAIL cli-caps-vgic: $out"
	fail=1
fi
exit $fail
