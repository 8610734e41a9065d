#!/usr/bin/env bash
# Usage: packaging/check-deb.sh ARCH DISTDIR
# Tests DISTDIR/prescreen-agent_<version>_<ARCH>.deb where it will run: lintian, then dpkg -i into a
# fresh Debian 12 minbase root of ARCH (arm64 under qemu-user) with doctor on a sim:// config,
# systemd-analyze verify of the installed units and a short demo; then, in another fresh root, an
# upgrade from the previous version with a pending outbox and a device key, remove and purge.
# The previous version is this package repacked at a lower version (<version>~prev): it exercises
# the maintainer scripts' upgrade path and an outbox written at schema v1 (tests/fixtures).
set -euo pipefail
arch=$1 dist=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${PKG_CACHE:-$repo/.cache/pkg}
version=${PKG_VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/agent/_version.py")}
deb="$dist/prescreen-agent_${version}_${arch}.deb"
[ -f "$deb" ] || { echo "error: $deb not built (make deb)" >&2; exit 1; }
start=$(date +%s)
failed=0

work="$cache/work/check-$arch"
rm -rf --one-file-system "$work"
echo "== $deb ($(du -k "$deb" | cut -f1) KiB)"
t0=$(date +%s)
mkdir -p "$work"
if lint=$(lintian --fail-on error,warning "$deb" 2>&1); then
  echo "ok    lintian: no error or warning beyond the explained overrides ($(( $(date +%s) - t0 )) s)" \
    | tee "$work/results"
else
  echo "FAIL  lintian" | tee "$work/results"; grep -v 'running with root privileges' <<<"$lint" | sed 's/^/      /'; failed=1
fi

base=$("$here/root.sh" "$arch" "$cache")
prev="$cache/work/prev-$arch"
rm -rf --one-file-system "$prev"

# The previous version's package.
dpkg-deb -R "$deb" "$prev"
sed -i "s/^Version: .*/Version: ${version}~prev/" "$prev/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz -b "$prev" "$work/prev.deb" >/dev/null
rm -rf --one-file-system "$prev"

for scenario in install upgrade; do
  root="$work/$scenario"
  cp -a "$base" "$root"
  mkdir -p "$root/build"
  cp "$deb" "$root/build/new.deb"
  cp "$work/prev.deb" "$root/build/prev.deb"
  cp "$repo/tests/fixtures/outbox-v1.db" "$root/build/"
  install -m 0755 "$here/check-in-root.sh" "$root/build/"
  echo "-- $scenario ($arch root)"
  if [ "$scenario" = install ]; then
    args=(install /build/new.deb 1883)
  else
    args=(upgrade /build/prev.deb /build/new.deb 1883)
  fi
  "$here/in-root.sh" "$root" env DEMO_PARCELS="${DEMO_PARCELS:-20}" /build/check-in-root.sh "${args[@]}" \
    | tee -a "$work/results" || failed=1
  rm -rf --one-file-system "$root"
done
passed=$(grep -c '^ok ' "$work/results" || true)
failures=$(grep -c '^FAIL ' "$work/results" || true)
rm -rf --one-file-system "$work"
[ "$failures" = 0 ] || failed=1
echo "== $arch: checked in $(( $(date +%s) - start )) s"
echo "$arch: $passed passed, $failures failed"
exit $failed
