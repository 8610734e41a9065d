#!/usr/bin/env bash
# Debian packages that building and testing the .deb need on the build host (dpkg-deb comes with
# dpkg): lintian to check it, debootstrap for the Debian 12 roots it is built and installed in,
# qemu-user-static and binfmt-support to run the arm64 root on an x86_64 host (and the reverse),
# iproute2 for the roots' own loopback.
# Installs only what is missing (root with apt-get), then makes sure the kernel runs foreign
# binaries through qemu.
set -euo pipefail
missing=()
for tool in debootstrap:debootstrap lintian:lintian update-binfmts:binfmt-support ip:iproute2; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || missing+=("${tool##*:}")
done
ls /usr/libexec/qemu-binfmt/*aarch64* >/dev/null 2>&1 || ls /usr/bin/qemu-aarch64-static >/dev/null 2>&1 \
  || missing+=(qemu-user-static)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: please install ${missing[*]} (needed to build and test the .deb)" >&2; exit 1
  fi
  echo "installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# binfmt_misc: mounted and the foreign architecture enabled, with the F flag (the interpreter is
# opened here, so a chroot needs no copy of qemu inside it).
export PATH="/usr/sbin:/sbin:$PATH"
[ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
foreign=$([ "$(uname -m)" = x86_64 ] && echo qemu-aarch64 || echo qemu-x86_64)
[ -e "/proc/sys/fs/binfmt_misc/$foreign" ] || update-binfmts --enable "$foreign"
grep -q enabled "/proc/sys/fs/binfmt_misc/$foreign" || { echo "error: $foreign binfmt not enabled" >&2; exit 1; }
