#!/usr/bin/env bash
# Usage: packaging/build-deb.sh ARCH OUTDIR   (ARCH: amd64 | arm64)
# Builds OUTDIR/prescreen-agent_<version>_<ARCH>.deb from this checkout: a staged tree and dpkg-deb.
#
# The virtualenv is made where it will run: inside a Debian 12 root of ARCH (arm64 under qemu-user),
# by that root's own python3.11, from wheels only. The host fetches the wheels (the project's own,
# built here, and its runtime dependencies for cp311 on ARCH); pip inside the root then installs them
# with --no-index, so it is the target's pip that checks every wheel's tags against the target.
set -euo pipefail
arch=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${PKG_CACHE:-$repo/.cache/pkg}
case "$arch" in
  amd64) machine=x86_64 ;;
  arm64) machine=aarch64 ;;
  *) echo "error: unsupported architecture $arch (amd64 or arm64)" >&2; exit 2 ;;
esac
version=${PKG_VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/agent/_version.py")}
[ -n "$version" ] || { echo "error: no __version__ in agent/_version.py" >&2; exit 1; }
start=$(date +%s)
mkdir -p "$out" "$cache"

base=$("$here/root.sh" "$arch" "$cache")
build="$cache/work/build-$arch"
stage="$cache/work/stage-$arch"
rm -rf --one-file-system "$build" "$stage"
mkdir -p "$cache/work"
cp -a "$base" "$build"

# 1. Wheels: the project (pure Python) and its runtime dependencies for CPython 3.11 on ARCH, from the
#    package index alone (this machine's pip configuration, local wheel folders included, is ignored).
export PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_DISABLE_PIP_VERSION_CHECK=1
wheels="$build/build/wheels"
mkdir -p "$wheels"
python3 -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$repo"
platforms=(--platform "manylinux2014_$machine")
for glibc in 17 24 27 28 31 34 35 36; do platforms+=(--platform "manylinux_2_${glibc}_$machine"); done
python3 -m pip download --quiet --only-binary=:all: "${platforms[@]}" --python-version 3.11 \
  --implementation cp --abi cp311 --abi abi3 --abi none --dest "$wheels" \
  "$(ls "$wheels"/prescreen_agent-*.whl)" pip

# 2. The virtualenv, by the target's interpreter; pip runs from its wheel, so the venv ends up with
#    the runtime dependencies only. No .pyc here: postinst compiles them on the station.
"$here/in-root.sh" "$build" /bin/sh -euc '
  export PYTHONDONTWRITEBYTECODE=1
  python3.11 -m venv --without-pip /opt/prescreen
  /opt/prescreen/bin/python "$(ls /build/wheels/pip-*.whl)/pip" install --quiet --no-index \
    --no-compile --no-cache-dir --disable-pip-version-check --find-links /build/wheels prescreen-agent
  /opt/prescreen/bin/prescreen version
  /opt/prescreen/bin/prescreen config example >/build/agent.toml
  find /opt/prescreen -name __pycache__ -prune -exec rm -rf {} +
  # Nothing in site-packages is run directly: no execute bits (shared objects are mapped, not run).
  find /opt/prescreen/lib -type f -perm /111 -exec chmod a-x {} +
' 2>&1 | sed "s/^/[$arch venv] /"

# 3. The staged tree.
mkdir -p "$stage/DEBIAN" "$stage/opt" "$stage/usr/bin" "$stage/lib/systemd/system" \
  "$stage/lib/udev/rules.d" "$stage/usr/lib/sysusers.d" "$stage/usr/lib/tmpfiles.d" \
  "$stage/etc/prescreen" "$stage/usr/share/doc/prescreen-agent" "$stage/usr/share/lintian/overrides"
cp -a "$build/opt/prescreen" "$stage/opt/prescreen"
ln -s /opt/prescreen/bin/prescreen "$stage/usr/bin/prescreen"
for unit in prescreen-agent.service prescreen-agent@.service prescreen-receiver.service; do
  # The station units run as the package's static user: the outbox and device key then have one
  # owner that `sudo -u prescreen prescreen ...` shares (a DynamicUser's files have none).
  sed -e 's|/usr/local/bin/prescreen|/usr/bin/prescreen|' "$repo/systemd/$unit" \
    >"$stage/lib/systemd/system/$unit"
done
for unit in prescreen-agent.service prescreen-agent@.service; do
  sed -i 's/^DynamicUser=yes$/User=prescreen\nGroup=prescreen/' "$stage/lib/systemd/system/$unit"
done
install -m 0644 "$repo/systemd/99-prescreen-devices.rules" "$stage/lib/udev/rules.d/"
install -m 0644 "$here/debian/sysusers.conf" "$stage/usr/lib/sysusers.d/prescreen-agent.conf"
install -m 0644 "$here/debian/tmpfiles.conf" "$stage/usr/lib/tmpfiles.d/prescreen-agent.conf"
install -m 0644 "$build/build/agent.toml" "$stage/etc/prescreen/agent.toml"
install -m 0644 "$here/debian/copyright" "$stage/usr/share/doc/prescreen-agent/copyright"
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
date=$(date -R -d "@$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)")
sed -e "s/@VERSION@/$version/" -e "s/@COMMIT@/$commit/" -e "s/@DATE@/$date/" "$here/debian/changelog.in" \
  | gzip -9n >"$stage/usr/share/doc/prescreen-agent/changelog.gz"
install -m 0644 "$here/debian/lintian-overrides" "$stage/usr/share/lintian/overrides/prescreen-agent"
for script in postinst prerm postrm; do install -m 0755 "$here/debian/$script" "$stage/DEBIAN/"; done
echo /etc/prescreen/agent.toml >"$stage/DEBIAN/conffiles"
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$installed_kb/" \
  "$here/debian/control.in" >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  >"$stage/DEBIAN/md5sums"

# 4. The package: root-owned files whatever the builder's uid (dpkg-deb --root-owner-group).
deb="$out/prescreen-agent_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
rm -rf --one-file-system "$build"
echo "$deb: $(du -k "$deb" | cut -f1) KiB, installs $((installed_kb / 1024)) MiB, built in $(( $(date +%s) - start )) s"
