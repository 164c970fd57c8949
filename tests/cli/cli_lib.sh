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

finish() {
	echo "$passes passed, $fails failed"
	[ "$fails" -eq 0 ]
}
