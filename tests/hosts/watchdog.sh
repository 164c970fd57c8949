# SPDX-License-Identifier: MIT
# Sourced by the scripts that run tests inside an emulated host
# (tests/kvm/run-in-host.sh, tests/linux/run-in-host.sh), which pass it in
# as a payload.
# watchdog PID SECONDS LABEL [LOG]: a test program that outlives SECONDS
# hangs: print "LABEL test binary watchdog fired" (the line
# tests/hosts/retry-on-host-lockup.sh knows: a hang in a healthy host, never
# retried), where each of its threads waits and the last lines of LOG, then
# kill it. Run it in the background beside the program.
watchdog() {
	i=0
	while [ "$i" -lt "$2" ] && kill -0 "$1" 2>/dev/null; do
		sleep 1
		i=$((i + 1))
	done
	kill -0 "$1" 2>/dev/null || return 0
	echo "$3 test binary watchdog fired: still running after $2 s; its threads:"
	for th in /proc/$1/task/*; do
		echo "  $(cat "$th/comm" 2>/dev/null) $(cat "$th/wchan" 2>/dev/null) $(grep State "$th/status" 2>/dev/null)"
	done
	[ -n "${4:-}" ] && tail -n 20 "$4"
	kill -9 "$1"
}
