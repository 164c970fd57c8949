#!/bin/sh
# SPDX-License-Identifier: MIT
# Boot to init of a Linux guest: kvmkit vs QEMU -M microvm and -M pc, the
# same kernel (Debian's, the emulated host's own from the tests/hosts cache) and the same
# busybox initramfs (tests/linux: mkinitramfs.py, init), 512 MiB, 1 vCPU,
# `console=ttyS0 quiet`, alternating in one emulated x86 host boot.
# A boot's "to init" is the wall time from the VMM's start to the /init's
# first line on the serial console (KVMKIT-LINUX-INIT, polled every 20 ms);
# "to exit" is until the VMM exits after the guest's poweroff.
#
# usage: bench/linux_boot.sh BUILD_DIR [REPS]   (default 5 repetitions)
# Prints "RESULT linux-boot VMM rep=N init_s=.. exit_s=.. guest_init_s=.."
# lines, a median per VMM and the per-repetition ratios kvmkit/QEMU
# (their median).
if [ "${1:-}" = --inner ]; then
	kvmkit=$2 qemu=$3 kernel=$4 initrd=$5 reps=$6
	tmp=$(mktemp -d)
	now() { cut -d' ' -f1 /proc/uptime; }
	# one NAME COMMAND...: a boot, its console in $tmp/out.
	one() {
		name=$1
		shift
		: >"$tmp/out"
		t0=$(now)
		timeout -k 5 150 "$@" >"$tmp/out" 2>"$tmp/err" </dev/null &
		pid=$!
		while kill -0 "$pid" 2>/dev/null && ! grep -q KVMKIT-LINUX-INIT "$tmp/out"; do
			sleep 0.02
		done
		t1=$(now)
		wait "$pid"
		st=$?
		t2=$(now)
		g=$(sed -n 's/.*KVMKIT-LINUX-INIT uptime \([0-9.]*\).*/\1/p' "$tmp/out" | tr -d '\r')
		if [ "$st" -ne 0 ] || ! grep -q KVMKIT-LINUX-DONE "$tmp/out"; then
			echo "ERROR $name rep=$rep status $st"
			tail -n 5 "$tmp/out" "$tmp/err"
			return
		fi
		echo "RESULT linux-boot $name rep=$rep init_s=$(awk "BEGIN { print $t1 - $t0 }") exit_s=$(awk "BEGIN { print $t2 - $t0 }") guest_init_s=$g"
	}
	append="console=ttyS0 quiet"
	rep=0
	while [ "$rep" -lt "$reps" ]; do
		rep=$((rep + 1))
		one kvmkit "$kvmkit" run --kernel "$kernel" --initrd "$initrd" --mem 512M --vcpus 1 \
			--append "$append"
		# microvm's defaults (ISA serial, ACPI with its GED for poweroff,
		# qboot firmware from QEMU's data directory).
		one qemu-microvm "$qemu" -M microvm -accel kvm -cpu host -m 512M -smp 1 \
			-nodefaults -no-reboot -display none -serial stdio \
			-kernel "$kernel" -initrd "$initrd" -append "$append"
		# QEMU's default PC (i440FX, SeaBIOS with its linuxboot_dma
		# option ROM, ACPI poweroff through PIIX4), no devices added.
		one qemu-pc "$qemu" -M pc -accel kvm -cpu host -m 512M -smp 1 \
			-nodefaults -no-reboot -display none -serial stdio \
			-kernel "$kernel" -initrd "$initrd" -append "$append"
	done
	rm -rf "$tmp"
	exit 0
fi

build=$(cd "${1:?usage: linux_boot.sh BUILD_DIR [REPS]}" && pwd)
reps=${2:-5}
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/bench/linux/host-kernel.sh"
initrd=$build/bench/linux-boot.cpio
python3 "$src/tests/linux/mkinitramfs.py" "$src/tests/linux/init" "$initrd" || exit 1
log=$(mktemp)
"$src/tests/hosts/kvmkit-host" --arch x86_64 --smp 1 --mem 4G --timeout $((reps * 450 + 60)) \
	--payload "$build/cli/kvmkit" --payload "$qemu" --payload /usr/share/qemu/bios-microvm.bin \
	--payload /usr/share/seabios/bios-256k.bin --payload /usr/share/qemu/linuxboot_dma.bin \
	--payload /usr/share/qemu/kvmvapic.bin \
	--payload "$kernel" --payload "$initrd" --payload "$0" -- \
	sh "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" --inner "$build/cli/kvmkit" "$qemu" \
	"$kernel" "$initrd" "$reps" | tee "$log"
# Medians per VMM.
awk '$1 == "RESULT" {
	for (i = 4; i <= NF; i++) { split($i, kv, "="); v[$3 "," kv[1], ++n[$3 "," kv[1]]] = kv[2] }
}
END {
	for (k in n) {
		c = n[k]
		for (i = 1; i <= c; i++) a[i] = v[k, i]
		for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		m = c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
		printf "MEDIAN %s %s n=%d (min %s, max %s)\n", k, m, c, a[1], a[c]
	}
}' "$log" | grep -v ',rep ' | sort
awk '$1 == "RESULT" {
	for (i = 5; i <= NF; i++) { split($i, kv, "="); v[$3, $4, kv[1]] = kv[2]; keys[kv[1]] = 1 }
	reps[$4] = 1
}
END {
	split("qemu-microvm qemu-pc", qs, " ")
	for (q in qs) for (k in keys) {
		c = 0
		delete a
		for (r in reps) if (("kvmkit", r, k) in v && (qs[q], r, k) in v && v[qs[q], r, k] > 0)
			a[++c] = v["kvmkit", r, k] / v[qs[q], r, k]
		for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		if (c) printf "RATIO kvmkit/%s %s %.3f n=%d (min %.3f, max %.3f)\n", qs[q], k,
			c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2, c, a[1], a[c]
	}
}' "$log" | sort
rm -f "$log"
