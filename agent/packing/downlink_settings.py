"""What the station does with customs messages that change how it works: screening settings,
feedback to the trade, and a rotation of the customs keys it trusts.

Each is kept in the outbox (settings, feedback), committed with the ``downlink`` record of its
effect, and read again at start, so a restart keeps what customs set.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from prescreen.core.errors import ConfigError
from prescreen.core.signing import KeyRing
from prescreen.ops.config import ScreeningConfig, SyncConfig, check_value
from prescreen.packing.side_tables import SideChanges
from prescreen.packing.station import Station
from prescreen.sync.downlink import REMOTE_SETTINGS, Downlink, DownlinkError, Effect, text_field

log = logging.getLogger("prescreen.downlink")


class SettingsMessages:
    """The handlers of ``config``, ``feedback`` and ``keys`` messages for one station."""

    def __init__(self, station: Station, downlink: Downlink) -> None:
        self.station = station
        self.outbox = station.outbox
        self.downlink = downlink

    def register(self) -> None:
        """Handle settings, feedback and key rotations on the downlink."""
        self.downlink.register("config", self.config)
        self.downlink.register("feedback", self.feedback)
        self.downlink.register("keys", self.keys)

    def load(self) -> None:
        """Apply the customs keys and screening settings saved from the customs side, if any.

        Saved settings are checked again (a value saved by an older version, or edited in the
        database, gets no pass): if refused, the configured settings stay and one line says why.
        """
        rotated = self.outbox.setting("customs_keys")
        if rotated is not None:
            self.downlink.trust(json.loads(rotated))
            log.info(
                "customs keys as rotated by customs", extra={"keys": ",".join(self.downlink.customs.key_ids)}
            )
        values = self.outbox.setting("screening")
        if values is None:
            return
        try:
            config = self.screening_config(json.loads(values))
        except (DownlinkError, ValueError) as exc:
            log.error(
                "saved screening settings refused, using the configured ones", extra={"reason": str(exc)}
            )
            return
        self.station.use_screener(self.station.screener.with_config(config))

    def config(self, message: dict[str, Any], _: Any) -> Effect:
        """New screening thresholds (only :data:`REMOTE_SETTINGS`, each checked like the file's)."""
        config = self.screening_config(message.get("settings"))
        changed = sorted(message["settings"])  # a dict: screening_config checked it
        merged = {k: getattr(config, k) for k in REMOTE_SETTINGS}
        return Effect(
            "screening settings: " + ", ".join(f"{k}={merged[k]}" for k in changed),
            changes=SideChanges(settings={"screening": json.dumps(merged)}),
            after=lambda: self.station.use_screener(self.station.screener.with_config(config)),
        )

    def feedback(self, message: dict[str, Any], _: Any) -> Effect:
        """Customs feedback to the trade, on one record or one seller (for the seller scorecard)."""
        text = str(text_field(message, "text"))
        record_id = text_field(message, "record_id", required=False, limit=64)
        seller = text_field(message, "seller", required=False, limit=200)
        if not record_id and not seller:
            raise DownlinkError("feedback names a record_id or a seller")
        return Effect(
            f"feedback stored for {record_id or seller}: {text}",
            changes=SideChanges(feedback=[(record_id, seller, text)]),
        )

    def keys(self, message: dict[str, Any], _: Any) -> Effect:
        """A rotation: the customs keys trusted from now on (kept; wins over the config file)."""
        keys = rotated_keys(message.get("keys"))

        def after() -> None:
            self.downlink.trust(keys)
            log.warning("customs keys rotated", extra={"keys": ",".join(self.downlink.customs.key_ids)})

        return Effect(
            "customs keys now " + ", ".join(KeyRing(keys).key_ids),
            changes=SideChanges(settings={"customs_keys": json.dumps(keys)}),
            after=after,
        )

    def screening_config(self, settings: Any) -> ScreeningConfig:
        """The running screening config with ``settings`` applied, each value checked like the
        config file's and the rules between them too, or why they are refused."""
        if not isinstance(settings, dict) or not settings:
            raise DownlinkError("config needs a settings object")
        unknown = set(settings) - set(REMOTE_SETTINGS)
        if unknown:
            raise DownlinkError(f"settings not changeable remotely: {', '.join(sorted(unknown))}")
        try:
            parsed = {k: check_value(ScreeningConfig, k, v) for k, v in settings.items()}
            return dataclasses.replace(self.station.screener.config, **parsed)  # rules between keys
        except ConfigError as exc:
            raise DownlinkError(f"bad setting value: {exc}") from None


def rotated_keys(keys: Any) -> list[str]:
    """The new customs keys of a ``keys`` message, checked like ``[sync] customs_keys``."""
    if not isinstance(keys, list) or not 0 < len(keys) <= 8:
        raise DownlinkError("keys needs a list of 1 to 8 customs public keys")
    try:
        check_value(SyncConfig, "customs_keys", keys)
    except ConfigError as exc:
        raise DownlinkError(str(exc)) from None
    return [str(k) for k in keys]
