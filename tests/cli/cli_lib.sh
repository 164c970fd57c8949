# Shared by the CLI tests (POSIX sh: they also run under busybox in the
# emulated hosts). expect STATUS PATTERN -- COMMAND...: runs COMMAND, checks
# its exit status and that stderr is exactly one line matching PATTERN.
fails=0
passes=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect() {
	want=$1 pat=$2
	shift 3
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$got" -ne "$want" ]; then
		echo "FAIL: $*: exit $got, expected $want"; sed 's/^/  stderr: /' "$tmp/err"
		fails=$((fails + 1)); return
	fi
	if [ -n "$pat" ] && { [ "$lines" -ne 1 ] || ! grep -q -- "$pat" "$tmp/err"; }; then
		echo "FAIL: $*: stderr should be one line matching '$pat':"; sed 's/^/  stderr: /' "$tmp/err"
		fails=$((fails + 1)); return
	fi
	echo "ok: $* -> $got"
	passes=$((passes + 1))
}

# expect_first STATUS PATTERN COUNT -- COMMAND...: like expect, but stderr
# has COUNT lines and the first matches PATTERN (a run ending with dumps).
expect_first() {
	want=$1 pat=$2 count=$3
	shift 4
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	if [ "$got" -ne "$want" ] || [ "$(wc -l <"$tmp/err")" -ne "$count" ] ||
		! head -n 1 "$tmp/err" | grep -q -- "$pat"; then
		echo "FAIL: $*: exit $got (expected $want), stderr:"; sed 's/^/  stderr: /' "$tmp/err"
		fails=$((fails + 1)); return
	fi
	echo "ok: $* -> $got"
	passes=$((passes + 1))
}

# ok WHAT / bad WHAT: a check of the script's own passed or failed (a
# script may define bad again to show more).
ok() { echo "ok: $1"; passes=$((passes + 1)); }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }

# need_kvm: skipped (exit 77) without /dev/kvm; failed instead where
# KVMKIT_REQUIRE_KVM is set (the emulated hosts, as tests/kvm).
need_kvm() {
	if ! [ -c "${KVMKIT_KVM_PATH:-/dev/kvm}" ]; then
		[ -n "${KVMKIT_REQUIRE_KVM:-}" ] && { echo "FAIL: no /dev/kvm"; exit 1; }
		echo "skipped: no /dev/kvm"
		exit 77
	fi
}

# u64 FILE OFFSET / u32 FILE OFFSET: a little-endian value in a file.
u64() { od -An -t u8 -j "$2" -N 8 "$1" | tr -d ' '; }
u32() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
# poke FILE OFFSET OCTAL: one byte (printf's \OCTAL) written over FILE's.
poke() { printf "\\$3" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null; }

# wait_file PATH: until PATH exists (bounded, 60 s).
wait_file() {
	i=0
	while ! [ -e "$1" ] && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

# start_run SOCK ARGS...: `kvmkit run ARGS` in the background ($run; its
# output in $tmp/run.out and run.err) until its socket SOCK is there
# (bounded, 60 s, or until it exits).
start_run() {
	s=$1
	shift
	"$kvmkit" run "$@" </dev/null >"$tmp/run.out" 2>"$tmp/run.err" &
	run=$!
	i=0
	while ! [ -S "$s" ] && [ $i -lt 600 ] && kill -0 $run 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
}

finish() {
	echo "$passes passed, $fails failed"
	[ "$fails" -eq 0 ]
}
