#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs inside the emulated x86 host (tests/hosts): boots the Linux kernel
# under `kvmkit run` once per variant, one after the other in the same host,
# and checks what the guest's /init (tests/linux/init) printed on its
# console (the UART, or hvc0 with --console virtio) and how kvmkit ended;
# for the virtio variants also what the host's ends of the guest's TCP and
# vsock transfers got (kvmkit runs in a network namespace holding the tap,
# the TCP peers in it too). Prints one "ok:"/"FAIL:" line per check and
# each variant's boot time.
# usage: run-in-host.sh KVMKIT BZIMAGE INITRD [PVH_VMLINUX]
kvmkit=$1 kernel=$2 initrd=$3 pvh=$4
append=${KVMKIT_LINUX_APPEND:-console=ttyS0 quiet}
fails=0
mem=512M
input=
vargs= # kvmkit run's virtio options (the virtio variants)
virq=  # their interrupt type in /proc/interrupts: edge or fasteoi (level)
vcon=  # set: --console virtio, the guest's console is hvc0
tmp=$(mktemp -d)
# iproute2's ip (busybox's has neither netns nor tuntap); the virtio
# variants' tap lives in the network namespace $ns only, and kvmkit runs
# there.
ip=${KVMKIT_LINUX_IP:-ip}
ns=kvmkit-linux
tcp_port=5001 tcp_bytes=4194304
vsock_port=5100 vsock_msg="kvmkit-vsock-$$-" vsock_len=100000

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

# The variants come in three parts of about a minute each; with
# KVMKIT_LINUX_PART=N only part N runs (each part is its own host boot, so
# that a stall of the emulated host costs one part; docs/ARCHITECTURE.md).
part=1 ran=0
active() { [ -z "${KVMKIT_LINUX_PART:-}" ] || [ "$part" = "$KVMKIT_LINUX_PART" ]; }

# watchdog PID SECONDS LABEL [LOG] (a run that outlives its own --timeout
# is a hang; the variant then fails).
. "$(dirname "$0")/../hosts/watchdog.sh"

# boot NAME IMAGE VCPUS IRQCHIP WANT_STATUS EXTRA_APPEND [STDERR_PATTERN]
# (without a pattern kvmkit's stderr must be empty)
boot() {
	variant=$1 image=$2 vcpus=$3 chip=$4 want=$5 extra=$6 errpat=$7
	active || return 0
	case "$variant" in *"${KVMKIT_LINUX_ONLY:-}"*) ;; *) return ;; esac
	ran=$((ran + 1))
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
	elif [ -n "$vargs" ]; then
		# The peers of the guest's TCP and vsock transfers wait first.
		peers_start
		"$ip" netns exec "$ns" "$kvmkit" run --kernel "$image" --initrd "$initrd" \
			--mem "$mem" --vcpus "$vcpus" --irqchip "$chip" --timeout "$limit" \
			--append "$append$extra" $vargs >"$tmp/out" 2>"$tmp/err" <"$tmp/in" &
	else
		"$kvmkit" run --kernel "$image" --initrd "$initrd" --mem "$mem" --vcpus "$vcpus" \
			--irqchip "$chip" --timeout "$limit" --append "$append$extra" \
			>"$tmp/out" 2>"$tmp/err" <"$tmp/in" &
	fi
	pid=$!
	watchdog "$pid" $((limit + 60)) "FAIL: $variant:" "$tmp/out" &
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
	[ -n "$vargs" ] && peers_stop
	exec 3>&-
	t1=$(uptime_s)
	secs=$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")
	init_at=$(sed -n 's/.*KVMKIT-LINUX-INIT uptime \([0-9.]*\).*/\1/p' "$tmp/out" | tr -d '\r')
	memtotal=$(sed -n 's/^MemTotal: *\([0-9]*\) kB.*/\1/p' "$tmp/out" | tr -d '\r')
	echo "time: $variant: kvmkit run ${secs} s (start to exit), guest uptime at /init ${init_at:-?} s, MemTotal ${memtotal:-?} kB"
	check "exit status $want (got $st)" test "$st" -eq "$want"
	check "marker on the serial console" grep -q KVMKIT-LINUX-DONE "$tmp/out"
	# Whole lines (the UART's \r dropped): "NPROC 1" must not pass on 12.
	tr -d '\r' <"$tmp/out" >"$tmp/out.txt"
	online=0
	[ "$vcpus" -gt 1 ] && online="0-$((vcpus - 1))"
	check "$vcpus CPU(s) online ($online)" sh -c 'grep -qx "KVMKIT-LINUX-NPROC $1" "$3" &&
		grep -qx "KVMKIT-LINUX-ONLINE $2" "$3"' sh "$vcpus" "$online" "$tmp/out.txt"
	check "ACPI: the kernel found the IOAPIC (MADT)" grep -q "IOAPIC\[0\]: apic_id 0, .*address 0xfec00000, GSI 0-23" "$tmp/out"
	if [ -n "$vcon" ]; then
		check "the kernel's console is hvc0 (virtio-console)" \
			grep -qE "^KVMKIT-LINUX-CONSOLE hvc0 " "$tmp/out"
	else
		check "ttyS0 on IO-APIC pin 4 (DSDT/MADT)" grep -qE "IO-APIC +4-edge +ttyS0" "$tmp/out"
	fi
	check "COM1 from the DSDT (PNP0501)" grep -q "PNP0501:00" "$tmp/out"
	if [ "$mem" = 4608M ]; then
		# MemTotal counts RAM from both e820 ranges (less what the kernel
		# keeps): more than 4 GiB means the part above 4 GiB is in use.
		check "RAM above 4 GiB in use (MemTotal > 4 GiB)" \
			awk '/MemTotal/ { big = $2 > 4194304 } END { exit !big }' "$tmp/out"
	fi
	if [ -n "$input" ]; then
		how="UART in, IRQ 4"
		[ -n "$vcon" ] && how="virtio-console's receiveq, hvc0"
		check "the line typed on the console reached the guest ($how)" \
			grep -q "KVMKIT-LINUX-GOT \[$input\]" "$tmp/out"
	fi
	if [ "$image" = probe ]; then
		check "LNRO0005:00 from the DSDT" grep -q "LNRO0005:00" "$tmp/out"
		check "LNRO0005:01 from the DSDT" grep -q "LNRO0005:01" "$tmp/out"
		check "window of LNRO0005:00 (Memory32Fixed)" grep -q "d0000000-d00001ff : LNRO0005:00" "$tmp/out"
		check "window of LNRO0005:01 (Memory32Fixed)" grep -q "d0001000-d00011ff : LNRO0005:01" "$tmp/out"
	fi
	[ -n "$vargs" ] && check_virtio
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

# check_virtio: what init-virtio.sh saw of kvmkit's virtio-mmio devices.
check_virtio() {
	o=$tmp/out.txt # boot() wrote it
	# Each device (virtio ids: 2 block, twice; 1 net; 4 rng; 19 vsock;
	# 3 console) on an IO-APIC line of its own with the variant's trigger
	# type.
	for id in 0x0002 0x0001 0x0004 0x0013 ${vcon:+0x0003}; do
		want=1
		[ "$id" = 0x0002 ] && want=2
		check "$want device(s) $id on its own IO-APIC line, $virq" test "$(grep -cE \
			"^KVMKIT-VIRTIO-IRQ after virtio[0-9]+ $id IO-APIC [0-9]+-$virq [0-9]+\$" "$o")" -eq "$want"
	done
	# ... and no two on the same pin (the counts above cannot tell).
	check "each virtio device on a pin of its own" awk '
		$1 == "KVMKIT-VIRTIO-IRQ" && $2 == "after" && NF == 7 {
			split($6, p, "-"); if (pin[p[1]]++) dup = 1; n++ }
		END { exit dup || !n }' "$o"
	# The count rises with I/O on the rw disk, the net, the rng and vsock
	# (the read-only disk may see none); the net's across the TCP
	# transfers alone too.
	for drv in virtio_blk virtio_net virtio_rng vmw_vsock_virtio_transport; do
		check "$drv: interrupt count rose with I/O" rose "$drv" before after "$o"
	done
	check "virtio_net: interrupt count rose during the TCP transfers" \
		rose virtio_net tcp-before tcp-after "$o"
	if [ -n "$vcon" ]; then
		# Its output needs no interrupt (Linux polls the transmit queue);
		# the typed line came in through one.
		check "virtio_console: interrupts taken (the input)" awk '
			$1 == "KVMKIT-VIRTIO-DRIVER" && $3 == "virtio_console" { d[$2] = 1 }
			$1 == "KVMKIT-VIRTIO-IRQ" && $2 == "after" { a[$3] = $7 }
			END { for (n in d) if (a[n] > 0) ok = 1; exit !ok }' "$o"
	fi
	check "no virtio module failed to load" test -z "$(grep INSMOD-FAILED "$o")"
	check "virtio-blk: the pattern written (dd conv=fsync)" grep -qx KVMKIT-BLK-WROTE "$o"
	sum=$(sed -n 's/^KVMKIT-BLK-SUM //p' "$o")
	check "virtio-blk: read back $sum = the pattern's sum $blk_want" test "$sum" = "$blk_want"
	check "virtio-blk: the image file holds the pattern" \
		test "$(head -c 65536 "$tmp/disk.img" | md5sum | cut -d' ' -f1)" = "$blk_want"
	check "virtio-blk: read-only disk flagged ro" grep -qx "KVMKIT-BLK-RO-FLAG 1" "$o"
	check "virtio-blk: read-only disk refused the write" grep -qx KVMKIT-BLK-RO-REFUSED "$o"
	check "virtio-blk: read-only image unchanged" \
		test "$(md5sum <"$tmp/ro.img" | cut -d' ' -f1)" = "$ro_sum"
	check "virtio-rng: 64 bytes from /dev/hwrng, not all zero" \
		grep -qE "^KVMKIT-RNG virtio_rng.0 bytes 64 nonzero [1-9]" "$o"
	check "virtio-net: 3 pings to the host's tap, 0% loss" grep -qx \
		"KVMKIT-PING 3 packets transmitted, 3 packets received, 0% packet loss" "$o"
	check "virtio-net: the tap is in the netns $ns only" \
		sh -c "test ! -e /sys/class/net/kvtap0 && \"$ip\" -n $ns link show kvtap0"
	# TCP: each side's md5 of what went over.
	sent=$(sed -n 's/^KVMKIT-TCP-SENT status 0 bytes '$tcp_bytes' md5 \([0-9a-f]*\) .*/\1/p' "$o")
	check "TCP guest -> netns: $tcp_bytes bytes, guest's md5 ${sent:-?} = the host's $(md5 "$tmp/tcp-in")" \
		same_data "$sent" "$tmp/tcp-in"
	got=$(sed -n 's/^KVMKIT-TCP-RECEIVED status 0 bytes '$tcp_bytes' md5 \([0-9a-f]*\) .*/\1/p' "$o")
	check "TCP netns -> guest: $tcp_bytes bytes, guest's md5 ${got:-?} = the host's $tcp_out_sum" \
		test "$got" = "$tcp_out_sum"
	check "vsock: the virtio transport bound" grep -qE "^KVMKIT-VSOCK virtio[0-9]+" "$o"
	check "vsock: the host got $vsock_len bytes from the guest's CID 3 as sent" grep -qx \
		"KVMKIT-VSOCK-SERVER peer cid 3 got $vsock_len bytes, as sent" "$tmp/vsock.out"
	check "vsock: the guest got its $vsock_len bytes echoed" grep -qx \
		"KVMKIT-VSOCK-CLIENT sent $vsock_len bytes, echo $vsock_len bytes, as sent" "$o"
	check "vsock: the guest's vsock_echo exited 0" grep -qx "KVMKIT-VSOCK-STATUS 0" "$o"
	# For the log: each device's line after the I/O (id, chip, pin, count).
	grep -E "^KVMKIT-(VIRTIO-IRQ after|PING|TCP)" "$o" | sed "s/^/info: $variant: /"
	sed "s/^/info: $variant: host: /" "$tmp/vsock.out"
}

# rose DRIVER TAG1 TAG2 FILE: the interrupt count of DRIVER's device grew
# from the snapshot TAG1 to TAG2 (init-virtio.sh's KVMKIT-VIRTIO-IRQ lines).
rose() {
	awk -v drv="$1" -v t1="$2" -v t2="$3" '
		$1 == "KVMKIT-VIRTIO-DRIVER" && $3 == drv { d[$2] = 1 }
		$1 == "KVMKIT-VIRTIO-IRQ" && $2 == t1 { b[$3] = $7 }
		$1 == "KVMKIT-VIRTIO-IRQ" && $2 == t2 { a[$3] = $7 }
		END { for (n in d) if (a[n] > b[n]) ok = 1; exit !ok }' "$4"
}

md5() { md5sum <"$1" | cut -d' ' -f1; }

# same_data SUM FILE: FILE has $tcp_bytes bytes whose md5 is SUM.
same_data() {
	[ -n "$1" ] && [ "$1" = "$(md5 "$2")" ] && [ "$(wc -c <"$2")" -eq "$tcp_bytes" ]
}

# peers_start: the host's ends of the guest's transfers, listening before
# the guest boots: busybox nc in the netns, one receiving on $tcp_port
# (its stdin a FIFO held open: nc stops at the end of either), one
# sending $tmp/tcp-out on $tcp_port + 1; vsock_echo on $vsock_port.
peers_start() {
	rm -f "$tmp/hold" "$tmp/tcp-in" "$tmp/vsock.out"
	mkfifo "$tmp/hold"
	"$ip" netns exec "$ns" busybox nc -l -p "$tcp_port" <>"$tmp/hold" >"$tmp/tcp-in" &
	nc_in=$!
	"$ip" netns exec "$ns" busybox nc -l -p $((tcp_port + 1)) <"$tmp/tcp-out" >/dev/null &
	nc_out=$!
	"$KVMKIT_LINUX_VSOCK_ECHO" serve "$vsock_port" "$vsock_msg" "$vsock_len" \
		>"$tmp/vsock.out" 2>&1 &
	vs=$!
	# Listening: both ports in the netns's /proc/net/tcp6 or tcp (state
	# 0A; busybox nc takes IPv6 when it can), and vsock_echo's line.
	ports=$(printf ':%04X :%04X' "$tcp_port" $((tcp_port + 1)))
	i=0
	while [ "$i" -lt 100 ]; do
		n=$("$ip" netns exec "$ns" cat /proc/net/tcp /proc/net/tcp6 | awk -v p="$ports" '
			BEGIN { split(p, w, " ") }
			$4 == "0A" { for (k in w) if (substr($2, length($2) - 4) == w[k]) n++ }
			END { print n + 0 }')
		[ "$n" -eq 2 ] && grep -q KVMKIT-VSOCK-LISTENING "$tmp/vsock.out" && return
		sleep 0.1
		i=$((i + 1))
	done
	echo "FAIL: $variant: the host's TCP and vsock peers are not listening after 10 s"
	fails=$((fails + 1))
}

# peers_stop: those still waiting (the guest never came) are stopped.
peers_stop() {
	for p in $nc_in $nc_out $vs; do
		kill "$p" 2>/dev/null
		wait "$p"
	done
}

# virtio_setup: fresh images, the TCP data and the netns with the tap (host
# 10.0.2.1, guest 10.0.2.2).
virtio_setup() {
	dd if=/dev/zero of="$tmp/disk.img" bs=1M count=1 2>/dev/null
	yes KVMKIT-RO-IMAGE | head -c 1048576 >"$tmp/ro.img"
	ro_sum=$(md5sum <"$tmp/ro.img" | cut -d' ' -f1)
	blk_want=$(yes KVMKIT-VIRTIO-BLK-PATTERN | head -c 65536 | md5sum | cut -d' ' -f1)
	head -c "$tcp_bytes" /dev/urandom >"$tmp/tcp-out"
	tcp_out_sum=$(md5 "$tmp/tcp-out")
	if ! "$ip" -n "$ns" link show kvtap0 >/dev/null 2>&1; then
		# The tap made persistent inside the netns: it never appears in
		# the host's own namespace.
		mkdir -p /var/run/netns
		if ! { "$ip" netns add "$ns" && "$ip" -n "$ns" link set lo up &&
			"$ip" -n "$ns" tuntap add dev kvtap0 mode tap &&
			"$ip" -n "$ns" addr add 10.0.2.1/24 dev kvtap0 &&
			"$ip" -n "$ns" link set kvtap0 up; }; then
			echo "FAIL: network namespace $ns with the tap kvtap0"
			fails=$((fails + 1))
		fi
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
part=2
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
part=3
# Debian's kernel with kvmkit's virtio-mmio devices (ACPI LNRO0005): a
# disk, a read-only disk, the rng, a tap in a netns (ping, TCP both ways),
# vsock (a round trip); both irqchips, edge and level interrupts; the
# second also with the console on virtio-console (hvc0), both ways.
vguest=" kvmkit.virtio kvmkit.net=10.0.2.2,10.0.2.1 kvmkit.tcp=$tcp_port,$tcp_bytes"
vguest="$vguest kvmkit.vsock=$vsock_port,$vsock_msg,$vsock_len"
active && virtio_setup
vargs="--disk $tmp/disk.img --disk $tmp/ro.img,ro --rng --net tap=kvtap0 --vsock cid=3"
virq=edge
boot "virtio devices, 1 vCPU, kernel irqchip, edge" "$kernel" 1 kernel 0 "$vguest"
active && virtio_setup
vargs="$vargs --virtio-irq level --console virtio"
virq=fasteoi
vcon=1
input="hvc-$$"
serial_append=$append
append=$(echo "$append" | sed 's/console=ttyS0/console=hvc0/')
boot "virtio devices, 2 vCPUs, split irqchip, level, console on hvc0" "$kernel" 2 split 0 \
	"$vguest kvmkit.input"
append=$serial_append
vargs= vcon= input=
rm -rf "$tmp"
if [ "$ran" -eq 0 ]; then
	echo "FAIL: no variant ran (part ${KVMKIT_LINUX_PART:-all}, only '${KVMKIT_LINUX_ONLY:-}')"
	fails=$((fails + 1))
fi
echo "linux boot: $ran variant(s), $fails failure(s)"
[ "$fails" -eq 0 ]
