#!/bin/sh
# Quick start, step 1: install what is missing, build kvmkit, run the demo VM.
# Where this machine has no /dev/kvm the demo runs inside an emulated x86
# host (QEMU TCG with a Debian kernel and KVM), exactly as the tests do.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build
if [ -c /dev/kvm ]; then
	exec build/cli/kvmkit run
fi
echo "setup: no /dev/kvm here; running the demo inside an emulated x86 host (first run downloads a Debian kernel)"
exec python3 tests/hosts/kvmkit-host --mem 2G --payload "$PWD/build/cli/kvmkit" -- "$PWD/build/cli/kvmkit" run
