#!/bin/sh
# `meson install` into a scratch root, then build a program against the
# installed library with pkg-config only, as a user would.
# Usage: test_install.sh BUILD_DIR EXAMPLE_C
set -eu
build=$1 example=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" --quiet >/dev/null
pc=$(find "$root" -name kvmkit.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no kvmkit.pc installed"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pc")
export PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$(dirname "$pc")"
cc -std=gnu17 -Wall -Werror $(pkg-config --cflags kvmkit) "$example" -o "$root/example" \
	$(pkg-config --libs kvmkit) -Wl,-rpath,"$root$prefix/lib/$(basename "$(dirname "$(dirname "$pc")")")"
"$root/example" >/dev/null 2>&1 || true # needs /dev/kvm to do more than start
# Internal symbols must not be exported.
so=$(find "$root" -name 'libkvmkit.so.*' -type f | head -n 1)
if nm -D --defined-only "$so" | awk '{print $3}' | grep -v -e '^kvmkit_' -e '^KVMKIT_[0-9.]*$' | grep -q .; then
	echo "FAIL: non-kvmkit_ symbols exported:"; nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^kvmkit_' | head
	exit 1
fi
echo "ok: installed headers, library and pkg-config build a program; only kvmkit_* exported"
