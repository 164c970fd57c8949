#!/bin/sh
# SPDX-License-Identifier: MIT
# A/B comparison of kvmkit builds on the exit path: runs several copies of
# bench-exits-kvmkit (libkvmkit is linked statically, so each binary is one
# variant of the library) in rounds, every variant once per round, the order
# rotated each round so that drift hits all alike. Prints the raw RESULT
# lines prefixed with the variant name, then median [min .. max] and the
# quartiles of the userspace share per exit (user_ns) and of exit_ns.
#
# usage: bench/ab_exits.sh [--rt] GUEST_ELF ROUNDS N BINARY...
#   GUEST_ELF  exits_bench.elf
#   ROUNDS     rounds (each runs every binary once)
#   N          MMIO and port writes per run
#   BINARY     bench-exits-kvmkit copies; the variant name is the file name
#   --rt       run them under SCHED_FIFO (chrt -f 20)
# Example: build, cp build/bench/bench-exits-kvmkit /tmp/v/before, change,
# build, cp ... /tmp/v/after, then bench/ab_exits.sh --rt \
#   build/tests/guest/exits_bench.elf 11 5000 /tmp/v/before /tmp/v/after
set -eu

rt=
if [ "${1:-}" = --rt ]; then
	rt="chrt -f 20"
	shift
fi
if [ $# -lt 4 ]; then
	sed -n '3,/^[^#]/p' "$0" | sed -n 's/^# \{0,1\}//p' >&2
	exit 2
fi
elf=$1 rounds=$2 n=$3
shift 3
log=$(mktemp)
trap 'rm -f "$log"' EXIT

i=1
while [ "$i" -le "$rounds" ]; do
	for b in "$@"; do
		# shellcheck disable=SC2086 # rt is a word list
		$rt "$b" "$elf" "$n" 2>&1 | sed -n "s|^RESULT |$(basename "$b") RESULT |p" >>"$log"
	done
	# Rotate: the first binary goes last.
	first=$1
	shift
	set -- "$@" "$first"
	i=$((i + 1))
done
cat "$log"
python3 - "$log" <<'EOF'
import re
import statistics
import sys

runs = {}
for line in open(sys.argv[1]):
    name = line.split()[0]
    kv = dict(w.split('=', 1) for w in line.split() if '=' in w)
    runs.setdefault(name, []).append((float(kv['user_ns']), float(kv['exit_ns'])))
for name in sorted(runs):
    for i, what in ((0, 'user_ns'), (1, 'exit_ns')):
        v = sorted(r[i] for r in runs[name])
        print('%-16s %-8s median %9.1f  [%.1f .. %.1f]  p25 %.1f  p75 %.1f  n=%d' % (
            name, what, statistics.median(v), v[0], v[-1], v[len(v) // 4],
            v[(3 * len(v)) // 4], len(v)))
EOF
