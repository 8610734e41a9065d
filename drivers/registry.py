"""Open devices by URL, the way pyserial's ``serial_for_url`` picks a handler by scheme.

Scale protocols are the modules of :mod:`prescreen.drivers.scales` that expose ``PROTOCOL``
(as pyserial keeps its URL handlers in ``urlhandler/``): adding a protocol means adding a module,
nothing else. Modules are imported only when a device is opened or the list is asked for, so
importing the drivers costs nothing until then. ``sim://<protocol>``
and ``sim://scanner`` start a simulator on a pty and open its slave end with the real driver.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prescreen.core.errors import UnsupportedDevice
from prescreen.drivers import scales
from prescreen.drivers.base import ScaleProtocol
from prescreen.drivers.scales.reader import ScaleReader
from prescreen.drivers.scales.settle import Settler
from prescreen.drivers.scanners.base import ScannerBase
from prescreen.drivers.scanners.line import TERMINATORS, LineScanner
from prescreen.drivers.scanners.ssi import SsiScanner

if TYPE_CHECKING:  # the simulators (and pty, tty) are imported only for a sim:// URL
    from prescreen.drivers.sim import PtyDevice, ScaleSimulator

SIM_SCHEME = "sim://"


@functools.cache
def scale_protocols() -> dict[str, ScaleProtocol]:
    """Every scale protocol shipped, by name."""
    found: dict[str, ScaleProtocol] = {}
    for info in pkgutil.iter_modules(scales.__path__):
        module = importlib.import_module(f"{scales.__name__}.{info.name}")
        protocol = getattr(module, "PROTOCOL", None)
        if protocol is not None:
            found[protocol.name] = protocol
    return found


def scale_protocol(name: str) -> ScaleProtocol:
    """The protocol called ``name``.

    Raises:
        UnsupportedDevice: no module implements it; the message lists those that do.
    """
    try:
        return scale_protocols()[name]
    except KeyError:
        known = ", ".join(sorted(scale_protocols()))
        raise UnsupportedDevice(f"unknown scale protocol '{name}' (known: {known})") from None


def open_scale(
    url: str,
    protocol: str | None = None,
    *,
    baudrate: int | None = None,
    poll_s: float = 0.05,
    settle_readings: int = 3,
    settle_tolerance_kg: Decimal = Decimal("0.005"),
    settle_s: float = 0.1,
) -> ScaleReader:
    """A started :class:`ScaleReader` on ``url``; the caller closes it.

    ``sim://<protocol>`` starts a simulator (kept as ``reader.simulator``) and reads its pty.
    """
    simulator: ScaleSimulator | None = None
    if url.startswith(SIM_SCHEME):
        name = url[len(SIM_SCHEME) :].split("?", maxsplit=1)[0]
        if protocol is not None and protocol != name:
            raise UnsupportedDevice(f"{url}: simulator speaks {name}, config says {protocol}")
        protocol = name
        from prescreen.drivers.sim import ScaleSimulator

        simulator = ScaleSimulator(scale_protocol(name))
        url = simulator.stable_port()
    if protocol is None:
        raise UnsupportedDevice(f"{url}: say which protocol the scale speaks")
    proto = scale_protocol(protocol)
    settings: Any = proto.settings
    if baudrate is not None:
        import dataclasses

        settings = dataclasses.replace(settings, baudrate=baudrate)
    reader = ScaleReader(
        url,
        proto,
        settings=settings,
        poll_s=poll_s,
        settler=Settler(settle_readings, settle_tolerance_kg, settle_s),
    )
    reader.simulator = simulator
    return reader.start()


SCANNER_PROTOCOLS = ("line", "ssi")
_SCANNER_SIMS = {"scanner": "line", "ssi": "ssi"}


def open_scanner(
    url: str, *, protocol: str = "line", baudrate: int = 9600, suffix: str = "any"
) -> ScannerBase:
    """A started scanner on ``url`` speaking ``protocol`` (``line`` or Zebra ``ssi``).

    ``sim://scanner`` starts a line-mode simulator, ``sim://ssi`` an SSI one (kept as
    ``scanner.simulator``).
    """
    simulator: PtyDevice | None = None
    if url.startswith(SIM_SCHEME):
        name = url[len(SIM_SCHEME) :].split("?", maxsplit=1)[0]
        if name not in _SCANNER_SIMS:
            raise UnsupportedDevice(f"{url}: scanner simulators are sim://scanner and sim://ssi")
        protocol = _SCANNER_SIMS[name]
        from prescreen.drivers.sim import ScannerSimulator, SsiScannerSimulator

        if protocol == "line":
            simulator = ScannerSimulator(suffix=TERMINATORS.get(suffix, (b"\r",))[0])
        else:
            simulator = SsiScannerSimulator()
        url = simulator.stable_port()
    scanner: ScannerBase
    if protocol == "line":
        scanner = LineScanner(url, baudrate=baudrate, suffix=suffix)
    elif protocol == "ssi":
        scanner = SsiScanner(url, baudrate=baudrate)
    else:
        known = ", ".join(SCANNER_PROTOCOLS)
        raise UnsupportedDevice(f"unknown scanner protocol '{protocol}' (known: {known})")
    scanner.simulator = simulator
    return scanner.start()
