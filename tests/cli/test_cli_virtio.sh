#!/bin/sh
# kvmkit run --disk / --rng: the user's mistakes, each one line on stderr
# and status 2 (mode "input", no KVM needed: they are caught before the VM
# exists); then, with KVM (mode "run"), a machine with the devices runs
# the demo guest to its normal end.
. "$(dirname "$0")/cli_lib.sh"
kvmkit=$1
mode=$3

img=$tmp/disk.img
dd if=/dev/zero of="$img" bs=1024 count=1024 2>/dev/null

if [ "$mode" = input ]; then
	expect 2 "no-such.img: No such file or directory" -- "$kvmkit" run --disk "$tmp/no-such.img"
	expect 2 "unknown option 'rw' (PATH\[,ro\])" -- "$kvmkit" run --disk "$img,rw"
	expect 2 "no image path" -- "$kvmkit" run --disk ",ro"
	expect 2 "need an irqchip" -- "$kvmkit" run --rng --irqchip none
	expect 2 "need an irqchip" -- "$kvmkit" run --console virtio --irqchip none
	expect 2 "'tty' is not serial or virtio" -- "$kvmkit" run --console tty
	expect 2 "'msi' is not edge or level" -- "$kvmkit" run --rng --virtio-irq msi
	expect 2 "at most 8 disks" -- "$kvmkit" run --disk "$img" --disk "$img" --disk "$img" \
		--disk "$img" --disk "$img" --disk "$img" --disk "$img" --disk "$img" --disk "$img"
	# A file that cannot be opened for writing, given as writable: root
	# writes through modes, not through the immutable flag.
	ro=$tmp/ro.img
	cp "$img" "$ro"
	if [ "$(id -u)" -eq 0 ]; then
		chattr +i "$ro" 2>/dev/null || ro=
	else
		chmod 0444 "$ro"
	fi
	if [ -n "$ro" ]; then
		expect 2 "read-only file given as writable (add ,ro)" -- "$kvmkit" run --disk "$ro"
		[ "$(id -u)" -eq 0 ] && chattr -i "$ro"
	else
		echo "skip: no immutable files here (chattr)"
	fi
	finish
	exit
fi

[ -c /dev/kvm ] || { echo "skipped: no /dev/kvm"; exit 77; }
# The demo guest ignores the devices; the machine builds, runs and tears
# them down (a read-only disk too), in both irqchip modes.
for chip in kernel split; do
	for irq in edge level; do
		expect 0 "" -- "$kvmkit" run --irqchip $chip --virtio-irq $irq --rng \
			--disk "$img" --disk "$img,ro"
	done
done
# With the console on virtio the demo guest's UART banner stays in memory:
# stdout (the virtio-console's) gets nothing, and the run still ends.
expect 0 "" -- "$kvmkit" run --console virtio --rng
if [ -s "$tmp/out" ]; then
	echo "FAIL: --console virtio: the UART's output reached stdout"; fails=$((fails + 1))
fi
expect 0 "" -- "$kvmkit" run --console serial
if ! grep -q "kvmkit demo guest" "$tmp/out"; then
	echo "FAIL: --console serial: no banner on stdout"; fails=$((fails + 1))
fi
finish
