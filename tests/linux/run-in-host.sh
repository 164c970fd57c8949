#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the emulated x86 host (tests/hosts): boots the Linux kernel
# under `kvmkit run` once per variant, one after the other in the same host,
# and checks what the guest's /init (tests/linux/init) printed on the serial
# console and how kvmkit ended. Prints one "ok:"/"FAIL:" line per check and
# each variant's boot time.
# usage: run-in-host.sh KVMKIT BZIMAGE INITRD [PVH_VMLINUX]
kvmkit=$1 kernel=$2 initrd=$3 pvh=$4
append=${KVMKIT_LINUX_APPEND:-console=ttyS0 quiet}
fails=0
mem=512M
input=
tmp=$(mktemp -d)

uptime_s() { cut -d' ' -f1 /proc/uptime; }

check() { # check WHAT COMMAND...
	what=$1
	shift
	if "$@" >/dev/null 2>&1; then
		echo "ok: $variant: $what"
	else
		echo "FAIL: $variant: $what"
		fails=$((fails + 1))
	fi
}

# watchdog PID SECONDS: a run that outlives its own --timeout is a hang:
# say where its threads wait, then kill it (the variant then fails).
watchdog() {
	i=0
	while [ "$i" -lt "$2" ] && kill -0 "$1" 2>/dev/null; do
		sleep 1
		i=$((i + 1))
	done
	kill -0 "$1" 2>/dev/null || return 0
	# The line retry-on-host-lockup.sh knows: a hang in a healthy host.
	echo "FAIL: $variant: test binary watchdog fired: still running after $2 s; its threads:"
	for t in /proc/$1/task/*; do
		echo "  $(cat "$t/comm" 2>/dev/null) $(cat "$t/wchan" 2>/dev/null) $(grep State "$t/status" 2>/dev/null)"
	done
	tail -n 20 "$tmp/out"
	kill -9 "$1"
}

# boot NAME IMAGE VCPUS IRQCHIP WANT_STATUS EXTRA_APPEND [STDERR_PATTERN]
# (without a pattern kvmkit's stderr must be empty)
boot() {
	variant=$1 image=$2 vcpus=$3 chip=$4 want=$5 extra=$6 errpat=$7
	case "$variant" in *"${KVMKIT_LINUX_ONLY:-}"*) ;; *) return ;; esac
	t0=$(uptime_s)
	limit=${KVMKIT_LINUX_TIMEOUT:-120}
	# stdin: a FIFO for the console-input variant (opened read-write here
	# first, so that no open blocks and no write meets a closed reader).
	rm -f "$tmp/in"
	mkfifo "$tmp/in"
	# Emptied here, not only by the run's redirection: the wait for the
	# guest's prompt below must not find the last variant's.
	: >"$tmp/out"
	exec 3<>"$tmp/in"
	if [ "$image" = probe ]; then
		# The library's machine with two virtio-mmio devices declared.
		"$KVMKIT_LINUX_PROBE" "$kernel" "$initrd" "$vcpus" "$chip" "$append$extra" \
			>"$tmp/out" 2>"$tmp/err" <"$tmp/in" &
	else
		"$kvmkit" run --kernel "$image" --initrd "$initrd" --mem "$mem" --vcpus "$vcpus" \
			--irqchip "$chip" --timeout "$limit" --append "$append$extra" \
			>"$tmp/out" 2>"$tmp/err" <"$tmp/in" &
	fi
	pid=$!
	watchdog "$pid" $((limit + 60)) &
	wd=$!
	if [ -n "$input" ]; then
		# A line goes in once the guest asks for it.
		while kill -0 "$pid" 2>/dev/null && ! grep -q KVMKIT-LINUX-WANT-INPUT "$tmp/out"; do
			sleep 0.2
		done
		echo "$input" >&3
	fi
	wait "$pid"
	st=$?
	wait "$wd"
	exec 3>&-
	t1=$(uptime_s)
	secs=$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")
	init_at=$(sed -n 's/.*KVMKIT-LINUX-INIT uptime \([0-9.]*\).*/\1/p' "$tmp/out" | tr -d '\r')
	memtotal=$(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' "$tmp/out" | tr -d '\r')
	echo "time: $variant: kvmkit run ${secs} s (start to exit), guest uptime at /init ${init_at:-?} s, MemTotal ${memtotal:-?} kB"
	check "exit status $want (got $st)" test "$st" -eq "$want"
	check "marker on the serial console" grep -q KVMKIT-LINUX-DONE "$tmp/out"
	check "$vcpus CPU(s) online" grep -q "KVMKIT-LINUX-NPROC $vcpus" "$tmp/out"
	check "ACPI: the kernel found the IOAPIC (MADT)" grep -q "IOAPIC\[0\]: apic_id 0, .*address 0xfec00000, GSI 0-23" "$tmp/out"
	check "ttyS0 on IO-APIC pin 4 (DSDT/MADT)" grep -qE "IO-APIC +4-edge +ttyS0" "$tmp/out"
	check "COM1 from the DSDT (PNP0501)" grep -q "PNP0501:00" "$tmp/out"
	if [ "$mem" = 4608M ]; then
		# MemTotal counts RAM from both e820 ranges (less what the kernel
		# keeps): more than 4 GiB means the part above 4 GiB is in use.
		check "RAM above 4 GiB in use (MemTotal > 4 GiB)" \
			awk '/MemTotal/ { big = $2 > 4194304 } END { exit !big }' "$tmp/out"
	fi
	if [ -n "$input" ]; then
		check "the line typed on the console reached the guest (UART in, IRQ 4)" \
			grep -q "KVMKIT-LINUX-GOT \[$input\]" "$tmp/out"
	fi
	if [ "$image" = probe ]; then
		check "LNRO0005:00 from the DSDT" grep -q "LNRO0005:00" "$tmp/out"
		check "LNRO0005:01 from the DSDT" grep -q "LNRO0005:01" "$tmp/out"
		check "window of LNRO0005:00 (Memory32Fixed)" grep -q "d0000000-d00001ff : LNRO0005:00" "$tmp/out"
		check "window of LNRO0005:01 (Memory32Fixed)" grep -q "d0001000-d00011ff : LNRO0005:01" "$tmp/out"
	fi
	if [ -n "$errpat" ]; then
		check "kvmkit says: $errpat" grep -q "$errpat" "$tmp/err"
	elif [ -z "${KVMKIT_LOG:-}" ]; then
		check "nothing on kvmkit's stderr" test ! -s "$tmp/err"
	fi
	if [ "$fails" -ne 0 ] && [ ! -e "$tmp/shown" ]; then
		: >"$tmp/shown"
		echo "--- $variant: console ---"; tr -d '\r' <"$tmp/out" | tail -n 60
		echo "--- $variant: stderr ---"; cat "$tmp/err"
	fi
}

boot "1 vCPU, kernel irqchip" "$kernel" 1 kernel 0 ""
boot "2 vCPUs, kernel irqchip" "$kernel" 2 kernel 0 ""
input="ping-$$"
boot "2 vCPUs, split irqchip, console input" "$kernel" 2 split 0 " kvmkit.input"
input=
# Linux's default reboot with a hardware-reduced FADT ends at the reset
# vector (kvmkit's stub there resets through the i8042); reboot=acpi uses
# the FADT's reset register first.
boot "reboot, 1 vCPU" "$kernel" 1 kernel 118 " kvmkit.reboot" \
	"^kvmkit: guest stopped: guest reset: i8042 reset"
boot "reboot=acpi, 1 vCPU, split irqchip" "$kernel" 1 split 118 " kvmkit.reboot reboot=acpi" \
	"^kvmkit: guest stopped: guest reset: ACPI reset register"
if [ -z "${KVMKIT_LINUX_NO_PVPANIC:-}" ]; then
	boot "panic, 1 vCPU" "$kernel" 1 kernel 119 " kvmkit.panic" \
		"^kvmkit: guest stopped: guest crash: pvpanic: the guest kernel panicked"
else
	echo "skip: panic: the kernel package has no pvpanic modules"
fi
# 4.5 GiB: 3 GiB below the 32-bit MMIO gap, 1.5 GiB from 4 GiB (e820).
mem=4608M
boot "4.5 GiB of RAM, 1 vCPU" "$kernel" 1 kernel 0 ""
mem=512M
if [ -n "${KVMKIT_LINUX_PROBE:-}" ]; then
	boot "library machine with 2 virtio-mmio devices, 2 vCPUs, split irqchip" probe 2 split 0 ""
fi
if [ -n "$pvh" ]; then
	boot "PVH vmlinux, 2 vCPUs, kernel irqchip" "$pvh" 2 kernel 0 ""
fi
rm -rf "$tmp"
echo "linux boot: $fails failure(s)"
[ "$fails" -eq 0 ]
