#!/bin/bash
# Runs inside a fresh Debian 12 root (packaging/in-root.sh), as site IT would on a station:
#   check-in-root.sh install   /build/NEW.deb PORT  -> dpkg -i, doctor on sim://, units verified, demo
#   check-in-root.sh upgrade   /build/OLD.deb /build/NEW.deb PORT
#                              -> old version with a pending outbox and a key, upgraded, then remove/purge;
#                                 an outbox from a newer agent fails the upgrade
# Prints one "ok"/"FAIL" line per check (with figures) and exits non-zero on any FAIL.
set -uo pipefail
failed=0
ok() { echo "ok    $*"; }
fail() { echo "FAIL  $*"; failed=1; }
check() {  # check NAME COMMAND...: ok when COMMAND succeeds, its output shown on failure
    local name=$1 out; shift
    if out=$("$@" 2>&1); then ok "$name"; else fail "$name"; echo "$out" | sed 's/^/      /'; fi
}
contains() {  # contains NAME TEXT PATTERN: ok when TEXT has a line matching PATTERN
    if grep -q -- "$3" <<<"$2"; then ok "$1"; else fail "$1"; sed 's/^/      /' <<<"$2"; fi
}
as_agent() { runuser -u prescreen -- "$@"; }
seconds() { python3 -c "import time; print(f'{time.monotonic() - $1:.1f}')"; }
now() { python3 -c 'import time; print(time.monotonic())'; }

sim_config() {  # a station on simulated devices, syncing to the broker on 127.0.0.1:PORT
    install -d -m 0755 /srv/orders
    : >/srv/orders/orders.ndjson
    cat <<TOML
[station]
device_id = "pkg-check-01"
site_id = "ci"
filer_code = "CI"

[scanner]
url = "sim://scanner"

[scale]
url = "sim://mt-sics"
protocol = "mt-sics"

[orders]
source = "file"
path = "/srv/orders/orders.ndjson"

[outbox]
path = "/var/lib/prescreen/outbox.db"

[sync]
host = "127.0.0.1"
port = $1
allow_insecure = true   # the check's own mosquitto on the root's loopback, without TLS or a login
TOML
}

start_broker() {
    mosquitto -p "$1" -d
    for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" \
        2>/dev/null && return 0; sleep 0.2; done
    echo "mosquitto did not start on port $1" >&2; return 1
}

dpkg_install() {  # dpkg_install DEB LABEL: timed, non-interactive, the admin's conffiles kept
    local t0; t0=$(now)
    if out=$(DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i "$1" 2>&1); then
        ok "$2: dpkg -i in $(seconds "$t0") s"
    else
        fail "$2: dpkg -i"
    fi
    grep -v '^\(Selecting\|(Reading\|Preparing\|Unpacking\|Setting up\)' <<<"$out" | sed 's/^/      /'
}

installed_layout() {
    check "user prescreen in group dialout" sh -c 'id -nG prescreen | grep -qw dialout'
    check "/var/lib/prescreen 0700 prescreen:prescreen" \
        test "$(stat -c '%a %U:%G' /var/lib/prescreen)" = "700 prescreen:prescreen"
    check "/etc/prescreen 0750 root:prescreen, agent.toml 0640 root:prescreen" test \
        "$(stat -c '%a %U:%G' /etc/prescreen /etc/prescreen/agent.toml | tr '\n' ' ')" \
        = "750 root:prescreen 640 root:prescreen "
    check "agent.toml is a conffile" grep -qx /etc/prescreen/agent.toml /var/lib/dpkg/info/prescreen-agent.conffiles
    check "prescreen-agent.service enabled" test -L /etc/systemd/system/multi-user.target.wants/prescreen-agent.service
    check "prescreen on PATH" prescreen version
}

verify_units() {
    local unit instance=/tmp/units/prescreen-agent@station-02.service
    mkdir -p /tmp/units && ln -sf /lib/systemd/system/prescreen-agent@.service "$instance"
    for unit in /lib/systemd/system/prescreen-agent.service "$instance" /lib/systemd/system/prescreen-receiver.service; do
        check "systemd-analyze verify $(basename "$unit")" sh -c \
            "out=\$(systemd-analyze verify '$unit' 2>&1); echo \"\$out\"; [ -z \"\$out\" ]"
    done
    local exposure
    exposure=$(systemd-analyze security --offline=true /lib/systemd/system/prescreen-agent.service 2>/dev/null \
        | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    if [ -n "$exposure" ]; then ok "installed agent unit: systemd-analyze security exposure $exposure"
    else fail "systemd-analyze security on the installed agent unit"; fi
}

case "$1" in
install)
    deb=$2 port=$3
    dpkg_install "$deb" "install"
    contains "enabled, not started: the example config does not pass config check yet" "$out" \
        "enabled but not started"
    installed_layout
    sim_config "$port" >/etc/prescreen/sim.toml
    start_broker "$port" || fail "broker"
    t0=$(now)
    if out=$(as_agent prescreen doctor --config /etc/prescreen/sim.toml 2>&1); then
        ok "prescreen doctor on a sim:// config in $(seconds "$t0") s: $(echo "$out" | tail -1)"
    else
        fail "prescreen doctor on a sim:// config"
    fi
    echo "$out" | sed 's/^/      /'
    verify_units
    if out=$(cd /tmp && as_agent prescreen demo --parcels "${DEMO_PARCELS:-20}" --json 2>&1); then
        ok "prescreen demo: $(tail -1 <<<"$out" | python3 -c '
import json, sys
s = json.loads(sys.stdin.read())
lat = s["latency_ms"]
print("{} parcels in {} s, {} committed, {} received, {} duplicates, verdict latency p50 {} ms p99 {} ms,"
      " model {}, broker {}".format(s["parcels"], s["seconds"], s["committed"], s["received"],
      s["duplicates"], lat["p50"], lat["p99"], s["model"], s["broker"]))')"
    else
        fail "prescreen demo"; echo "$out" | tail -20 | sed 's/^/      /'
    fi
    ;;
upgrade)
    old=$2 new=$3 port=$4
    dpkg_install "$old" "previous version"
    start_broker "$port" || fail "broker"
    sim_config "$port" >/etc/prescreen/agent.toml   # site IT edited the one file
    key_before=$(as_agent prescreen key show --config /etc/prescreen/agent.toml)
    # An outbox an older agent left: schema v1, 5 records customs has not acknowledged yet.
    install -o prescreen -g prescreen -m 0600 /build/outbox-v1.db /var/lib/prescreen/outbox.db
    dpkg_install "$new" "upgrade"
    check "agent.toml as site IT edited it" grep -q pkg-check-01 /etc/prescreen/agent.toml
    check "device key kept" test "$(as_agent prescreen key show --config /etc/prescreen/agent.toml)" = "$key_before"
    contains "the upgrade ran the migration" "$out" "outbox schema v[0-9]* (migrated from v1)"
    contains "pending records kept (doctor: 5 waiting)" \
        "$(as_agent prescreen doctor --config /etc/prescreen/agent.toml 2>&1)" "5 record(s) waiting"
    out=$(dpkg -r prescreen-agent 2>&1)
    contains "remove says the outbox and key are kept" "$out" "keeping /var/lib/prescreen"
    check "remove keeps the outbox and the key" test -s /var/lib/prescreen/outbox.db -a -s /var/lib/prescreen/device.key
    out=$(dpkg -P prescreen-agent 2>&1)
    contains "purge warns: 5 records not yet acknowledged and the key" "$out" \
        "WARNING: purging prescreen-agent deletes /var/lib/prescreen: 5 record(s) not yet"
    check "purge deleted the outbox and key" test ! -e /var/lib/prescreen
    # An outbox written by a newer agent: the upgrade stops with the reason and leaves the file be.
    dpkg_install "$new" "install again"
    sim_config "$port" >/etc/prescreen/agent.toml
    install -o prescreen -g prescreen -m 0600 /build/outbox-v1.db /var/lib/prescreen/outbox.db
    python3 -c 'import sqlite3, sys
with sqlite3.connect(sys.argv[1]) as conn:
    conn.execute("UPDATE meta SET value = 99 WHERE key = ?", ("schema_version",))' /var/lib/prescreen/outbox.db
    if out=$(DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i "$new" 2>&1); then
        fail "an outbox from a newer agent fails the upgrade"; sed 's/^/      /' <<<"$out"
    else
        contains "an outbox from a newer agent fails the upgrade, with the reason" "$out" \
            "outbox schema v99 is newer than this agent understands"
    fi
    ;;
esac
exit $failed
