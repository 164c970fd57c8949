#!/bin/sh
# Installs (as root, from Debian 12's apt) whatever kvmkit's build, tests and
# emulated test hosts need and the machine lacks. Cheap when all is present.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

# clang + libclang-rt-14-dev: the libFuzzer and ThreadSanitizer builds.
# liburing (virtio-blk), libfdt (arm64 device trees), libseccomp (sandbox);
# acpica-tools (iasl) and device-tree-compiler (dtc) decompile what the
# tests check. The :arm64 -dev packages: the static arm64 cross build
# (cross/aarch64-linux-gnu.ini; gcc-aarch64-linux-gnu is in tests/hosts/deps.txt).
# Not libfdt-dev:arm64: it cannot be installed beside libfdt-dev (amd64),
# which it would remove; scripts/arm64-libfdt.sh unpacks it instead.
pkgs="gcc make meson ninja-build pkg-config python3 libcmocka-dev libjson-c-dev
zlib1g-dev clang libclang-rt-14-dev valgrind qemu-system-x86 busybox-static cpio
liburing-dev libfdt-dev libseccomp-dev acpica-tools device-tree-compiler
libjson-c-dev:arm64 zlib1g-dev:arm64"
if [ -f "$here/tests/hosts/deps.txt" ]; then
	pkgs="$pkgs $(grep -v '^#' "$here/tests/hosts/deps.txt" | tr '\n' ' ')"
fi

# The arm64 emulated host downloads arm64 .deb files (never installed).
need_arch=""
dpkg --print-foreign-architectures | grep -qx arm64 || need_arch=1

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -z "$missing" ] && [ -z "$need_arch" ]; then
	echo "install-deps: everything is installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
[ -n "$need_arch" ] && dpkg --add-architecture arm64
echo "install-deps: installing$missing"
apt-get update -qq
[ -z "$missing" ] && exit 0
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
