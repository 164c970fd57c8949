#!/bin/sh
# Bad user input to `kvmkit run` (no KVM needed: the image and flags are
# checked before /dev/kvm is opened). Usage: test_cli_input.sh KVMKIT GUEST_DIR
kvmkit=$1 guests=$2
. "$(dirname "$0")/cli_lib.sh"

printf 'this is not an ELF file\n' >"$tmp/text"
head -c 100 "$guests/hello.elf" >"$tmp/trunc.elf"
head -c 4200 "$guests/mb_probe.elf" >"$tmp/trunc_mb.elf"
: >"$tmp/empty"

expect 2 "No such file" -- "$kvmkit" run --kernel "$tmp/missing.elf"
expect 2 "not a regular file" -- "$kvmkit" run --kernel "$tmp"
expect 2 "not an ELF" -- "$kvmkit" run --kernel "$tmp/text"
expect 2 "too short" -- "$kvmkit" run --kernel "$tmp/empty"
expect 2 "beyond" -- "$kvmkit" run --kernel "$tmp/trunc.elf"
expect 2 "outside guest RAM" -- "$kvmkit" run --kernel "$guests/hello.elf" --mem 1M
expect 2 "beyond" -- "$kvmkit" run --kernel "$tmp/trunc_mb.elf"
expect 2 "outside guest RAM" -- "$kvmkit" run --kernel "$guests/mb_probe.elf" --mem 4M
expect 2 "needs a multiboot image" -- "$kvmkit" run --kernel "$guests/hello.elf" --append x
expect 2 "No such file" -- "$kvmkit" run --kernel "$guests/mb_probe.elf" --initrd "$tmp/missing"
# An initrd that cannot fit is refused from its size, before it is read: under
# a 256 MiB address-space limit, reading the 512 MiB (sparse) file would fail
# otherwise. ASan builds reserve far more than that: no limit there.
dd if=/dev/null of="$tmp/big.initrd" bs=1048576 seek=512 count=0 2>/dev/null
limit="ulimit -v 262144;"
grep -q __asan_init "$kvmkit" && limit=""
expect 2 "initrd.*536870912 bytes do not fit in guest RAM" -- sh -c "$limit"' exec "$@"' sh \
	"$kvmkit" run --kernel "$guests/mb_probe.elf" --mem 64M --initrd "$tmp/big.initrd"
expect 2 "invalid size" -- "$kvmkit" run --mem 0
expect 2 "invalid size" -- "$kvmkit" run --mem 12Q
expect 2 "physical memory" -- "$kvmkit" run --mem 1000T
expect 2 "invalid count" -- "$kvmkit" run --vcpus 0
expect 2 "invalid count" -- "$kvmkit" run --vcpus two
expect 2 "" -- "$kvmkit" run --bogus
expect 2 "unknown command" -- "$kvmkit" frobnicate
expect 2 "unknown level" -- "$kvmkit" --log shouty run
expect 2 "unknown CPU feature" -- "$kvmkit" run --cpu +warp-drive
expect 2 "expected +name" -- "$kvmkit" run --cpu x2apic
expect 0 "" -- "$kvmkit" version
finish
