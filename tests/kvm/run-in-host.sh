#!/bin/sh
# Runs kvmkit's KVM test programs one after another (inside an emulated
# host, or anywhere with /dev/kvm) and fails if any fails or is skipped:
# inside a host, a skip means KVM did not come up, which is a failure.
# Usage: run-in-host.sh KVMKIT GUEST_DIR CLI_SCRIPT TEST_BIN...
kvmkit=$1 guests=$2 cli=$3
shift 3
# Loopback for the tests that use TCP on 127.0.0.1 (the host's init leaves
# every interface down).
ip link set lo up 2>/dev/null || true
pass=0 fail=0 failed=
# watchdog PID SECONDS LABEL: a test program that outlives its limit
# hangs (tests/hosts/watchdog.sh). Each program's own test timeouts are
# shorter; the longest takes about 30 s here.
. "$(dirname "$0")/../hosts/watchdog.sh"
for t in "$@"; do
	echo "=== $t"
	"$t" &
	pid=$!
	watchdog "$pid" "${KVMKIT_TEST_LIMIT:-300}" "=== $t:" &
	wd=$!
	wait "$pid"
	rc=$?
	kill "$wd" 2>/dev/null
	wait "$wd" 2>/dev/null
	if [ $rc -eq 0 ]; then pass=$((pass + 1)); else
		echo "=== FAILED ($rc): $t"; fail=$((fail + 1)); failed="$failed ${t##*/}"
	fi
done
echo "=== $cli"
sh "$cli" "$kvmkit" "$guests"
rc=$?
if [ $rc -eq 0 ]; then pass=$((pass + 1)); else
	echo "=== FAILED ($rc): $cli"; fail=$((fail + 1)); failed="$failed ${cli##*/}"
fi
echo "in-host: $pass passed, $fail failed${failed:+ (failed:$failed)}"
[ $fail -eq 0 ]
