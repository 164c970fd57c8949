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

out=$("$kvmkit" run --kernel "$guests/hello.elf" --testdev on 2>&1)
st=$?
if [ $st -eq 2 ] && [ "$out" = "kvmkit: run: --testdev is x86_64-only (this kvmkit is built for arm64)" ]; then
	echo "ok   cli-x86-only-option"
else
	echo "FAIL cli-x86-only-option: status $st: $out"
	fail=1
fi

# expect NAME STATUS PATTERN -- COMMAND...: its status, its output matching.
expect() {
	name=$1 want=$2 pat=$3
	shift 4
	out=$("$@" 2>&1)
	st=$?
	if [ $st -eq "$want" ] && echo "$out" | grep -Eq -- "$pat"; then
		echo "ok   $name"
	else
		echo "FAIL $name: status $st (want $want): $out"
		fail=1
	fi
}
hello="hello from vCPU 0 of 1"
# The vGIC's options: the host's version runs, the other is refused, saying so.
other=$((5 - gic))
expect cli-gic-v$gic 0 "$hello" -- "$kvmkit" run --kernel "$guests/hello.elf" --gic "v$gic"
expect cli-gic-auto 0 "$hello" -- "$kvmkit" run --kernel "$guests/hello.elf" --gic auto
expect cli-gic-v$other-refused 120 "^kvmkit: .*GICv$other" -- \
	"$kvmkit" run --kernel "$guests/hello.elf" --gic "v$other"
expect cli-gic-irqs-992 0 "$hello" -- "$kvmkit" run --kernel "$guests/hello.elf" --gic-irqs 992
expect cli-gic-irqs-100-refused 2 "^kvmkit: .*multiple of 32" -- \
	"$kvmkit" run --kernel "$guests/hello.elf" --gic-irqs 100
expect cli-gic-irqs-1024-refused 2 "^kvmkit: .*multiple of 32" -- \
	"$kvmkit" run --kernel "$guests/hello.elf" --gic-irqs 1024
expect cli-virtio-mmio-cmdline-x86-only 2 \
	"^kvmkit: run: --virtio-mmio-cmdline is x86_64-only" -- \
	"$kvmkit" run --kernel "$guests/hello.elf" --virtio-mmio-cmdline
# PMU and SVE: off unless named; where KVM has them the guest runs with
# them, else a clear refusal naming the capability.
expect cli-cpu-unknown 2 "^kvmkit: .*cpu_flags '[+]x2apic': pmu or sve" -- \
	"$kvmkit" run --kernel "$guests/hello.elf" --cpu +x2apic
caps=$("$kvmkit" caps 2>&1)
for f in pmu:KVM_CAP_ARM_PMU_V3 sve:KVM_CAP_ARM_SVE; do
	name=${f%%:*} cap=${f#*:}
	v=$(echo "$caps" | awk -v c="$cap" '$1 == c { print $4 }')
	if [ "${v:-0}" -gt 0 ]; then
		expect cli-cpu-$name 0 "$hello" -- "$kvmkit" run --kernel "$guests/hello.elf" --cpu "+$name"
	else
		expect cli-cpu-$name-refused 120 "^kvmkit: .*$name: this host's KVM has no .*\\($cap\\)" -- \
			"$kvmkit" run --kernel "$guests/hello.elf" --cpu "+$name"
	fi
done

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
