"""Commands for the customs side's link to the stations: ``receiver`` (records in, signed acks out)
and ``downlink send|public-key`` (signed messages to one station, and the keys stations trust).

These run far from any packing station, with :mod:`prescreen.sync` and :mod:`prescreen.core`
only; each calls one library function and turns its answer into lines and an exit code.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from prescreen.commands.helpers import (
    EXIT_FAILURE,
    EXIT_OK,
    LOG_FROM_OPTION,
    Choices,
    add_command,
    add_json_option,
    error,
    print_json,
    stop_on_signal,
    subcommands,
    warn,
)
from prescreen.commands.promotion import add_promotion_options, promotion_allowed
from prescreen.core.errors import ConfigError


def cmd_receiver(args: argparse.Namespace) -> int:
    """Run the reference receiver (``--workers`` processes of it) until SIGTERM/SIGINT, or until
    a worker ends (:mod:`prescreen.commands.receiver_workers`); exit 1 if any worker failed."""
    from prescreen.commands.receiver_workers import start_workers, stop_workers, supervise
    from prescreen.core.signing import DeviceKey, TrustStore

    if not args.trust and not args.no_verify:
        raise ConfigError("give --trust FILE (station public keys) or, for a test bench only, --no-verify")
    if args.workers < 1 or (args.workers > 1 and args.no_share):
        raise ConfigError("--workers N needs N >= 1 and the shared subscription (no --no-share)")
    trust = TrustStore.load(args.trust) if args.trust else None
    if not args.key:
        warn("acks are unsigned (no --key): stations with receiver_keys refuse them")
    stop = stop_on_signal()
    signer = DeviceKey.load_or_create(args.key) if args.key else None  # created once, before workers
    workers = start_workers(args, args.workers - 1) if args.workers > 1 else []
    supervise(workers, stop)
    try:
        code = _serve(args, trust, signer, stop)
    finally:
        workers_ok = stop_workers(workers)
    return code if workers_ok else EXIT_FAILURE


def _serve(args: argparse.Namespace, trust: Any, signer: Any, stop: Any) -> int:
    """One receiver in this process until ``stop`` is set."""
    from prescreen.packing.sdnotify import notify
    from prescreen.sync.receiver import Receiver

    receiver = Receiver(
        args.db,
        trust=trust,
        host=args.host,
        port=args.port,
        prefix=args.prefix,
        shared=not args.no_share,
        mqtt_options={
            "security": _security(args),
            "endpoints": _endpoints(args),
            "subscribe_qos": args.subscribe_qos,
        },
        signer=signer,
        records_via_mqtt=not args.jetstream,
    )
    if args.jetstream:
        return _receive_from_stream(receiver, args, stop)
    receiver.start()
    try:
        if not receiver.mqtt.subscribed.wait(10):
            warn(f"broker {receiver.mqtt.broker} not reachable yet; receiving once it is")
        notify(READY="1", STATUS=f"receiving from {receiver.mqtt.broker}")
        stop.wait()
    finally:
        receiver.stop()
    return EXIT_OK


def _receive_from_stream(receiver: Any, args: argparse.Namespace, stop: Any) -> int:
    """Batches from the JetStream stream (replicated, work queue), acks over the cluster's MQTT."""
    from prescreen.packing.sdnotify import notify
    from prescreen.sync.jetstream import JetStreamReceiver, StreamSettings

    settings = StreamSettings(stream=args.stream, ack_wait_s=args.ack_wait, replicas=args.replicas)
    consumer = JetStreamReceiver(receiver, args.jetstream.split(","), settings).start()
    try:
        if not consumer.wait_ready(30):
            warn(f"JetStream at {args.jetstream} not ready yet")
        notify(READY="1", STATUS=f"receiving from stream {settings.stream}")
        stop.wait()
    finally:
        consumer.stop()
    return EXIT_OK


def cmd_downlink_send(args: argparse.Namespace) -> int:
    """Send one station a downlink message and print its ack; exit 1 without an applied ack."""
    from prescreen.core.signing import DeviceKey, TrustStore
    from prescreen.sync.customs import new_message, send_downlink

    stations = TrustStore.load(args.trust) if args.trust else None
    if stations is None:
        warn("the station's ack is not authenticated (no --trust): anyone on the ack topic can forge it")
    message = new_message(args.type, **_message_fields(args))
    if args.type == "model" and args.promote and not promotion_allowed(args, message["manifest"]):
        return EXIT_FAILURE
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
        subscribe_qos=args.subscribe_qos,
        stations=stations,
    )
    if ack is None:
        error(f"no ack from {args.site}/{args.device} within {args.wait:g} s")
        return EXIT_FAILURE
    if args.json:
        print_json(ack)
    else:
        print(f"{ack['status']}: {ack['detail']} (record {ack['record_id']})")
    return EXIT_OK if ack["status"] == "applied" else EXIT_FAILURE


def _add_ack_options(send: argparse.ArgumentParser) -> None:
    """How long to wait for the station's ack, and whose signature it must carry."""
    send.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the ack")
    send.add_argument(
        "--trust",
        help="the receiver's trust store (station public keys): the ack counts only if signed by "
        "that station's key (without it, acks are not authenticated: a warning says so)",
    )


def _message_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The fields of the message ``--type`` asks for, from the options given."""
    from prescreen.ops.config import toml_value

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
    if args.fields:
        fields["fields"] = [f.strip() for f in args.fields.split(",") if f.strip()]
    if args.type == "model":
        fields.update(_signed_manifest(args))
    return fields


def _signed_manifest(args: argparse.Namespace) -> dict[str, Any]:
    """A model manifest and its signature by the customs update key (bound to this station, for an
    hour, newer than any before; shadow or promote inside the signed manifest)."""
    from prescreen.core.signing import DeviceKey
    from prescreen.sync.customs import model_message

    if not args.manifest or not args.signing_key:
        raise ConfigError("--type model needs --manifest FILE and --signing-key FILE")
    try:
        manifest = json.loads(Path(args.manifest).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{args.manifest}: not a readable JSON manifest: {exc}") from exc
    try:
        message = model_message(
            manifest,
            DeviceKey.load_or_create(args.signing_key),
            site=args.site,
            device=args.device,
            shadow=args.shadow,
            promote=args.promote,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return {k: message[k] for k in ("manifest", "manifest_signature")}


def cmd_update_key(args: argparse.Namespace) -> int:
    """Print the public half of a customs-side key (downlink, receiver ack or model update key)."""
    from prescreen.core.signing import DeviceKey

    print(DeviceKey.load_or_create(args.signing_key).public_b64)
    return EXIT_OK


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
    parser.add_argument(
        "--subscribe-qos", type=int, choices=(0, 1), default=1, help="0 on a NATS 2.9 cluster (see README)"
    )
    parser.add_argument("--cafile", help="CA bundle: TLS with server verification")
    parser.add_argument("--certfile", help="client certificate (mTLS)")
    parser.add_argument("--keyfile", help="client certificate key (mTLS)")
    parser.add_argument("--username", help="broker user name")
    parser.add_argument(
        "--password-env", default="PRESCREEN_RECEIVER_PASSWORD", help="environment variable with the password"
    )


def add_customs_commands(sub: Any) -> None:
    """receiver and downlink."""
    receiver = add_command(
        sub,
        "receiver",
        help="run the reference receiver (customs side)",
        description=(
            "Verify signatures, dedupe, store and ack records. --db takes a SQLite path or a postgresql:// "
            "URL (several receivers may share one)."
        ),
        example="prescreen receiver --db receiver.db --trust trust.json --port 1883",
        run=cmd_receiver,
        log_level=LOG_FROM_OPTION,
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
        "--workers",
        type=int,
        default=1,
        help="receiver processes on the shared subscription, one store (one per core; default 1)",
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
    _add_downlink_commands(sub)


def _add_downlink_commands(sub: Any) -> None:
    """downlink send and downlink public-key: the customs side's messages to one station."""
    downlink = add_command(
        sub,
        "downlink",
        help="customs side: send a station a message",
        description=(
            "Customs side: send one station a signed message (hold, rfi, rfs, dnl, release, watchlist, "
            "feedback, config, model, outcome) and wait for its ack."
        ),
        example="prescreen downlink send --site site-01 --device station-01 --type hold --tracking "
        "1Z5R89390357567127",
    )
    what = subcommands(downlink)
    send = add_command(
        what,
        "send",
        help="send one message and wait for the station's ack",
        description=(
            "Types: hold, rfi (--fields), rfs, dnl, release (with --tracking), watchlist (--add/--remove), "
            "feedback "
            "(--text with --record or --seller), config (--set review_score=0.4), model (--manifest, "
            "--signing-key), outcome (--outcome, --reason-code, --customs-reference with --tracking or "
            "--record), keys (--customs-key, repeatable: the customs keys the station obeys from then on)."
        ),
        example="prescreen downlink send --site site-01 --device station-01 --type rfs --tracking "
        "1Z999AA10123456784",
        run=cmd_downlink_send,
        log_level="warning",
    )
    send.add_argument("--site", required=True, help="the station's site id")
    send.add_argument("--device", required=True, help="the station's device id")
    send.add_argument(
        "--type",
        required=True,
        choices=Choices("prescreen.sync.downlink", "TYPES"),
        metavar="TYPE",
        help="the message type: %(choices)s (see above)",
    )
    _add_message_options(send)
    add_promotion_options(send)
    _add_ack_options(send)
    add_json_option(send, "print the ack as JSON")
    _add_broker_options(send)
    public_key = add_command(
        what,
        "public-key",
        aliases=("update-key",),
        help="print the public half of a customs-side key, for the stations' [sync] customs_keys "
        "(downlink key), receiver_keys (receiver ack key) or update_key (model update key)",
        description=(
            "Print the base64 public half of a customs-side Ed25519 key (created if missing), for a "
            "station's [sync] settings. update-key is the same command."
        ),
        example="prescreen downlink public-key --signing-key /etc/prescreen-customs/downlink.key",
        run=cmd_update_key,
        log_level="warning",
    )
    public_key.add_argument("--signing-key", required=True, help="the key (PEM, created if missing)")


def _add_message_options(send: argparse.ArgumentParser) -> None:
    """What each message type carries (``downlink send``'s description says which type takes which)."""
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
    send.add_argument(
        "--fields",
        help="rfi: the data asked for, comma-separated (invoice, hts_code, description, consignee_tax_id, "
        "manufacturer, origin_country, unit_value, seller, importer_of_record, photo)",
    )
    send.add_argument("--text", help="feedback text")
    send.add_argument("--record", dest="record_id", help="record the feedback or outcome is about")
    send.add_argument(
        "--outcome",
        choices=Choices("prescreen.sync.downlink", "CUSTOMS_OUTCOMES"),
        metavar="OUTCOME",
        help="outcome: what customs decided (%(choices)s)",
    )
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
