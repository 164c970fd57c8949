#!/bin/sh
# Ctrl-A s on the console (a terminal: script(1) gives kvmkit a pty, fed
# through a FIFO): with --snapshot-dir DIR each Ctrl-A s pauses the VM,
# writes DIR/snapshot-N and resumes it; `kvmkit run --restore` continues
# each snapshot in a new process. The guest is uart_echo, which echoes
# what it reads and powers off at 'q' with the number of bytes it echoed,
# so a restored run's exit status counts the bytes echoed before the
# snapshot too. Without --snapshot-dir Ctrl-A s is refused with one line
# and the guest runs on; Ctrl-A x still stops it.
# Usage: test_cli_escape.sh KVMKIT GUEST_DIR
kvmkit=$1 guests=$2
. "$(dirname "$0")/cli_lib.sh"
need_kvm
if ! command -v script >/dev/null 2>&1 || ! command -v mkfifo >/dev/null 2>&1; then
	echo "skipped: no script(1) or mkfifo for a pseudo-terminal"
	exit 77
fi

# wait_out PATTERN: until the console output holds PATTERN (bounded, 20 s).
wait_out() {
	i=0
	while ! grep -q -- "$1" "$tmp/con" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 200 ]; then
			bad "console never showed '$1':"
			sed 's/^/  console: /' "$tmp/con"
			return 1
		fi
		sleep 0.1
	done
	return 0
}

# on_pty ARGS...: `kvmkit run ARGS` on a pty in the background ($pid),
# its input on fd 3, its output (stdout and stderr) in $tmp/con.
on_pty() {
	rm -f "$tmp/in" "$tmp/con"
	mkfifo "$tmp/in"
	cmd="'$kvmkit' run"
	for a in "$@"; do cmd="$cmd '$a'"; done
	script -qefc "$cmd" /dev/null <"$tmp/in" >"$tmp/con" 2>&1 &
	pid=$!
	exec 3>"$tmp/in"
}

# ---- with --snapshot-dir: two snapshots of one run ----
snaps=$tmp/snaps
on_pty --kernel "$guests/uart_echo.elf" --snapshot-dir "$snaps" --timeout 60
wait_out "echo ready" &&
	printf 'ab' >&3 && wait_out "ab" &&
	printf '\001s' >&3 && wait_out "Ctrl-A s: snapshot written to $snaps/snapshot-1" &&
	printf 'c' >&3 && wait_out "^c" &&
	printf '\001s' >&3 && wait_out "Ctrl-A s: snapshot written to $snaps/snapshot-2" &&
	printf 'dq' >&3
wait $pid
rc=$?
exec 3>&-
if [ $rc -eq 4 ] && grep -q "^ab" "$tmp/con" && grep -q "^d" "$tmp/con"; then
	ok "the run went on after each Ctrl-A s (echoed 4 bytes, exit 4)"
else
	bad "run with Ctrl-A s: exit $rc"; sed 's/^/  console: /' "$tmp/con"
fi
[ -s "$snaps/snapshot-1/state" ] && [ -s "$snaps/snapshot-2/state" ] &&
	ok "snapshot-1 and snapshot-2 written" || bad "snapshots: $(ls -R "$snaps" 2>&1)"

# (The echo lines: "ab" then the first snapshot's line, "c" then the
# second's, "d".)
# Each continues in a new process: 2 (then 3) bytes echoed before, plus
# the new ones; the guest never boots again (no second "echo ready").
printf 'xyzq' | "$kvmkit" run --restore "$snaps/snapshot-1" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 5 ] && grep -q "xyz" "$tmp/out" && ! grep -q "echo ready" "$tmp/out"; then
	ok "--restore snapshot-1 goes on: exit 5 (ab, then xyz)"
else
	bad "--restore snapshot-1: exit $rc"; sed 's/^/  /' "$tmp/out" "$tmp/err"
fi
printf 'xq' | "$kvmkit" run --restore "$snaps/snapshot-2" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 4 ] && grep -q "x" "$tmp/out" && ! grep -q "echo ready" "$tmp/out"; then
	ok "--restore snapshot-2 goes on: exit 4 (abc, then x)"
else
	bad "--restore snapshot-2: exit $rc"; sed 's/^/  /' "$tmp/out" "$tmp/err"
fi

# ---- without --snapshot-dir: refused, the guest runs on, Ctrl-A x ends it ----
on_pty --kernel "$guests/uart_echo.elf" --timeout 60
wait_out "echo ready" &&
	printf '\001s' >&3 &&
	wait_out "^kvmkit: Ctrl-A s: no snapshot directory (start kvmkit run with --snapshot-dir DIR)" &&
	printf 'k' >&3 && wait_out "^k" &&
	printf '\001x' >&3
wait $pid
rc=$?
exec 3>&-
if [ $rc -eq 0 ] && [ "$(grep -c "^kvmkit: Ctrl-A s" "$tmp/con")" -eq 1 ]; then
	ok "Ctrl-A s without --snapshot-dir: one line, the guest ran on, Ctrl-A x stopped it"
else
	bad "Ctrl-A s without a directory: exit $rc"; sed 's/^/  console: /' "$tmp/con"
fi
expect 2 "^kvmkit: --snapshot-dir: empty directory name" -- \
	"$kvmkit" run --kernel "$guests/uart_echo.elf" --snapshot-dir ""
finish
