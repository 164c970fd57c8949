# SPDX-License-Identifier: MIT
# Sourced by the Linux boot tests' /init (tests/linux/init) when the command
# line has kvmkit.virtio: loads the Debian kernel's virtio modules (in the
# initramfs's /lib, dependencies first), then drives each virtio-mmio device
# kvmkit gave it and prints what it saw, one KVMKIT- line per fact, for
# run-in-host.sh to check: each device's /proc/interrupts line before and
# after the I/O, the disk's checksum, the read-only disk's refusal, bytes
# from the hardware RNG, ping's summary, the TCP transfers' sizes and
# checksums, the vsock driver's device and its round trip.
# kvmkit.net=GUEST_ADDR,HOST_ADDR sets up eth0 and pings the host's tap;
# kvmkit.tcp= and kvmkit.vsock= (below) ask for the transfers.
bb=busybox
for m in virtio_ring virtio virtio_mmio virtio_blk failover net_failover virtio_net \
	virtio-rng vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport \
	virtio_console; do
	[ -f "/lib/$m.ko" ] || continue
	# Those /init loaded already for console=hvc0 stay.
	[ -d "/sys/module/$(echo $m | $bb tr - _)" ] && continue
	$bb insmod "/lib/$m.ko" || echo "KVMKIT-VIRTIO-INSMOD-FAILED $m"
done
$bb mount -t devtmpfs dev /dev

# virq TAG: per virtio device, its id, its interrupt chip, pin-type and the
# count summed over the CPUs, from its own /proc/interrupts line ("none" if
# it has none of its own).
virq() {
	for d in /sys/bus/virtio/devices/virtio*; do
		[ -e "$d" ] || continue
		$bb awk -v n="${d##*/}" -v id="$($bb cat "$d/device")" -v tag="$1" '
			$NF == n && NF >= 4 {
				s = 0
				for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++)
					s += $i
				print "KVMKIT-VIRTIO-IRQ", tag, n, id, $i, $(i + 1), s
				f = 1
			}
			END { if (!f) print "KVMKIT-VIRTIO-IRQ", tag, n, id, "none" }' /proc/interrupts
		echo "KVMKIT-VIRTIO-DRIVER ${d##*/} $($bb basename "$($bb readlink "$d/driver")")"
	done
}

virq before
if [ -b /dev/vda ]; then
	# 64 KiB of a known text; the test compares the sum with the image file.
	$bb yes KVMKIT-VIRTIO-BLK-PATTERN | $bb head -c 65536 >/pattern
	$bb dd if=/pattern of=/dev/vda bs=4096 conv=fsync 2>/dev/null && echo "KVMKIT-BLK-WROTE"
	$bb sync
	# Read back from the device, not the page cache.
	$bb blockdev --flushbufs /dev/vda
	echo 3 >/proc/sys/vm/drop_caches
	echo "KVMKIT-BLK-SUM $($bb dd if=/dev/vda bs=4096 count=16 2>/dev/null | $bb md5sum | $bb cut -d' ' -f1)"
fi
if [ -b /dev/vdb ]; then
	echo "KVMKIT-BLK-RO-FLAG $($bb cat /sys/block/vdb/ro)"
	# Its own data: the write must fail for being refused, not for a
	# missing source (/pattern exists only with /dev/vda).
	if $bb yes KVMKIT-RO-WRITE | $bb head -c 4096 |
		$bb dd of=/dev/vdb bs=4096 count=1 conv=fsync 2>/dev/null; then
		echo "KVMKIT-BLK-RO-WRITTEN"
	else
		echo "KVMKIT-BLK-RO-REFUSED"
	fi
fi
if [ -c /dev/hwrng ]; then
	# One read: its size and its non-zero bytes.
	$bb head -c 64 /dev/hwrng >/rng
	n=$($bb wc -c </rng)
	nz=$($bb tr -d '\000' </rng | $bb wc -c)
	echo "KVMKIT-RNG $($bb cat /sys/class/misc/hw_random/rng_current) bytes $n nonzero $nz"
fi
net=$($bb sed -n 's/.*kvmkit\.net=\([0-9.,]*\).*/\1/p' /proc/cmdline)
if [ -n "$net" ]; then
	$bb ip link set lo up
	$bb ip link set eth0 up
	$bb ip addr add "${net%,*}/24" dev eth0
	echo "KVMKIT-PING $($bb ping -c 3 -w 30 "${net#*,}" | $bb grep 'packets transmitted')"
fi
tcp=$($bb sed -n 's/.*kvmkit\.tcp=\([0-9,]*\).*/\1/p' /proc/cmdline)
if [ -n "$net" ] && [ -n "$tcp" ]; then
	# kvmkit.tcp=PORT,BYTES: TCP with busybox nc both ways through the
	# host's tap: BYTES from /dev/urandom to HOST:PORT (listening there),
	# then the host's BYTES from HOST:PORT+1; each side's md5 goes to the
	# test. nc shuts its sending side at the end of its stdin and exits
	# at the end of the socket's data, so the receiving end's stdin is a
	# FIFO held open (it must not end first).
	port=${tcp%,*} bytes=${tcp#*,} host=${net#*,}
	md5() { $bb md5sum "$1" | $bb cut -d' ' -f1; }
	# For the log: seconds since $t0.
	since() { $bb awk -v t0="$t0" '{ printf "%.1f", $1 - t0 }' /proc/uptime; }
	$bb mkfifo /tcp-hold
	$bb head -c "$bytes" /dev/urandom >/tcp-out
	virq tcp-before
	t0=$($bb cut -d' ' -f1 /proc/uptime)
	$bb timeout 120 $bb nc "$host" "$port" </tcp-out >/dev/null
	st=$? secs=$(since)
	echo "KVMKIT-TCP-SENT status $st bytes $($bb wc -c </tcp-out) md5 $(md5 /tcp-out) in $secs s"
	t0=$($bb cut -d' ' -f1 /proc/uptime)
	$bb timeout 120 $bb nc "$host" $((port + 1)) <>/tcp-hold >/tcp-in
	st=$? secs=$(since)
	echo "KVMKIT-TCP-RECEIVED status $st bytes $($bb wc -c </tcp-in) md5 $(md5 /tcp-in) in $secs s"
	virq tcp-after
	$bb rm -f /tcp-out /tcp-in
fi
for v in /sys/bus/virtio/drivers/vmw_vsock_virtio_transport/virtio*; do
	[ -e "$v" ] && echo "KVMKIT-VSOCK ${v##*/}"
done
vsock=$($bb sed -n 's/.*kvmkit\.vsock=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$vsock" ]; then
	# kvmkit.vsock=PORT,MSG,LEN: a round trip to the host (CID 2), whose
	# vsock_echo serves PORT (tests/linux/vsock_echo.c).
	port=${vsock%%,*} len=${vsock##*,} msg=${vsock#*,}
	/bin/vsock_echo connect 2 "$port" "${msg%,*}" "$len"
	echo "KVMKIT-VSOCK-STATUS $?"
fi
virq after
