#!/usr/bin/env bash
# System packages the tests and the demo use: mosquitto (real MQTT broker), systemd-analyze,
# chromium (the station page is tested in a headless browser through Playwright), and nats-server
# (the cluster tests start their own 3-node NATS cluster with JetStream and MQTT).
# Installs only what is missing, and only when it can (root with apt-get).
set -euo pipefail
missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
[ -x /usr/lib/chromium/chromium ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "warning: please install ${missing[*]} (tests that need them will fail)" >&2
fi
