#!/bin/sh
# kvmkit run --net / --vsock: the user's mistakes, each one line on stderr
# and status 2 before the VM exists (mode "input"); then, with KVM (mode
# "run"), the demo guest runs to its end on a machine with virtio-net on a
# tap (root only) next to the other virtio devices.
. "$(dirname "$0")/cli_lib.sh"
kvmkit=$1
mode=$3

if [ "$mode" = input ]; then
	expect 2 "no tap (tap=NAME\[,vhost\])" -- "$kvmkit" run --net vhost
	expect 2 "unknown option 'fast'" -- "$kvmkit" run --net tap=kvt0,fast
	expect 2 "at most 15 bytes" -- "$kvmkit" run --net tap=a-much-too-long-tap-name
	# lo exists and is no tap: the tap cannot be opened, with its errno.
	expect 2 "cannot open tap lo: " -- "$kvmkit" run --net tap=lo
	if [ ! -e /dev/vhost-net ]; then
		expect 2 "/dev/vhost-net: No such file or directory (load the vhost_net" -- \
			"$kvmkit" run --net tap=lo,vhost
	fi
	if [ ! -e /dev/vhost-vsock ]; then
		expect 2 "/dev/vhost-vsock: No such file or directory" -- "$kvmkit" run \
			--vsock cid=3
	fi
	expect 2 "expected cid=N, N from 3" -- "$kvmkit" run --vsock cid=2
	expect 2 "expected cid=N" -- "$kvmkit" run --vsock 7
	if [ "$(id -u)" -eq 0 ] && [ -c /dev/net/tun ]; then
		expect 2 "need an irqchip" -- "$kvmkit" run --net tap=kvcli$$ --irqchip none
	fi
	finish
	exit
fi

[ -c /dev/kvm ] || { echo "skipped: no /dev/kvm"; exit 77; }
if [ "$(id -u)" -eq 0 ] && [ -c /dev/net/tun ]; then
	# A tap that does not exist yet: made for the run, gone after it.
	tap=kvcli$$
	for chip in kernel split; do
		expect 0 "" -- "$kvmkit" run --irqchip $chip --rng --console virtio --net tap=$tap
	done
	if ip link show "$tap" >/dev/null 2>&1; then
		echo "FAIL: tap $tap still there after the run"
		exit 1
	fi
else
	echo "skip: --net needs root and /dev/net/tun"
fi
finish
