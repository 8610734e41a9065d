#!/usr/bin/env bash
# Usage: packaging/in-root.sh ROOT COMMAND...
# Runs COMMAND inside the Debian root ROOT (chroot) with /proc, /dev and a fresh /tmp, in mount, PID
# and network namespaces of its own: the mounts vanish and every process started inside is killed
# when COMMAND ends, so nothing of the host stays bound into ROOT (deleting ROOT can never reach the
# host's /dev) and no agent or broker outlives a test; the root has its own loopback and nothing
# else (no port collides with the host's, nothing inside reaches the network). A
# foreign-architecture root runs through qemu.
set -euo pipefail
root=$(realpath "$1"); shift
exec unshare --mount --pid --net --fork --propagation private -- /bin/bash -c '
  set -e
  r=$1; shift
  ip link set lo up
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
  mkdir -p "$r/run" && mount -t tmpfs -o mode=0755 tmpfs "$r/run"
  exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    TERM=dumb "$@"
' in-root "$root" "$@"
