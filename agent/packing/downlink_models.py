"""What the station does with model updates from customs: live, shadow, promotion, rollback.

A ``model`` message carries a manifest signed by the update key (``[sync] update_key``). It is
verified and its files fetched off the station and network threads (:meth:`ModelMessages.prepare`);
only a model that loads is swapped in, on the station thread, with the ``downlink`` record of the
effect. A shadow model scores every parcel beside the live one without changing a verdict; a
promotion makes the running shadow model live (no fetch) and remembers the model it replaced, so
a promoted model that trips the quarantine rolls back to it on its own (a signed record says so).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from prescreen.core.errors import ModelError
from prescreen.core.records import Record, envelope
from prescreen.packing.side_tables import SideChanges
from prescreen.packing.station import Station
from prescreen.risk import model_monitor
from prescreen.risk.screening import RiskModel
from prescreen.sync import model_update
from prescreen.sync.downlink import Downlink, DownlinkError, Effect

log = logging.getLogger("prescreen.downlink")


def load_update(directory: Path) -> RiskModel:
    """Load a fetched model; a model that does not load is removed (nothing half-installed stays).

    Raises:
        UpdateError: the runtime refused the model.
    """
    from prescreen.models.runner import load_risk_model

    try:
        return load_risk_model(directory)
    except ModelError as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise model_update.UpdateError(
            f"model {directory.name} does not load, kept the running model: {exc}"
        ) from None


def is_promotion(message: dict[str, Any]) -> bool:
    """A model message whose *signed* manifest makes the running shadow model live."""
    manifest = message.get("manifest")
    return isinstance(manifest, dict) and manifest.get("promote") is True and not is_shadow(message)


def is_shadow(message: dict[str, Any]) -> bool:
    """A model message whose *signed* manifest asks for shadow mode (scores recorded, no verdicts)."""
    manifest = message.get("manifest")
    return isinstance(manifest, dict) and manifest.get("shadow") is True


class ModelMessages:
    """Model updates for one station: prepared off its thread, swapped in on it."""

    def __init__(self, station: Station, *, update_key: str = "", models_dir: Path | None = None) -> None:
        self.station = station
        self.outbox = station.outbox
        self.update_key = update_key
        self.models_dir = models_dir or station.outbox.path.parent / "models"
        # One update at a time: two never write the models directory at once.
        self.updating = threading.Lock()

    def register(self, downlink: Downlink) -> None:
        """Handle model messages on ``downlink``; roll a promoted model back on a quarantine."""
        downlink.register("model", self.apply, self.prepare)
        self.station.guard.on_quarantine.append(self.roll_back)

    def load(self) -> None:
        """The live and shadow models installed by customs survive restarts (kept in the outbox)."""
        live, shadow = self.outbox.setting("model_path"), self.outbox.setting("shadow_model_path")
        screener = self.station.screener
        if live is not None:
            try:
                screener = screener.with_model(load_update(Path(json.loads(live))))
            except model_update.UpdateError as exc:
                log.error("updated model not loaded, using the configured one", extra={"reason": str(exc)})
        if shadow is not None:
            try:
                screener = screener.with_shadow(load_update(Path(json.loads(shadow))))
            except model_update.UpdateError as exc:
                log.error("shadow model not loaded, screening without one", extra={"reason": str(exc)})
        self.station.use_screener(screener)

    def serial(self) -> int:
        """The serial of the newest manifest installed here (0: none yet)."""
        serial = self.outbox.setting("model_serial")
        return int(serial) if serial is not None else 0

    def prepare(self, message: dict[str, Any]) -> Any:
        """Verify, fetch and load a model update (its own thread): the model, or what stopped it.

        A message applied before is not fetched again (it is acked with its first answer). An
        update arriving while another is fetched waits for it rather than being refused: a refusal
        is committed as the message's answer, and customs re-sends the same message id until it
        gets one, so a refused update could never be installed. (A copy of the same message never
        gets here while the first is in flight: the downlink drops it.)
        """
        message_id = str(message["message_id"])
        if self.outbox.answer_of(message_id) is not None:
            return None
        with self.updating:  # one update at a time: two never write the models directory at once
            if self.outbox.answer_of(message_id) is not None:  # answered while this one waited
                return None
            return self._prepared(message)

    def _prepared(self, message: dict[str, Any]) -> Any:
        """The verified, fetched and loaded model of ``message`` (or the promoted shadow), or the
        error that stopped it (the message is then answered as rejected)."""
        try:
            station = self.station.config.station
            manifest = model_update.verify_manifest(
                message,
                self.update_key,
                site=station.site_id,
                device=station.device_id,
                installed_serial=self.serial(),
            )
            if is_promotion(message):
                return self._shadow_to_promote(manifest)
            return load_update(model_update.fetch(manifest, self.models_dir))
        except (model_update.UpdateError, OSError) as exc:
            return exc

    def _shadow_to_promote(self, manifest: dict[str, Any]) -> Any:
        """The running shadow model, if it is the one the promotion's signed manifest names."""
        shadow = self.station.screener.shadow
        version = getattr(shadow, "version", None)
        if shadow is None or version != manifest["version"]:
            raise model_update.UpdateError(
                f"no shadow model {manifest['version']} to promote (shadow: {version or 'none'})"
            )
        model_update.check_installed(manifest, Path(getattr(shadow, "directory", "")))
        return shadow

    def apply(self, message: dict[str, Any], prepared: Any) -> Effect:
        """Swap the prepared model in (live, shadow or promoted), unless a newer one came first."""
        if isinstance(prepared, BaseException) or prepared is None:
            raise DownlinkError(str(prepared or "model update not prepared"))
        serial = int(message["manifest"]["serial"])  # verified when it was prepared
        if serial <= self.serial():  # another update was installed meanwhile
            raise DownlinkError(f"serial {serial} is not newer than the installed {self.serial()}")
        before = getattr(self.station.screener.model, "version", None)
        path = json.dumps(str(prepared.directory))
        settings: dict[str, str | None] = {"model_serial": str(serial)}
        screener = self.station.screener
        if is_shadow(message):
            text = f"model {prepared.version} in shadow beside live {before}"
            settings["shadow_model_path"] = path
            screener = screener.with_shadow(prepared)
        elif is_promotion(message):  # remember the model it replaces ("": the configured one)
            text = f"model {prepared.version} promoted from shadow to live (was {before})"
            settings.update(
                shadow_model_path=None,
                previous_model_path=self.outbox.setting("model_path") or json.dumps(""),
                model_path=path,
            )
            screener = screener.with_model(prepared).with_shadow(None)
        else:  # sent live: a later quarantine has nothing to roll back to
            text = f"model {prepared.version} active (was {before})"
            settings.update(previous_model_path=None, model_path=path)
            screener = screener.with_model(prepared)
        return Effect(
            text, changes=SideChanges(settings=settings), after=lambda: self.station.use_screener(screener)
        )

    def roll_back(self, quarantine: model_monitor.Quarantine) -> None:
        """A promoted model that trips the quarantine gives way to the live model it replaced.

        Runs on the station thread. Only after a promotion (``previous_model_path`` is set); any
        other quarantined model stays quarantined until a new model or an operator's reinstate.
        The rollback is a signed ``downlink`` record (type ``model``) like the promotion was.
        """
        previous = self.outbox.setting("previous_model_path")
        if previous is None:
            return
        from prescreen.models.runner import load_risk_model

        path = str(json.loads(previous))
        try:
            model = load_risk_model(path or self.station.config.screening.model_path or None)
        except ModelError as exc:
            log.error("promoted model quarantined, previous model not loaded", extra={"reason": str(exc)})
            return
        effect = (
            f"model {quarantine.version} rolled back to {model.version} after its quarantine: "
            f"{quarantine.detail()}"
        )

        def build(seq: int) -> Record:
            record = envelope("downlink", seq, self.station.config.station)
            record["downlink"] = {
                "message_id": f"rollback-{uuid.uuid4().hex}",
                "type": "model",
                "status": "applied",
                "tracking_number": None,
                "effect": effect[:500],
                "parcel_state": None,
            }
            return record

        settings = {
            "previous_model_path": None,
            model_monitor.SETTING: None,
            "model_path": previous if path else None,
        }
        self.outbox.append_with(build, SideChanges(settings=settings))
        self.station.roll_back_model(model)
        log.error("promoted model rolled back", extra={"effect": effect[:300]})
