#!/bin/sh
# SPDX-License-Identifier: MIT
# The Linux boot test (meson: x86-linux-boot-1, -2, -3): Debian's kernel, the one the
# emulated x86 host itself runs (tests/hosts caches its package), boots
# under `kvmkit run` inside that host, once per variant in one host boot
# (tests/linux/run-in-host.sh), with a busybox initramfs built here.
# usage: test_linux_boot.sh RUNNER KVMKIT SRCDIR OUTDIR LINUX_PROBE VSOCK_ECHO [PART]
# (VSOCK_ECHO: tests/linux/vsock_echo.c built static, in the host and in
# the initramfs's /bin; PART: 1, 2 or 3, one third of the variants in a
# host boot of its own, or all of them when absent)
runner=$1 kvmkit=$2 src=$3 out=$4 probe=$5 vsock_echo=$6 part=${7:-}
cache=${KVMKIT_HOSTS_CACHE:-$HOME/.cache/kvmkit-hosts}

find_kernel() {
	for k in "$cache"/x86_64/kernel/*/boot/vmlinuz-*; do
		[ -f "$k" ] && echo "$k" && return 0
	done
	return 1
}

kernel=${KVMKIT_LINUX_KERNEL:-$(find_kernel)}
if [ -z "$kernel" ]; then
	# The runner fetches and unpacks the kernel package on its first use.
	"$runner" --arch x86_64 --smp 1 -- true || exit $?
	kernel=$(find_kernel) || { echo "no Debian kernel in $cache"; exit 1; }
fi
# The runner unpacks the ELF vmlinux beside it (it boots the host with it).
pvh=$(ls "$(dirname "$kernel")"/kvmkit-vmlinuz-*.pvh 2>/dev/null | head -n 1)
# The kernel's own pvpanic modules, for the panic variant.
pvmods=
for m in "$(dirname "$kernel")"/../lib/modules/*/kernel/drivers/misc/pvpanic/pvpanic.ko \
	"$(dirname "$kernel")"/../lib/modules/*/kernel/drivers/misc/pvpanic/pvpanic-mmio.ko; do
	[ -f "$m" ] && pvmods="$pvmods --lib $m"
done
# The virtio modules (all modules in Debian's config: CONFIG_VIRTIO_MMIO=m,
# ...; hw_random itself is built in, and the hvc layer virtio_console
# uses) with their dependencies (modinfo depends=): init-virtio.sh loads
# them in this order (/init the first three and virtio_console for
# console=hvc0).
vmods=
kmods=$(ls -d "$(dirname "$kernel")"/../lib/modules/*/kernel | head -n 1)
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio \
	drivers/block/virtio_blk net/core/failover drivers/net/net_failover drivers/net/virtio_net \
	drivers/char/hw_random/virtio-rng net/vmw_vsock/vsock \
	net/vmw_vsock/vmw_vsock_virtio_transport_common net/vmw_vsock/vmw_vsock_virtio_transport \
	drivers/char/virtio_console; do
	[ -f "$kmods/$m.ko" ] || { echo "no $m.ko under $kmods"; exit 1; }
	vmods="$vmods --lib $kmods/$m.ko"
done
mkdir -p "$out"
cpio=$out/linux-test${part:+-$part}.cpio
python3 "$src/mkinitramfs.py" "$src/init" "$cpio" $pvmods $vmods \
	--lib "$src/init-virtio.sh" --bin "$vsock_echo" || exit 1
echo "kernel: $kernel${pvh:+, PVH: $pvh}"
set -- --payload "$kvmkit" --payload "$probe" --payload "$kernel" \
	--payload "$cpio" --payload "$src/run-in-host.sh" --payload "$src/../hosts/watchdog.sh" \
	--payload "$vsock_echo" --env KVMKIT_LINUX_VSOCK_ECHO="$vsock_echo"
[ -n "$pvh" ] && set -- "$@" --payload "$pvh"
[ -z "$pvmods" ] && set -- "$@" --env KVMKIT_LINUX_NO_PVPANIC=1
set -- "$@" --env KVMKIT_LINUX_PROBE="$probe"
[ -n "${KVMKIT_LINUX_ONLY:-}" ] && set -- "$@" --env KVMKIT_LINUX_ONLY
[ -n "$part" ] && set -- "$@" --env KVMKIT_LINUX_PART="$part"
# The virtio variants: a network namespace with a tap in it (iproute2's ip:
# busybox's has neither netns nor tuntap) and vhost-vsock in the host.
ipbin=$(command -v ip) || { echo "no iproute2 ip (tests/hosts/deps.txt)"; exit 1; }
set -- "$@" --payload "$ipbin" --env KVMKIT_LINUX_IP="$ipbin" --module tun --module vhost_vsock
# A run of all eleven variants takes 3-4 minutes (183 s and 241 s, the
# virtio ones with TCP and vsock transfers), a part about one; the limit
# leaves room for a machine several times slower. The emulated host's kernel sometimes stops
# scheduling altogether (docs/ARCHITECTURE.md, "Known quirk"): the runner
# sees its heartbeat stop and the wrapper retries such a host, never a
# failing test (whose hang the watchdog in run-in-host.sh reports).
exec sh "$src/../hosts/retry-on-host-lockup.sh" \
	"$runner" --arch x86_64 --smp 1 --mem 6G --timeout 900 "$@" -- \
	sh "$src/run-in-host.sh" "$kvmkit" "$kernel" "$cpio" $pvh
