"""prescreen: prescreen parcels at the packing station and ship preclearance records to customs."""

from __future__ import annotations

from prescreen._version import __version__
from prescreen.core.errors import PrescreenError

__all__ = ["PrescreenError", "__version__"]
