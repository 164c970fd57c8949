#!/bin/sh
# Runs the kvmkit-host runner with the given arguments. If the emulated host
# itself died (runner status 124/125 after its heartbeat stopped, or with a
# kernel soft lockup on its console: a known quirk of KVM nested under QEMU
# TCG, see docs/ARCHITECTURE.md), it says so and tries again, up to 4
# attempts. A test failing, hanging or running too slowly inside a healthy
# host (its heartbeat going on) is never retried.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
attempt=1
while :; do
	{ "$@"; echo "retry-wrapper: status $?" >"$out.rc"; } 2>&1 | tee "$out"
	rc=$(sed -n 's/^retry-wrapper: status //p' "$out.rc")
	rm -f "$out.rc"
	# The runner says "host stopped responding" when the heartbeat stops;
	# a hang in a healthy host ends through a test's own watchdog or the
	# runner's --timeout and is reported, not retried.
	if [ "$attempt" -lt 4 ] && { [ "$rc" -eq 124 ] || [ "$rc" -eq 125 ]; } &&
		! grep -q "test binary watchdog fired" "$out" &&
		grep -q -e "host stopped responding" -e "soft lockup" "$out"; then
		echo "retry-wrapper: attempt $attempt: the emulated host's kernel locked up (not a kvmkit test failure); retrying"
		attempt=$((attempt + 1))
		continue
	fi
	exit "$rc"
done
