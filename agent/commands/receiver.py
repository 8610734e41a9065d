"""CLI commands for the customs side and for trust: ``receiver``, ``records``, ``key``.

Kept apart from :mod:`prescreen.commands.main` so each command module stays small; like it, each command
calls one library function and turns the result into output and an exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from prescreen.core.errors import ConfigError
from prescreen.ops import logs
from prescreen.ops.config import DEFAULT_PATH as DEFAULT_CONFIG
from prescreen.ops.config import toml_value

EXIT_FAILURE = 1


def cmd_receiver(args: argparse.Namespace) -> int:
    """Run the reference receiver until SIGTERM/SIGINT."""
    from prescreen.commands.main import _stop_on_signal
    from prescreen.core.signing import DeviceKey, TrustStore
    from prescreen.packing.sdnotify import notify
    from prescreen.sync.receiver import Receiver

    logs.configure(args.log_level)
    if not args.trust and not args.no_verify:
        raise ConfigError("give --trust FILE (station public keys) or, for a test bench only, --no-verify")
    trust = TrustStore.load(args.trust) if args.trust else None
    if not args.key:
        print(
            "prescreen: warning: acks are unsigned (no --key): stations with receiver_keys refuse them",
            file=sys.stderr,
        )
    stop = _stop_on_signal()
    receiver = Receiver(
        args.db,
        trust=trust,
        host=args.host,
        port=args.port,
        prefix=args.prefix,
        shared=not args.no_share,
        mqtt_options={"security": _security(args), "endpoints": _endpoints(args)},
        signer=DeviceKey.load_or_create(args.key) if args.key else None,
        records_via_mqtt=not args.jetstream,
    )
    if args.jetstream:
        return _receive_from_stream(receiver, args, stop)
    receiver.start()
    try:
        if not receiver.mqtt.subscribed.wait(10):
            print(
                f"prescreen: warning: broker {receiver.mqtt.broker} not reachable yet; receiving once it is",
                file=sys.stderr,
            )
        notify(READY="1", STATUS=f"receiving from {receiver.mqtt.broker}")
        stop.wait()
    finally:
        receiver.stop()
    return 0


def _receive_from_stream(receiver: Any, args: argparse.Namespace, stop: Any) -> int:
    """Batches from the JetStream stream (replicated, work queue), acks over the cluster's MQTT."""
    from prescreen.packing.sdnotify import notify
    from prescreen.sync.jetstream import JetStreamReceiver, StreamSettings

    settings = StreamSettings(stream=args.stream, ack_wait_s=args.ack_wait, replicas=args.replicas)
    consumer = JetStreamReceiver(receiver, args.jetstream.split(","), settings).start()
    try:
        if not consumer.wait_ready(30):
            print(f"prescreen: warning: JetStream at {args.jetstream} not ready yet", file=sys.stderr)
        notify(READY="1", STATUS=f"receiving from stream {settings.stream}")
        stop.wait()
    finally:
        consumer.stop()
    return 0


def cmd_records(args: argparse.Namespace) -> int:
    """Query or export stored records, or report sequence gaps per device."""
    from prescreen.commands.compliance import finish_export
    from prescreen.sync.store import Filters, open_store
    from prescreen.trade.exports import write_records

    logs.configure("error")
    store = open_store(args.db)
    try:
        if args.what == "shadow-report":
            from prescreen.sync.shadow import shadow_report

            filters = Filters(device_id=args.device, since=args.since, until=args.until)
            report = shadow_report(json.loads(row["body"]) for row in store.query(filters))
            _print_shadow_report(report, as_json=args.json)
            return 0
        if args.what == "labels":
            from prescreen.sync.labels import label_rows, write_csv

            rows = label_rows(
                json.loads(row["body"])
                for row in store.query(Filters(device_id=args.device, since=args.since, until=args.until))
            )
            count = write_csv(rows, sys.stdout)
            positives = sum(int(r["label"]) for r in rows)
            print(f"{count} labelled parcels, {positives} positive", file=sys.stderr)
            return 0
        if args.what == "gaps":
            gaps = store.gaps()
            if args.json:
                print(json.dumps({"gaps": gaps}))
            else:
                for gap in gaps:
                    print(
                        f"{gap['site_id']}/{gap['device_id']}: seq {gap['first_missing']}"
                        f"..{gap['last_missing']} missing ({gap['missing']})"
                    )
                print(f"{len(gaps)} gaps")
            return EXIT_FAILURE if gaps else 0
        filters = Filters(
            tracking_number=args.tracking,
            device_id=args.device,
            verdict=args.verdict,
            since=args.since,
            until=args.until,
        )
        rows = store.query(filters, limit=args.limit)
    finally:
        store.close()
    bodies = [json.loads(row["body"]) for row in rows]
    return finish_export(
        write_records(bodies, args.format, sys.stdout, allow_incomplete=args.allow_incomplete)
    )


def _print_shadow_report(report: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"stations": report}))
        return

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    for row in report:
        print(
            f"{row['site_id']}/{row['device_id']}: {row['parcels']} parcels; live "
            f"{row['live_version']} raised {row['live_raise_share']:.1%}, shadow "
            f"{row['shadow_version']} would raise {row['shadow_raise_share']:.1%}; "
            f"agreement {row['agreement']:.1%}"
        )
        if row["labelled"]:
            print(
                f"  customs outcomes on {row['labelled']} parcels ({row['found']} found): live precision "
                f"{share(row['live_precision'])} recall {share(row['live_recall'])}; shadow precision "
                f"{share(row['shadow_precision'])} recall {share(row['shadow_recall'])}"
            )
    print(f"{len(report)} station(s) with a shadow model")


def cmd_records_verify(args: argparse.Namespace) -> int:
    """Re-check every stored record's own signature (evidence audit); exit 1 if any fails."""
    from prescreen.core.signing import TrustStore
    from prescreen.sync.store import Filters, open_store

    logs.configure("error")
    trust = TrustStore.load(args.trust)
    store = open_store(args.db)
    try:
        rows = store.query(Filters(device_id=args.device))
    finally:
        store.close()
    failed = 0
    for row in rows:
        rejection = trust.check(json.loads(row["body"]))
        if rejection is not None:
            failed += 1
            print(
                f"{row['record_id']} {row['site_id']}/{row['device_id']} seq {row['seq']}: {rejection.kind}: "
                f"{rejection.reason}"
            )
    print(f"{len(rows)} records checked, {failed} failed")
    return EXIT_FAILURE if failed else 0


def cmd_key(args: argparse.Namespace) -> int:
    """Print this station's trust-store entry (creating the key on a new station)."""
    from prescreen.core.signing import DeviceKey
    from prescreen.ops import config
    from prescreen.packing.app import device_key_path

    logs.configure("warning")
    conf = config.load(args.config)
    key = DeviceKey.load_or_create(device_key_path(conf))
    entry = key.trust_entry(conf.station.site_id, conf.station.device_id)
    if args.trust_file:
        from pathlib import Path

        from prescreen.core import truststore

        print(truststore.add(Path(args.trust_file), entry))
    else:
        print(json.dumps(entry))
    return 0


def cmd_key_new(args: argparse.Namespace) -> int:
    """Set the station's key aside and make a new one; prints the new trust-store entry."""
    import time as clock

    from prescreen.core.signing import DeviceKey
    from prescreen.ops import config
    from prescreen.packing.app import device_key_path

    logs.configure("warning")
    if not args.i_know:
        raise ConfigError(
            "a new key is a new identity: customs must enrol it, and records signed by the old key "
            "stay the old key's. Give --i-know to go ahead"
        )
    conf = config.load(args.config)
    path = device_key_path(conf)
    if path.exists():
        aside = path.with_name(f"{path.name}.replaced-{clock.strftime('%Y%m%dT%H%M%S')}")
        path.rename(aside)
        print(f"old key kept as {aside}", file=sys.stderr)
    key = DeviceKey.load_or_create(path)
    print(json.dumps(key.trust_entry(conf.station.site_id, conf.station.device_id)))
    return 0


def cmd_downlink_send(args: argparse.Namespace) -> int:
    """Send one station a downlink message and print its ack; exit 1 without an applied ack."""
    from prescreen.core.signing import DeviceKey
    from prescreen.sync.customs import new_message, send_downlink

    logs.configure("warning")
    fields: dict[str, Any] = {}
    for name in ("tracking_number", "reason", "text", "record_id", "seller", "outcome", "reason_code"):
        if getattr(args, name):
            fields[name] = getattr(args, name)
    if args.add or args.remove:
        fields["add"], fields["remove"] = args.add, args.remove
    if args.set:
        fields["settings"] = {k: toml_value(v) for k, v in (pair.split("=", 1) for pair in args.set)}
    if args.customs_key:
        fields["keys"] = args.customs_key
    if args.customs_reference:
        fields["customs_reference"] = args.customs_reference
    if args.type == "model":
        fields.update(_signed_manifest(args))
    message = new_message(args.type, **fields)
    ack = send_downlink(
        message,
        site=args.site,
        device=args.device,
        host=args.host,
        port=args.port,
        prefix=args.prefix,
        security=_security(args),
        wait_s=args.wait,
        key=DeviceKey.load_or_create(args.key),
        endpoints=_endpoints(args),
    )
    if ack is None:
        print(
            f"prescreen: error: no ack from {args.site}/{args.device} within {args.wait:g} s", file=sys.stderr
        )
        return EXIT_FAILURE
    print(json.dumps(ack) if args.json else f"{ack['status']}: {ack['detail']} (record {ack['record_id']})")
    return 0 if ack["status"] == "applied" else EXIT_FAILURE


def _signed_manifest(args: argparse.Namespace) -> dict[str, Any]:
    """A model manifest and its signature by the customs update key."""
    from pathlib import Path

    from prescreen.core.records import dumps, rfc3339
    from prescreen.core.signing import DeviceKey

    if not args.manifest or not args.signing_key:
        raise ConfigError("--type model needs --manifest FILE and --signing-key FILE")
    try:
        manifest = json.loads(Path(args.manifest).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{args.manifest}: not a readable JSON manifest: {exc}") from exc
    if args.shadow and args.promote:
        raise ConfigError(
            "--shadow delivers a model beside the live one, --promote makes it live: one of them"
        )
    if args.shadow:  # inside the signed manifest: nobody can flip a shadow model live on the way
        manifest["shadow"] = True
    if args.promote:  # the same manifest as the shadow delivery: the station checks the files match
        manifest["promote"] = True
    # Bound to this station, for an hour, and newer than any before (the serial defaults to now).
    manifest.setdefault("target", {"site_id": args.site, "device_id": args.device})
    manifest.setdefault("expires_at", rfc3339(time.time() + 3600))
    manifest.setdefault("serial", int(time.time()))
    key = DeviceKey.load_or_create(args.signing_key)
    return {"manifest": manifest, "manifest_signature": key.sign_bytes(dumps(manifest).encode())}


def cmd_update_key(args: argparse.Namespace) -> int:
    """Print the public half of a customs-side key (downlink, receiver ack or model update key)."""
    from prescreen.core.signing import DeviceKey

    logs.configure("warning")
    print(DeviceKey.load_or_create(args.signing_key).public_b64)
    return 0


def _security(args: argparse.Namespace) -> Any:
    from prescreen.sync.mqtt import Security

    return Security(
        cafile=args.cafile or "",
        certfile=args.certfile or "",
        keyfile=args.keyfile or "",
        username=args.username or "",
        password=os.environ.get(args.password_env, "") if args.username else "",
    )


def _endpoints(args: argparse.Namespace) -> Any:
    from prescreen.sync.mqtt import parse_endpoints

    return parse_endpoints([h for h in args.hosts.split(",") if h], args.port)


def _add_broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="broker host")
    parser.add_argument("--port", type=int, default=1883, help="broker port")
    parser.add_argument(
        "--hosts",
        default="",
        help="the nodes of one broker cluster, comma-separated host:port, tried in order (instead of --host)",
    )
    parser.add_argument("--prefix", default="prescreen/v1", help="topic prefix")
    parser.add_argument("--cafile", help="CA bundle: TLS with server verification")
    parser.add_argument("--certfile", help="client certificate (mTLS)")
    parser.add_argument("--keyfile", help="client certificate key (mTLS)")
    parser.add_argument("--username", help="broker user name")
    parser.add_argument(
        "--password-env", default="PRESCREEN_RECEIVER_PASSWORD", help="environment variable with the password"
    )


def add_receiver_commands(sub: Any) -> None:
    """receiver, records, downlink and key."""
    from prescreen.commands.compliance import add_export_options

    receiver = sub.add_parser(
        "receiver",
        help="run the reference receiver (customs side)",
        description=(
            "Verify signatures, dedupe, store and ack records. --db takes a SQLite path or a postgresql:// "
            "URL (several receivers may share one)."
        ),
        epilog="Example: prescreen receiver --db receiver.db --trust trust.json --port 1883",
    )
    receiver.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
    receiver.add_argument("--trust", help='trust store JSON: {"keys": [output of `prescreen key show`, ...]}')
    receiver.add_argument("--no-verify", action="store_true", help="accept unsigned records (test benches)")
    receiver.add_argument(
        "--key",
        help="the receiver's ack signing key (PEM, created if missing); stations list its public half "
        "(`prescreen downlink public-key --signing-key FILE`) in [sync] receiver_keys",
    )
    _add_broker_options(receiver)
    receiver.add_argument(
        "--no-share", action="store_true", help="plain subscription instead of a shared one"
    )
    receiver.add_argument(
        "--jetstream",
        help="NATS URLs, comma-separated: take batches from the replicated JetStream stream (work queue, "
        "shared by every receiver) instead of an MQTT subscription; acks still go over MQTT (--hosts)",
    )
    receiver.add_argument("--stream", default="PRESCREEN_RECORDS", help="JetStream stream name")
    receiver.add_argument("--replicas", type=int, default=3, help="stream replicas when it is created")
    receiver.add_argument(
        "--ack-wait", type=float, default=10.0, help="seconds before a batch a receiver holds goes to another"
    )
    receiver.set_defaults(func=cmd_receiver)

    records = sub.add_parser(
        "records",
        help="query, export or check a receiver store",
        description=(
            "Customs side: read the receiver's store (query, export, gaps), re-check signatures, and build "
            "the model's training labels and shadow reports."
        ),
        epilog="Example: prescreen records export --db receiver.db --verdict HOLD --format csv",
    )
    what = records.add_subparsers(dest="what", required=True, metavar="WHAT")
    for name, text in (
        ("query", "matching records as NDJSON"),
        ("export", "matching records as NDJSON, CSV or mapped for a filer (docs/data-mapping.md)"),
    ):
        example = f"prescreen records {name} --db receiver.db --device station-01 --since 2026-11-01"
        each = what.add_parser(
            name,
            help=text,
            description=f"{text[0].upper()}{text[1:]}, in device sequence order. Filters combine with AND.",
            epilog=f"Example: {example}",
        )
        each.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
        each.add_argument("--tracking", help="tracking number")
        each.add_argument("--device", help="device id")
        each.add_argument(
            "--verdict", choices=["CLEAR", "REVIEW", "HOLD"], help="only records with this verdict"
        )
        each.add_argument("--since", help="created at or after (RFC 3339, e.g. 2026-11-01T00:00:00Z)")
        each.add_argument("--until", help="created before (RFC 3339)")
        each.add_argument("--limit", type=int, help="at most this many records")
        add_export_options(each)
        each.set_defaults(func=cmd_records)
    verify = what.add_parser(
        "verify",
        help="re-check every stored record's own signature against the trust store (exit 1 if any fails)",
        description="Evidence check of a store: every record against the station keys in --trust.",
        epilog="Example: prescreen records verify --db receiver.db --trust trust.json",
    )
    verify.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
    verify.add_argument("--trust", required=True, help="trust store JSON")
    verify.add_argument("--device", help="only this device")
    verify.set_defaults(func=cmd_records_verify)
    shadow = what.add_parser(
        "shadow-report",
        help="per station: how a shadow model's raises compare with the live model's",
        description=(
            "Reads verdict records that carry a shadow score (a model sent with `downlink send --type model "
            "--shadow`)."
        ),
        epilog=(
            "Example: prescreen records shadow-report --db receiver.db --since 2026-11-01T00:00:00Z --json"
        ),
    )
    shadow.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
    shadow.add_argument("--device", help="only this device")
    shadow.add_argument("--since", help="created at or after (RFC 3339)")
    shadow.add_argument("--until", help="created before (RFC 3339)")
    shadow.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    shadow.set_defaults(func=cmd_records)
    _add_labels_command(what)
    gaps = what.add_parser(
        "gaps",
        help="missing sequence numbers per device (exit 1 if any)",
        description="A gap is a record a station committed that the store never got.",
        epilog="Example: prescreen records gaps --db receiver.db",
    )
    gaps.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
    gaps.add_argument("--json", action="store_true", help="one JSON object listing the gaps")
    gaps.set_defaults(func=cmd_records)

    _add_downlink_commands(sub)
    _add_key_commands(sub)


def _add_key_commands(sub: Any) -> None:
    """key show and key new: the station's signing key."""
    key = sub.add_parser(
        "key",
        help="this station's signing key",
        description=(
            "The station's Ed25519 signing key: print its trust-store entry for customs, or replace it "
            "after a loss."
        ),
        epilog="Example: prescreen key show --config /etc/prescreen/agent.toml --trust-file trust.json",
    )
    key_what = key.add_subparsers(dest="what", required=True, metavar="WHAT")
    show = key_what.add_parser(
        "show",
        help="print the trust-store entry (creates the key if new)",
        description="Prints the entry a receiver's trust store needs, or adds it to --trust-file.",
        epilog="Example: prescreen key show | prescreen trust add --file trust.json",
    )
    show.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"TOML config file of the agent ({DEFAULT_CONFIG})"
    )
    show.add_argument("--trust-file", help="add the entry to this trust store file instead of printing it")
    show.set_defaults(func=cmd_key)
    new = key_what.add_parser(
        "new",
        help="replace this station's key: a new identity (the old key is kept aside)",
        description=(
            "For a station whose key or outbox is lost: the agent refuses to start with only one of them. "
            "Sequence numbers go on from the last one the old key signed. Enrol the new key with customs "
            "afterwards."
        ),
        epilog="Example: prescreen key new --config /etc/prescreen/agent.toml --i-know",
    )
    new.add_argument(
        "--config", default=DEFAULT_CONFIG, help=f"TOML config file of the agent ({DEFAULT_CONFIG})"
    )
    new.add_argument(
        "--i-know", action="store_true", help="yes: records signed by the old key stay the old key's"
    )
    new.set_defaults(func=cmd_key_new)


def _add_labels_command(what: Any) -> None:
    """records labels: the customs side's training table (issue 17's learning loop)."""
    labels = what.add_parser(
        "labels",
        help="training table: verdicts joined with their customs outcomes (one CSV row per parcel)",
        description=(
            "Label rule: seized, denied_entry, penalty, destroyed -> 1; released, assessment_complete -> 0; "
            "abandoned, returned or no outcome -> no row; the final version of a corrected record counts. "
            "Columns: the `model eval` ones plus station, time, outcome."
        ),
        epilog=(
            "Example: prescreen records labels --db receiver.db --since 2026-06-01T00:00:00Z --format csv > "
            "labels.csv"
        ),
    )
    labels.add_argument("--db", default="receiver.db", help="SQLite path or postgresql:// URL")
    labels.add_argument("--device", help="only this device")
    labels.add_argument("--since", help="scanned at or after (RFC 3339)")
    labels.add_argument("--until", help="records created before (RFC 3339)")
    labels.add_argument("--format", choices=["csv"], default="csv", help="the `model eval` CSV shape")
    labels.set_defaults(func=cmd_records)


def _add_downlink_commands(sub: Any) -> None:
    """downlink send: the customs side's messages to one station."""
    from prescreen.sync.downlink import CUSTOMS_OUTCOMES

    downlink = sub.add_parser(
        "downlink",
        help="customs side: send a station a message",
        description=(
            "Customs side: send one station a signed message (hold, rfi, rfs, dnl, release, watchlist, "
            "feedback, config, model, outcome) and wait for its ack."
        ),
        epilog=(
            "Example: prescreen downlink send --site site-01 --device station-01 --type hold --tracking "
            "1Z5R89390357567127"
        ),
    )
    downlink_what = downlink.add_subparsers(dest="what", required=True, metavar="WHAT")
    send = downlink_what.add_parser(
        "send",
        help="send one message and wait for the station's ack",
        description=(
            "Types: hold, rfi, rfs, dnl, release (with --tracking), watchlist (--add/--remove), feedback "
            "(--text with --record or --seller), config (--set review_score=0.4), model (--manifest, "
            "--signing-key), outcome (--outcome, --reason-code, --customs-reference with --tracking or "
            "--record)."
        ),
        epilog=(
            "Example: prescreen downlink send --site site-01 --device station-01 --type rfs --tracking "
            "1Z999AA10123456784"
        ),
    )
    send.add_argument("--site", required=True, help="the station's site id")
    send.add_argument("--device", required=True, help="the station's device id")
    send.add_argument(
        "--type",
        required=True,
        choices=[
            "hold",
            "rfi",
            "rfs",
            "dnl",
            "release",
            "watchlist",
            "feedback",
            "config",
            "model",
            "outcome",
        ],
        help="the message type (see above)",
    )
    send.add_argument("--manifest", help='model: JSON {"version", "files": [{"name", "url", "sha256"}]}')
    send.add_argument("--signing-key", help="model: the customs update key (PEM, created if missing)")
    send.add_argument(
        "--shadow",
        action="store_true",
        help="model: deliver in shadow mode (every parcel scored into the record, no verdict changed)",
    )
    send.add_argument(
        "--promote",
        action="store_true",
        help="model: make the station's shadow model (the one this manifest names) live; nothing fetched",
    )
    send.add_argument("--tracking", dest="tracking_number", help="the parcel's tracking number")
    send.add_argument("--reason", help="hold, rfi, rfs, dnl: why (kept with the hold)")
    send.add_argument("--text", help="feedback text")
    send.add_argument("--record", dest="record_id", help="record the feedback or outcome is about")
    send.add_argument("--outcome", choices=CUSTOMS_OUTCOMES, help="outcome: what customs decided")
    send.add_argument("--reason-code", help="outcome: customs' reason code (e.g. SEIZ-21)")
    send.add_argument("--customs-reference", help="outcome: the customs case or entry reference")
    send.add_argument("--seller", help="seller the feedback is about")
    send.add_argument("--add", action="append", default=[], help="watchlist: tracking number to hold")
    send.add_argument("--remove", action="append", default=[], help="watchlist: tracking number to drop")
    send.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config: a setting")
    send.add_argument(
        "--key", required=True, help="the customs downlink signing key (PEM, created if missing)"
    )
    send.add_argument(
        "--customs-key", action="append", default=[], help="keys: a new customs public key (base64)"
    )
    send.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the ack")
    send.add_argument("--json", action="store_true", help="print the ack as JSON")
    _add_broker_options(send)
    send.set_defaults(func=cmd_downlink_send)
    update_key = downlink_what.add_parser(
        "public-key",
        aliases=["update-key"],
        help="print the public half of a customs-side key, for the stations' [sync] customs_keys "
        "(downlink key), receiver_keys (receiver ack key) or update_key (model update key)",
        description=(
            "Print the base64 public half of a customs-side Ed25519 key (created if missing), for a "
            "station's [sync] settings. update-key is the same command."
        ),
        epilog="Example: prescreen downlink public-key --signing-key /etc/prescreen-customs/downlink.key",
    )
    update_key.add_argument("--signing-key", required=True, help="the key (PEM, created if missing)")
    update_key.set_defaults(func=cmd_update_key)
