#!/bin/sh
# The arm64 Linux boot test: the emulated arm64 host's own Debian kernel
# (an uncompressed Image) boots under `kvmkit run` inside that host, with a
# busybox initramfs whose /init prints /proc/interrupts and powers off.
# The machine has a virtio-rng and a virtio-blk disk (virtio-mmio, named in
# kvmkit's device tree; Debian's virtio_mmio, virtio_blk and virtio-rng
# modules are in the initramfs): the guest reads the disk's pattern and
# random bytes, its /proc/interrupts shows both devices' SPIs, edge on the
# GICv3 host, level (irqfd + resample) on the GICv2 one.
# usage: linux-boot.sh RUNNER KVMKIT MK_INITRAMFS WORKDIR GIC(3|2)
set -u
runner=$1 kvmkit=$2 mkinit=$3 work=$4 gic=$5
cache=${KVMKIT_HOSTS_CACHE:-$HOME/.cache/kvmkit-hosts}/arm64
qemu_args=""
[ "$gic" = 2 ] && qemu_args="--qemu-arg=-M --qemu-arg=virt,gic-version=2"

newest() { ls -d "$cache/$1"/*/.complete 2>/dev/null | sed 's,/.complete$,,' | tail -1; }
# The kernel and busybox are the runner's downloads: a first boot fetches them.
if [ -z "$(newest kernel)" ] || [ -z "$(newest busybox)" ]; then
	"$runner" --arch arm64 -- true >/dev/null || exit 1
fi
kdir=$(newest kernel) bdir=$(newest busybox)
image=$(ls "$kdir"/boot/vmlinuz-* | head -1)
mods=$(ls -d "$kdir"/lib/modules/*/kernel | head -1)
mkdir -p "$work"
python3 "$mkinit" "$bdir/bin/busybox" "$work/initramfs.cpio" \
	"$mods/drivers/block/virtio_blk.ko" "$mods/drivers/char/hw_random/virtio-rng.ko" \
	"$mods/drivers/char/virtio_console.ko" \
	"$mods/drivers/virtio/virtio_mmio.ko" || exit 1
# 4 MiB of zeros with 32 known bytes at 1 MiB.
pattern='kvmkit-arm64-virtio-blk-pattern!'
dd if=/dev/zero of="$work/disk.img" bs=1M count=4 2>/dev/null || exit 1
printf '%s' "$pattern" | dd of="$work/disk.img" bs=1M seek=1 conv=notrunc 2>/dev/null || exit 1
# GICv3 host: edge virtio interrupts, the PMU and SVE asked for; GICv2
# host: level, neither PMU nor SVE (off unless asked for), and the terminal
# on a virtio console (the guest's init writes to /dev/hvc0).
trig=edge trig_dt=Edge cpu="--cpu pmu,sve"
[ "$gic" = 2 ] && trig=level trig_dt=Level cpu="--console virtio"

# shellcheck disable=SC2086
out=$("$runner" --arch arm64 --smp 1 --mem 2G --timeout 600 $qemu_args \
	--payload "$kvmkit" --payload "$image" --payload "$work/initramfs.cpio" \
	--payload "$work/disk.img" -- \
	"$kvmkit run --kernel $image --initrd $work/initramfs.cpio --mem 512M --vcpus 2 \
	 --rng --disk $work/disk.img --virtio-irq $trig $cpu \
	 --timeout 500 --append 'console=ttyS0 panic=-1'; echo kvmkit-status \$?" 2>&1)
echo "$out" | tail -40
chip=GICv3
[ "$gic" = 2 ] && chip=GIC-0
fail=0
check() {
	if echo "$out" | grep -Eq "$1"; then echo "ok   $2"; else echo "FAIL $2"; fail=1; fi
}
check 'KVMKIT-LINUX-INIT cpus=2' "both vCPUs up (PSCI CPU_ON)"
check "$chip +27 +Level +arch_timer" "the virtual timer's PPI on the $chip"
check "$chip +33 +Level +ttyS0" "the UART on SPI 1 (INTID 33), level"
check "KVMKIT-VDA \\[$pattern\\]" "the disk's pattern read from /dev/vda (virtio-blk)"
check 'KVMKIT-HWRNG 16 bytes' "16 bytes from /dev/hwrng (virtio-rng)"
# rng in window 0 on SPI 16 (INTID 48), the disk in window 1 on SPI 17.
check "$chip +48 +$trig_dt +virtio[0-9]" "virtio-rng on SPI 16 (INTID 48), $trig"
check "$chip +49 +$trig_dt +virtio[0-9]" "virtio-blk on SPI 17 (INTID 49), $trig"
if [ "$gic" = 3 ]; then
	check "KVMKIT-FEATURES .* sve( |\\])" "SVE in the guest's /proc/cpuinfo (--cpu sve)"
	check "$chip +23 +Level +arm-pmu" "the PMU on PPI 7 (INTID 23), level (--cpu pmu)"
else
	absent() {
		if echo "$out" | grep -Eq "$1"; then echo "FAIL $2"; fail=1; else echo "ok   $2"; fi
	}
	check "KVMKIT-FEATURES \\[Features" "/proc/cpuinfo read"
	absent "KVMKIT-FEATURES .* sve( |\\])" "no SVE without --cpu sve"
	absent "arm-pmu" "no PMU without --cpu pmu"
	check "^KVMKIT-HVC0" "the guest's output through /dev/hvc0 (virtio-console)"
	check "$chip +50 +$trig_dt +virtio[0-9]" "virtio-console on SPI 18 (INTID 50), $trig"
	absent "virtio_blk virtio[0-9]: .*logical blocks" "no kernel log: the UART is not the terminal"
fi
check 'KVMKIT-LINUX-DONE' "init ran to its end"
check '^kvmkit-status 0$' "poweroff: PSCI SYSTEM_OFF, status 0"
exit $fail
