#!/bin/sh
# Runs the kvmkit-host runner with the given arguments. If the emulated host
# itself died (runner status 124/125 with a kernel soft lockup on its
# console, or a timeout that no test's own watchdog explains: a known quirk of KVM nested under QEMU TCG, see
# docs/ARCHITECTURE.md), it says so and tries again, up to 5 attempts. A test failing
# inside a healthy host is never retried.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
attempt=1
while :; do
	{ "$@"; echo "retry-wrapper: status $?" >"$out.rc"; } 2>&1 | tee "$out"
	rc=$(sed -n 's/^retry-wrapper: status //p' "$out.rc")
	rm -f "$out.rc"
	# A test hanging in a healthy host ends through its own watchdog
	# (exit 1, "test binary watchdog fired") and is never retried. A runner
	# timeout without that line means the host kernel stopped scheduling.
	if [ "$attempt" -lt 5 ] && { [ "$rc" -eq 124 ] || [ "$rc" -eq 125 ]; } &&
		{ grep -q "soft lockup" "$out" || ! grep -q "test binary watchdog fired" "$out"; }; then
		echo "retry-wrapper: attempt $attempt: the emulated host's kernel locked up (not a kvmkit test failure); retrying"
		attempt=$((attempt + 1))
		continue
	fi
	exit "$rc"
done
