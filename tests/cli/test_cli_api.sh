#!/bin/sh
# The control clients (kvmkit query|pause|resume|stop|snapshot|migrate)
# against `kvmkit run --api`.
# Usage: test_cli_api.sh KVMKIT GUEST_DIR [all|clients|run]
# "clients" needs no KVM: the clients' own errors (no server, bad
# arguments). "run" drives a running guest (needs /dev/kvm); "all" is both.
kvmkit=$1 guests=$2 part=${3:-all}
. "$(dirname "$0")/cli_lib.sh"
[ "$part" != clients ] && need_kvm
# has FILE PATTERN WHAT: FILE has a line matching PATTERN.
has() { if grep -q -- "$2" "$1"; then ok "$3"; else bad "$3"; sed 's/^/  /' "$1"; fi; }

if [ "$part" != run ]; then
	expect 3 "^kvmkit: pause: cannot connect to $tmp/none: No such file or directory$" -- \
		"$kvmkit" pause "$tmp/none"
	for c in query resume stop; do
		expect 3 "^kvmkit: $c: cannot connect" -- "$kvmkit" $c "$tmp/none"
	done
	expect 3 "^kvmkit: snapshot: cannot connect" -- "$kvmkit" snapshot "$tmp/none" "$tmp/snap"
	expect 3 "^kvmkit: migrate: cannot connect" -- "$kvmkit" migrate "$tmp/none" --to unix:/x
	: >"$tmp/file"
	expect 3 "cannot connect to $tmp/file: Connection refused" -- "$kvmkit" query "$tmp/file"
	expect 2 "^kvmkit: pause: missing SOCKET" -- "$kvmkit" pause
	expect 2 "^kvmkit: snapshot: missing DIR" -- "$kvmkit" snapshot "$tmp/none"
	expect 2 "^kvmkit: snapshot: empty DIR" -- "$kvmkit" snapshot "$tmp/none" ""
	expect 2 "^kvmkit: stop: unexpected argument 'extra'" -- "$kvmkit" stop "$tmp/none" extra
	expect 2 "^kvmkit: migrate: --to ADDR is required" -- "$kvmkit" migrate "$tmp/none"
	expect 2 "^kvmkit: migrate: --to needs an argument" -- "$kvmkit" migrate "$tmp/none" --to
	expect 2 "^kvmkit: pause: unknown option '--json'" -- "$kvmkit" pause --json "$tmp/none"
	expect 2 "^kvmkit: query: unknown option '-x'" -- "$kvmkit" query -x "$tmp/none"
	expect 2 "longer than a unix socket path" -- "$kvmkit" query "$tmp/$(printf '%0120d' 0)"
	expect 0 "" -- "$kvmkit" query --help
	has "$tmp/out" "migrate SOCKET --to ADDR" "query --help lists the control commands"
fi
[ "$part" = clients ] && { finish; exit; }

sock=$tmp/sock

start_run "$sock" --kernel "$guests/pause_loop.elf" --api "$sock" --timeout 120
case $(ls -l "$sock" 2>/dev/null) in
srw-------*) ok "socket $sock is owner-only" ;;
*) bad "socket mode: $(ls -l "$sock" 2>&1)" ;;
esac

expect 0 "" -- "$kvmkit" query "$sock"
has "$tmp/out" "^state: running$" "query: running"
has "$tmp/out" "^vcpus: 1$" "query: vCPU count"
has "$tmp/out" "^  vcpu 0: runs [0-9]*, exits: io " "query: vCPU 0's exits"
has "$tmp/out" "^memory: 128 MiB in 1 region$" "query: memory"
has "$tmp/out" "^irqchip: kernel$" "query: irqchip"
expect 0 "" -- "$kvmkit" query --json "$sock"
has "$tmp/out" '^{"ok":true,"protocol":1,"state":"running",' "query --json: the reply"

expect 0 "" -- "$kvmkit" pause "$sock"
has "$tmp/out" "^state: paused$" "pause"
expect 1 "^kvmkit: pause: invalid state: vm is paused, expected running$" -- "$kvmkit" pause "$sock"
expect 0 "" -- "$kvmkit" query "$sock"
has "$tmp/out" "^state: paused$" "query while paused"
expect 0 "" -- "$kvmkit" resume "$sock"
has "$tmp/out" "^state: running$" "resume"
expect 1 "^kvmkit: resume: invalid state: vm is running, expected paused$" -- "$kvmkit" resume "$sock"

expect 0 "" -- "$kvmkit" snapshot "$sock" "$tmp/snap"
has "$tmp/out" "^state: running$" "snapshot: resumed after"
expect 1 "^kvmkit: snapshot: .*not empty" -- "$kvmkit" snapshot "$sock" "$tmp/snap"
# No target there: refused, and the VM runs on (checked below).
expect 1 "^kvmkit: migrate: .*connecting to unix:$tmp/m: .*No such file" -- \
	"$kvmkit" migrate "$sock" --to "unix:$tmp/m"
expect 2 "^kvmkit: migrate: --to 'tcp:host': tcp: needs HOST:PORT" -- \
	"$kvmkit" migrate "$sock" --to "tcp:host"
# A second server on a live socket is refused; the first one keeps it.
expect 2 "^kvmkit: --api: $sock: a server is listening there" -- \
	"$kvmkit" run --api "$sock" --timeout 5
expect 0 "" -- "$kvmkit" query "$sock"
has "$tmp/out" "^state: running$" "still running after the refusals"

expect 0 "" -- "$kvmkit" stop "$sock"
has "$tmp/out" "^state: stopped$" "stop"
wait $run
rc=$?
if [ $rc -eq 0 ] && ! [ -s "$tmp/run.err" ]; then ok "run exits 0 after stop"; else
	bad "run exit $rc after stop"; sed 's/^/  stderr: /' "$tmp/run.err"; fi
if [ -e "$sock" ]; then bad "socket left behind"; else ok "socket removed"; fi
expect 3 "cannot connect to $sock: No such file or directory" -- "$kvmkit" query "$sock"

# --api never replaces a file that is not a socket.
echo keep >"$tmp/file"
expect 2 "^kvmkit: --api: $tmp/file: exists and is not a socket" -- "$kvmkit" run --api "$tmp/file"
has "$tmp/file" "^keep$" "the file is untouched"
expect 2 "^kvmkit: --api: $tmp/nodir/sock: No such file or directory" -- \
	"$kvmkit" run --api "$tmp/nodir/sock"

# A run killed outright leaves its socket; the next run takes it over.
start_run "$sock" --kernel "$guests/pause_loop.elf" --api "$sock" --timeout 120
kill -9 $run
wait $run 2>/dev/null
if [ -S "$sock" ]; then ok "stale socket after kill -9"; else bad "no stale socket"; fi
expect 0 "" -- "$kvmkit" run --api "$sock"
if [ -e "$sock" ]; then bad "stale socket not removed"; else ok "stale socket taken over and removed"; fi
finish
