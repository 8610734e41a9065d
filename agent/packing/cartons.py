"""Master cartons and consolidation: what the station remembers between scans.

A master carton is open from its SSCC label's first scan to its second; the parcels scanned
between are checked against its manifest. Recent consignees reveal a shipment split into parcels
to stay under a value line. Each is state with one owner (the station thread).
"""

from __future__ import annotations

import collections
import dataclasses
from decimal import Decimal

from prescreen.core.errors import OrderError
from prescreen.drivers.barcodes import Barcode
from prescreen.packing.orders import Order, OrderSource


@dataclasses.dataclass
class OpenCarton:
    """A master carton being filled: its manifest, tare and the parcels scanned into it so far."""

    carton_id: str
    manifest: frozenset[str]
    tare_kg: float
    order: Order  # the carton's own order: its master bill, port and mode hold for every parcel
    scanned: list[str] = dataclasses.field(default_factory=list)
    weight_kg: Decimal = Decimal(0)

    @classmethod
    def of(cls, barcode: Barcode, order: Order) -> OpenCarton:
        """The carton named by ``barcode``'s SSCC, from its order's ``master_carton`` block."""
        carton = order["master_carton"]
        assert barcode.sscc is not None
        tare = carton.get("tare_kg")
        return cls(
            barcode.sscc,
            frozenset(str(t) for t in carton.get("manifest") or []),
            float(tare) if isinstance(tare, (int, float)) else 0.0,
            order,
        )


def carton_order_of(orders: OrderSource, barcode: Barcode) -> Order | None:
    """The order of the master carton ``barcode`` labels, or None when it labels no carton."""
    if barcode.sscc is None:
        return None
    try:
        order = orders.lookup(barcode.sscc)
    except OrderError:
        return None
    return order if isinstance(order.get("master_carton"), dict) else None


class RecentConsignees:
    """Parcels per consignee (name and first address line) within a sliding window."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._seen: collections.deque[tuple[float, str]] = collections.deque()

    def count_then_add(self, order: Order | None, now: float) -> int:
        """How many parcels to this order's consignee were screened within the window before this
        one; then counts this one (an order naming nobody is not counted)."""
        consignee = (order or {}).get("consignee") or {}
        if not isinstance(consignee, dict):
            return 0
        address = consignee.get("address") or {}
        key = f"{consignee.get('name')}|{address.get('line1') if isinstance(address, dict) else ''}"
        key = key.lower().strip()
        while self._seen and now - self._seen[0][0] > self.window_s:
            self._seen.popleft()
        count = sum(1 for _, k in self._seen if k == key)
        if key != "none|none":
            self._seen.append((now, key))
        return count
