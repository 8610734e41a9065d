"""A shipping scale: a protocol module on a :class:`PortReader`, with the settle rule on top."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal

from prescreen.core.errors import FrameError
from prescreen.drivers.base import ScaleProtocol, SerialSettings, WeightReading
from prescreen.drivers.port import PortOwner, PortReader
from prescreen.drivers.scales.settle import Settler, StableWeight

log = logging.getLogger("prescreen.drivers")


class ScaleReader(PortOwner):
    """Reads a scale continuously; :meth:`read_weight` returns the next settled weight.

    Owns its port thread: call :meth:`start` (or use it as a context manager) and :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        protocol: ScaleProtocol,
        *,
        settings: SerialSettings | None = None,
        poll_s: float = 0.05,
        settler: Settler | None = None,
    ) -> None:
        self.protocol = protocol
        self.settler = settler or Settler()
        self._cond = threading.Condition()
        self._stable: StableWeight | None = None
        self._stable_count = 0
        self.latest: WeightReading | None = None
        self.bad_frames = 0
        self._port = PortReader(
            url,
            settings or protocol.settings,
            protocol.framer(),
            self._on_frame,
            name="scale",
            request=protocol.request,
            poll_s=poll_s,
            watch_silence=True,
        )

    def _on_frame(self, frame: bytes, at: float) -> None:
        try:
            reading = self.protocol.parse(frame)
        except FrameError as exc:
            self.bad_frames += 1
            log.debug("bad scale frame", extra={"reason": str(exc), "raw": frame.hex()})
            reading = WeightReading("error", False, None, frame)
        if reading is None:
            return
        stable = self.settler.update(reading, at)
        with self._cond:
            self.latest = reading
            if stable is not None:
                self._stable = stable
                self._stable_count += 1
                self._cond.notify_all()

    @property
    def stable_count(self) -> int:
        """How many settled weights have been seen; pass it to :meth:`read_weight`."""
        return self._stable_count

    def read_weight(
        self, timeout: float, *, after: int | None = None, min_kg: Decimal = Decimal("0.005")
    ) -> tuple[StableWeight, int] | None:
        """Wait for a settled weight of at least ``min_kg`` newer than settle number ``after``.

        Returns (weight, its settle number) or None on timeout. Passing back the number as
        ``after`` guarantees one physical placement on the pan is never used for two parcels.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                current = self._stable
                if (
                    current is not None
                    and (after is None or self._stable_count > after)
                    and current.weight_kg >= min_kg
                    and self.latest is not None
                    and self.latest.stable
                ):
                    return current, self._stable_count
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
