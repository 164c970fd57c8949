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
# Sizes and counts start with a digit: strtoull would skip the blanks and
# take the sign ("-1" is 2^64 - 1 bytes, and the page rounding made it 0).
tab=$(printf '\t')
for bad in " -1" "$tab-1" "+-1" "+1" " 256M" "1G junk" "256M "; do
	expect 2 "^kvmkit: --mem: invalid size" -- "$kvmkit" run --mem "$bad"
done
expect 2 "^kvmkit: --vcpus: invalid count" -- "$kvmkit" run --vcpus " -1"
expect 2 "^kvmkit: --timeout: invalid seconds" -- "$kvmkit" run --timeout " -1"
# Option errors: one line, "kvmkit: CMD: ...", never getopt's own "run: ...".
expect 2 "^kvmkit: run: unknown option '--bogus' (see 'kvmkit run --help')$" -- "$kvmkit" run --bogus
expect 2 "^kvmkit: run: unknown option '-z'" -- "$kvmkit" run -z
expect 2 "^kvmkit: run: ambiguous option '--i'" -- "$kvmkit" run --i x
expect 2 "^kvmkit: run: --mem needs an argument$" -- "$kvmkit" run --mem
expect 2 "^kvmkit: run: --kernel needs an argument$" -- "$kvmkit" run -k
expect 2 "^kvmkit: run: --irq-stats takes no argument$" -- "$kvmkit" run --irq-stats=yes
expect 2 "^kvmkit: run: unexpected argument 'extra'" -- "$kvmkit" run extra
expect 2 "^kvmkit: caps: unknown option '--frob'" -- "$kvmkit" caps --frob
expect 2 "^kvmkit: unknown option '--bogus' (see 'kvmkit --help')$" -- "$kvmkit" --bogus run
expect 2 "^kvmkit: --log needs an argument$" -- "$kvmkit" --log
expect 2 "kvmkit: --testdev: 'auto' is not on or off" -- "$kvmkit" run --testdev auto
expect 2 "unknown command" -- "$kvmkit" frobnicate
expect 2 "unknown level" -- "$kvmkit" --log shouty run
expect 2 "unknown CPU feature" -- "$kvmkit" run --cpu +warp-drive
expect 2 "expected +name" -- "$kvmkit" run --cpu x2apic
expect 0 "" -- "$kvmkit" version

# Both usage texts list every option of `kvmkit run` (tests/unit/test_cli.c
# holds them against the option table itself).
for cmd in "--help" "help" "run --help"; do
	# shellcheck disable=SC2086
	"$kvmkit" $cmd >"$tmp/usage" 2>&1
	missing=
	for opt in --kernel --mem --vcpus --timeout --irqchip --irq-stats --cpu --initrd \
		--append --testdev --help; do
		grep -Eq -- "$opt([^a-z-]|$)" "$tmp/usage" || missing="$missing $opt"
	done
	if [ -z "$missing" ]; then
		echo "ok: kvmkit $cmd lists every run option"; passes=$((passes + 1))
	else
		echo "FAIL: kvmkit $cmd lacks:$missing"; fails=$((fails + 1))
	fi
done
if "$kvmkit" run --help | grep -q "^  125 "; then
	echo "ok: kvmkit run --help documents exit status 125"; passes=$((passes + 1))
else
	echo "FAIL: kvmkit run --help has no exit-status table"; fails=$((fails + 1))
fi
# arm64's vGIC options on x86_64: named and refused (tests/arm64 runs them there).
expect 2 "^kvmkit: run: --gic is arm64-only (this kvmkit is built for x86_64)$" -- \
	"$kvmkit" run --kernel "$guests/hello.elf" --gic v3
expect 2 "^kvmkit: run: --gic-irqs is arm64-only" -- "$kvmkit" run --gic-irqs 128
expect 2 "^kvmkit: --gic: 'v4' is not v2, v3 or auto$" -- "$kvmkit" run --gic v4
expect 2 "^kvmkit: --gic-irqs: invalid count 'x'$" -- "$kvmkit" run --gic-irqs x
finish
