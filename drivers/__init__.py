"""Serial device drivers: shipping scales and barcode scanners, addressed by URL.

``open_scale(url, protocol=...)`` and ``open_scanner(url)`` return readers that run the real
wire protocol over pyserial on a path (``/dev/ttyUSB0``), a pyserial URL (``loop://``,
``socket://``) or a built-in simulator on a pty (``sim://mt-sics``, ``sim://scanner``).
"""

from __future__ import annotations

from prescreen.drivers.base import Scan, SerialSettings, WeightReading
from prescreen.drivers.registry import open_scale, open_scanner, scale_protocol, scale_protocols

__all__ = [
    "Scan",
    "SerialSettings",
    "WeightReading",
    "open_scale",
    "open_scanner",
    "scale_protocol",
    "scale_protocols",
]
