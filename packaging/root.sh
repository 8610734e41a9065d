#!/usr/bin/env bash
# Usage: packaging/root.sh ARCH CACHE_DIR
# A Debian 12 (bookworm) --variant=minbase root for ARCH (amd64|arm64), made once and kept in
# CACHE_DIR/bookworm-ARCH (gitignored; the station's Depends preinstalled so `dpkg -i` works offline,
# plus mosquitto for the demo's local broker). arm64 runs under qemu-user through binfmt_misc.
# Prints the root's path. Re-made when this script changes (its hash is kept in the root).
set -euo pipefail
arch=$1 cache=$2
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root="$cache/bookworm-$arch"
stamp="$root/.prescreen-root"
want=$(sha256sum "$here/root.sh" | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then echo "$root"; exit 0; fi
mkdir -p "$cache"
tmp="$cache/.bookworm-$arch.tmp"
rm -rf --one-file-system "$tmp" "$root"
start=$(date +%s)
debootstrap --variant=minbase --arch="$arch" \
  --include=python3,systemd,mosquitto,ca-certificates \
  bookworm "$tmp" "$mirror" >"$cache/debootstrap-$arch.log" 2>&1 \
  || { tail -20 "$cache/debootstrap-$arch.log" >&2; exit 1; }
# apt-get clean: the .debs debootstrap left behind are not part of a station.
rm -f "$tmp"/var/cache/apt/archives/*.deb
echo "$want" >"$tmp/.prescreen-root"
mv "$tmp" "$root"
echo "root $arch made in $(( $(date +%s) - start )) s" >&2
echo "$root"
