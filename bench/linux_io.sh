#!/bin/sh
# SPDX-License-Identifier: MIT
# Linux guest I/O: kvmkit vs QEMU -M microvm, the same kernel (Debian's,
# from the tests/hosts cache), the same busybox initramfs (bench/linux/
# init-io as /init, the kernel's virtio modules, bench/linux/iobench.c as
# the measuring tool), 512 MiB, 1 vCPU, alternating in one emulated x86
# host boot (--smp 1). Per repetition four boots:
#   kvmkit        --disk IMG --net tap=kvtap0          blk, net, memory
#   qemu          virtio-blk-device + virtio-net-device (tap, vhost=off)
#   kvmkit-vhost  --net tap=kvtap0,vhost                net
#   qemu-vhost    virtio-net-device (tap, vhost=on)
# QEMU: -M microvm, its defaults (qboot, ISA serial, ACPI) and
# virtio-mmio.force-legacy=false (virtio 1.x, as kvmkit's); the drive with
# QEMU's defaults (cache=writeback, aio=threads) and kvmkit's image file
# is opened buffered too: both go through the host's page cache.
#
# The disk: a fresh raw image of IMG_MIB (default 128) MiB on a tmpfs of
# the emulated host, filled with zeros, per boot. The guest writes and
# reads MIB (32) MiB sequentially in 1 MiB O_DIRECT requests, then does
# 4 KiB O_DIRECT random reads over the whole disk for SECS (3) s at queue
# depth 1 and 4 (4 processes); ROUNDS (3) times, and the best round counts
# (the machine is shared: other work only ever slows a round down).
# The network: a tap kvtap0 (10.0.2.1) in the host, the guest 10.0.2.2;
# NET_MIB (32) MiB guest->host (measured by the host's receiver), ROUNDS
# connections one after the other, then host->guest (measured by the
# guest's receiver) the same way; the best round counts.
# Memory: while the booted guest idles (before any I/O), the VMM's VmRSS
# and RssAnon/RssFile/RssShmem from /proc/PID/status and, from
# /proc/PID/smaps, the Rss of its guest RAM mapping(s) (each mapping of at
# least half the guest's RAM: kvmkit's one anonymous 512 MiB RAM mapping,
# QEMU's RAM block); overhead = VmRSS - that,
# anon_overhead = RssAnon - that (the VMM's private memory: VmRSS also
# counts the mapped binary and libraries, which live on the host's tmpfs
# and so show as RssShmem).
#
# usage: bench/linux_io.sh BUILD_DIR [REPS]   (default 3)
# env: LINUX_IO_MIB, LINUX_IO_SECS, LINUX_IO_NET_MIB, LINUX_IO_IMG_MIB,
#      LINUX_IO_ROUNDS, LINUX_IO_ONLY (a space-separated subset of the four
#      variants)
# Prints "RESULT linux-io VMM rep=N key=value..." and "RESULT linux-mem"
# lines, the guest's interrupt lines (INFO irq), then medians and ratios.
if [ "${1:-}" = --inner ]; then
	kvmkit=$2 qemu=$3 kernel=$4 initrd=$5 iobench=$6 ip=$7 first=$8 reps=$9
	mib=${10} secs=${11} netmib=${12} imgmib=${13} rounds=${14} only=${15}
	# A sign of life for the stall watch outside.
	(while sleep 20; do echo "HEARTBEAT $(cut -d' ' -f1 /proc/uptime)"; done) &
	beat=$!
	tmp=$(mktemp -d)
	mount -t tmpfs -o size=$((imgmib + 64))M tmpfs "$tmp" || exit 1
	img=$tmp/disk.img
	$ip tuntap add dev kvtap0 mode tap || exit 1
	$ip addr add 10.0.2.1/24 dev kvtap0
	$ip link set kvtap0 up
	echo "INFO host: $(uname -r), $(nproc) CPU(s), $(grep MemTotal /proc/meminfo | tr -s ' ')," \
		"$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)," \
		"THP $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
	echo "INFO qemu: $("$qemu" --version | head -n 1)"
	echo "INFO image: raw, ${imgmib} MiB on $(stat -f -c %T "$tmp")"
	now() { cut -d' ' -f1 /proc/uptime; }
	# mem NAME PID: memory of the booted, idle guest's VMM.
	mem() {
		r=$(awk '/^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem|Threads):/ { printf "%s=%s ", $1, $2 }' \
			"/proc/$2/status" | tr -d ':')
		g=$(awk -v half=$((256 * 1024)) '
			/^[0-9a-f]+-[0-9a-f]+ / { size = -1; next }
			$1 == "Size:" { size = $2 }
			$1 == "Rss:" && size >= half { rss += $2; n++; sizes = sizes "," size }
			END { printf "guest_kb=%d guest_maps=%d guest_map_kb=%s", rss, n, substr(sizes, 2) }' \
			"/proc/$2/smaps")
		echo "RESULT linux-mem $1 rep=$rep $r$g" |
			awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
				print $0 " overhead_kb=" v["VmRSS"] - v["guest_kb"] " anon_overhead_kb=" v["RssAnon"] - v["guest_kb"] }'
	}
	# one NAME BLK NET COMMAND...: a boot and its measurements.
	one() {
		name=$1 blk=$2 net=$3
		shift 3
		case " $only " in "  ") ;; *" $name "*) ;; *) return ;; esac
		rm -f "$img" "$tmp"/out* "$tmp"/h*
		: >"$tmp/out"
		if [ "$net" = yes ]; then
			$ip -s link show kvtap0 >"$tmp/tap0"
		fi
		[ "$blk" = yes ] && dd if=/dev/zero of="$img" bs=1M count="$imgmib" 2>/dev/null
		hr=
		if [ "$net" = yes ]; then
			"$iobench" tcp-recv 5001 "$rounds" >"$tmp/hrecv" 2>&1 &
			hr=$!
		fi
		t0=$(now)
		"$@" >"$tmp/out" 2>"$tmp/err" </dev/null &
		pid=$!
		(sleep 240; kill -9 "$pid" 2>/dev/null) &
		wd=$!
		sampled= sending=
		while kill -0 "$pid" 2>/dev/null; do
			if [ -z "$sampled" ] && grep -q KVMKIT-BENCH-IDLE "$tmp/out"; then
				sleep 1
				mem "$name" "$pid" >"$tmp/out.mem"
				sampled=1
			fi
			if [ -z "$sending" ] && grep -q "IOBENCH tcp-listening port=5002" "$tmp/out"; then
				"$iobench" tcp-send 10.0.2.2 5002 "$netmib" 30 "$rounds" >"$tmp/hsend" 2>&1 &
				sending=$!
			fi
			sleep 0.1
		done
		wait "$pid"
		st=$?
		t1=$(now)
		# The host's kernel has stalled right after one VM went and the
		# next came (docs/ARCHITECTURE.md, "Known quirk"): a pause.
		sleep 1
		kill "$wd" 2>/dev/null
		wait "$wd" 2>/dev/null
		[ -n "$sending" ] && wait "$sending"
		# A receiver the guest never reached.
		[ -n "$hr" ] && kill -0 "$hr" 2>/dev/null && kill "$hr"
		[ -n "$hr" ] && wait "$hr"
		tr -d '\r' <"$tmp/out" >"$tmp/out.txt"
		o=$tmp/out.txt
		cat "$tmp/out.mem" 2>/dev/null
		sed -n "s/^KVMKIT-BENCH-IRQ /INFO irq $name rep=$rep /p" "$o"
		sed -n "s/^KVMKIT-BENCH-TCP /INFO guest-tcp $name rep=$rep /p" "$o"
		sed -n "s/^KVMKIT-BENCH-BLK /INFO guest-blk $name rep=$rep /p" "$o"
		if [ "$net" = yes ]; then
			# The tap's counters over the boot (host side: RX = from the guest).
			$ip -s link show kvtap0 | awk -v name="$name" -v rep="$rep" -v old="$(awk '
				/RX:/ { getline; rx = $1 " " $2 " " $4 } /TX:/ { getline; tx = $1 " " $2 " " $4 }
				END { print rx, tx }' "$tmp/tap0")" '
				/RX:/ { getline; rx = $1 " " $2 " " $4 } /TX:/ { getline; tx = $1 " " $2 " " $4 }
				END { split(old, o, " "); split(rx " " tx, n, " ")
					printf "INFO tap %s rep=%s from-guest bytes=%d pkts=%d dropped=%d to-guest bytes=%d pkts=%d dropped=%d\n",
						name, rep, n[1] - o[1], n[2] - o[2], n[3] - o[3], n[4] - o[4], n[5] - o[5], n[6] - o[6] }'
		fi
		if [ "$st" -ne 0 ] || ! grep -q KVMKIT-LINUX-DONE "$o" || grep -q KVMKIT-BENCH-ERROR "$o"; then
			echo "ERROR $name rep=$rep status $st"
			grep -E "ERROR|iobench" "$o" | head -n 5
			tail -n 8 "$o" "$tmp/err"
			return
		fi
		# v WHAT KEY FILE: the best of the rounds.
		v() { sed -n "s/^IOBENCH $1.* $2=\([0-9.]*\).*/\1/p" "$3" | sort -n | tail -n 1; }
		# Every round, for the spread.
		for k in "seqwrite mbs $o seqwrite" "seqread mbs $o seqread" \
			"randread.qd=1 iops $o rand1" "randread.qd=4 iops $o rand4" \
			"tcp-recv mbs $tmp/hrecv tx" "tcp-recv mbs $o rx"; do
			set -- $k
			r=$(sed -n "s/^IOBENCH $1.* $2=\([0-9.]*\).*/\1/p" "$3" | tr '\n' ' ')
			[ -n "$r" ] && echo "INFO rounds $name rep=$rep $4: $r"
		done
		line="RESULT linux-io $name rep=$rep wall_s=$(awk "BEGIN { print $t1 - $t0 }")"
		if [ "$blk" = yes ]; then
			line="$line seqwrite_mbs=$(v seqwrite mbs "$o") seqread_mbs=$(v seqread mbs "$o")"
			line="$line rand1_iops=$(v 'randread qd=1' iops "$o") rand4_iops=$(v 'randread qd=4' iops "$o")"
		fi
		if [ "$net" = yes ]; then
			line="$line tx_mbs=$(v tcp-recv mbs "$tmp/hrecv") rx_mbs=$(v tcp-recv mbs "$o")"
		fi
		echo "$line"
	}
	app="console=ttyS0 quiet"
	q="$qemu -M microvm -accel kvm -cpu host -m 512M -smp 1 -nodefaults -no-reboot -display none"
	q="$q -serial stdio -global virtio-mmio.force-legacy=false -kernel $kernel -initrd $initrd"
	qdisk="-drive id=d0,file=$img,format=raw,if=none -device virtio-blk-device,drive=d0"
	qnet="-netdev tap,id=n0,ifname=kvtap0,script=no,downscript=no"
	rep=$((first - 1))
	while [ "$rep" -lt "$reps" ]; do
		rep=$((rep + 1))
		echo "INFO rep $rep"
		a="$app kvmkit.blk=$mib,$secs kvmkit.net=$netmib kvmkit.rounds=$rounds"
		one kvmkit yes yes "$kvmkit" run --kernel "$kernel" --initrd "$initrd" --mem 512M \
			--vcpus 1 --append "$a" --disk "$img" --net tap=kvtap0
		# shellcheck disable=SC2086
		one qemu yes yes $q -append "$a" $qdisk $qnet,vhost=off -device virtio-net-device,netdev=n0
		a="$app kvmkit.net=$netmib kvmkit.rounds=$rounds"
		one kvmkit-vhost no yes "$kvmkit" run --kernel "$kernel" --initrd "$initrd" --mem 512M \
			--vcpus 1 --append "$a" --net tap=kvtap0,vhost
		# shellcheck disable=SC2086
		one qemu-vhost no yes $q -append "$a" $qnet,vhost=on -device virtio-net-device,netdev=n0
	done
	kill "$beat"
	$ip link del kvtap0
	umount "$tmp"
	rm -rf "$tmp"
	exit 0
fi

build=$(cd "${1:?usage: linux_io.sh BUILD_DIR [REPS]}" && pwd)
reps=${2:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/linux/host-kernel.sh"
ipbin=$(command -v ip) || { echo "no iproute2 ip (tests/hosts/deps.txt)"; exit 1; }
iobench=$build/bench/iobench
[ -x "$iobench" ] || { echo "no $iobench (ninja -C $build)"; exit 1; }
# The kernel's virtio modules, dependencies first (as tests/linux).
kmods=$(ls -d "$(dirname "$kernel")"/../lib/modules/*/kernel | head -n 1)
libs=
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio \
	drivers/block/virtio_blk net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
	[ -f "$kmods/$m.ko" ] || { echo "no $m.ko under $kmods"; exit 1; }
	libs="$libs --lib $kmods/$m.ko"
done
initrd=$build/bench/linux-io.cpio
# shellcheck disable=SC2086
python3 "$src/tests/linux/mkinitramfs.py" "$src/bench/linux/init-io" "$initrd" $libs \
	--lib "$iobench" || exit 1
log=$(mktemp)
part=$log.part
# The emulated host's kernel sometimes stops scheduling altogether
# (docs/ARCHITECTURE.md, "Known quirk"): no line (the inner script beats
# every 20 s) for 120 s ends that host, and a new one runs the
# repetitions not yet started (at most 3 hosts).
first=1
attempt=1
while [ "$first" -le "$reps" ] && [ "$attempt" -le 3 ]; do
	"$src/tests/hosts/kvmkit-host" --arch x86_64 --smp 1 --mem 4G \
		--timeout $(((reps - first + 1) * 420 + 60)) --module tun --module vhost_net \
		--payload "$build/cli/kvmkit" --payload "$qemu" \
		--payload /usr/share/qemu/bios-microvm.bin --payload "$kernel" --payload "$initrd" \
		--payload "$iobench" --payload "$ipbin" --payload "$0" -- \
		sh "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" --inner "$build/cli/kvmkit" \
		"$qemu" "$kernel" "$initrd" "$iobench" "$ipbin" "$first" "$reps" \
		"${LINUX_IO_MIB:-32}" "${LINUX_IO_SECS:-3}" "${LINUX_IO_NET_MIB:-32}" \
		"${LINUX_IO_IMG_MIB:-128}" "${LINUX_IO_ROUNDS:-3}" "${LINUX_IO_ONLY:-}" \
		>"$part" 2>&1 &
	runner=$!
	shown=0
	while :; do
		sleep 5
		n=$(wc -l <"$part")
		[ "$n" -gt "$shown" ] && sed -n "$((shown + 1)),${n}p" "$part" && shown=$n
		kill -0 "$runner" 2>/dev/null || break
		if [ $(($(date +%s) - $(stat -c %Y "$part"))) -gt 120 ]; then
			echo "INFO host $attempt: no line for 120 s: the emulated host stalled; stopping it"
			kill "$runner"
		fi
	done
	wait "$runner"
	st=$?
	sed -n "$((shown + 1)),\$p" "$part"
	cat "$part" >>"$log"
	[ "$st" -eq 0 ] && break
	last=$(sed -n 's/^INFO rep \([0-9]*\).*/\1/p' "$part" | tail -n 1)
	first=$((${last:-$((first - 1))} + 1))
	attempt=$((attempt + 1))
	[ "$first" -le "$reps" ] && echo "INFO host stopped (status $st): repetitions $first.. in a new host"
done
rm -f "$part"
# Medians per VMM and key, then per-pair ratios kvmkit/QEMU (their median).
awk '$1 == "RESULT" {
	for (i = 5; i <= NF; i++) {
		split($i, kv, "=")
		if (kv[2] !~ /^[0-9.]+$/) continue
		k = $2 " " kv[1]
		v[$3, k, ++n[$3, k]] = kv[2]
		keys[k] = 1
		by[$3, k, $4] = kv[2]
	}
	vmm[$3] = 1
	reps[$4] = 1
}
function median(a, c,    i, j, t) {
	for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
}
END {
	for (m in vmm) for (k in keys) {
		c = n[m, k]
		if (!c) continue
		delete a
		for (i = 1; i <= c; i++) a[i] = v[m, k, i]
		printf "MEDIAN %s %s %s n=%d (min %s, max %s)\n", m, k, median(a, c), c, a[1], a[c]
	}
	split("kvmkit:qemu kvmkit-vhost:qemu-vhost", pairs, " ")
	for (p in pairs) {
		split(pairs[p], ab, ":")
		for (k in keys) {
			c = 0
			delete a
			for (r in reps) if ((ab[1], k, r) in by && (ab[2], k, r) in by && by[ab[2], k, r] > 0)
				a[++c] = by[ab[1], k, r] / by[ab[2], k, r]
			if (c) printf "RATIO %s/%s %s %.3f n=%d (min %.3f, max %.3f)\n", ab[1], ab[2], k,
				median(a, c), c, a[1], a[c]
		}
	}
}' "$log" | sort
rm -f "$log"
