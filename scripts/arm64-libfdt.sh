#!/bin/sh
# Unpacks libfdt-dev:arm64 (libfdt.a and its headers) into DIR for the static
# arm64 build, without installing it: the package cannot be installed beside
# libfdt-dev (amd64), which installing it would remove.
#   sh scripts/arm64-libfdt.sh ~/.cache/kvmkit-arm64-libfdt
#   meson setup build-arm64 --cross-file cross/aarch64-linux-gnu.ini \
#         -Dlibfdt_dir=$HOME/.cache/kvmkit-arm64-libfdt
set -eu
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
if [ -f "$dir/usr/lib/aarch64-linux-gnu/libfdt.a" ]; then
	echo "arm64-libfdt: already in $dir"
	exit 0
fi
dpkg --print-foreign-architectures | grep -qx arm64 || {
	echo "arm64-libfdt: dpkg does not know arm64 (dpkg --add-architecture arm64; apt-get update)" >&2
	exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download -q libfdt-dev:arm64 >/dev/null)
mkdir -p "$dir"
dpkg-deb -x "$tmp"/libfdt-dev_*_arm64.deb "$dir"
echo "arm64-libfdt: unpacked into $dir"
