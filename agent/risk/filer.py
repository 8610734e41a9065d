"""Findings for what a filer would be rejected for, raised at the station where the seller can
still fix it: no importer of record, no manufacturer to build the MID from, a postal item without
a UPU S10 id, a press without its DEA Form 452 transaction id, a CPSC-regulated line without a
certificate reference.

They run after the screening rules (:meth:`prescreen.risk.screening.Screener.screen`) and read the
same parcel facts; a press is the one the rules found (their ``PILL_PRESS_EQUIPMENT`` finding, on its line)
or one the seller declared. The data is incomplete, not the parcel risky, so what most order
systems cannot fill yet (importer of record, manufacturer, CPSC certificate) is ``info``:
recorded, refused by the exports, on the seller's scorecard, but no reason to send every parcel
of a site to REVIEW (operators would learn to ignore REVIEW). A postal item without its S10 id
and a press without its DEA 452 id are ``review``. Which agency needs what:
:func:`prescreen.risk.entry.agency_needs`, shared with the exports, so the station flags exactly what
the exports would refuse.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from prescreen.risk import codes
from prescreen.risk.entry import EntrySettings, agency_needs, decide_channel, destination, mid, press_on_line
from prescreen.risk.findings import Finding
from prescreen.risk.rules import ParcelFacts


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def findings(facts: ParcelFacts, rule_findings: Sequence[Finding], settings: EntrySettings) -> list[Finding]:
    """The filer findings of one parcel (none without an order: the rules report that)."""
    order = facts.order
    if order is None:
        return []
    return list(_postal(facts, order, settings)) + (
        list(_us_entry(order, [(f.code, f.item) for f in rule_findings]))
        if destination(order) in ("US", None)
        else []
    )


def _postal(facts: ParcelFacts, order: dict[str, Any], settings: EntrySettings) -> Iterator[Finding]:
    account = order.get("carrier_account")
    channel, _ = decide_channel(
        facts.barcode, account if isinstance(account, str) else None, None, settings.account_channels
    )
    if channel == "unknown" and settings.account_channels.get(str(account)) == "postal":
        yield codes.FILER_POSTAL_NO_S10.found(
            f"Sent by post (account {account}) but the label is no UPU S10 item id: print the postal label.",
        )


def _us_entry(order: dict[str, Any], rule_reasons: list[tuple[str, int | None]]) -> Iterator[Finding]:
    importer = order.get("importer_of_record")
    if not isinstance(importer, dict) or not _text(importer.get("name")) or not _text(importer.get("id")):
        yield codes.FILER_IMPORTER_MISSING.found(
            "No importer of record (name and EIN, SSN or CBP-assigned number): no US entry can be filed.",
        )
    items = [i for i in order.get("items") or [] if isinstance(i, dict)]
    for index, item in enumerate(items, start=1):
        maker = item.get("manufacturer")
        maker = maker if isinstance(maker, dict) else {}
        declared = _text(maker.get("mid"))
        if not declared and mid(maker.get("name"), maker.get("address"), item.get("origin_country")) is None:
            yield codes.FILER_MANUFACTURER_MISSING.found(
                f"Item {index}: no manufacturer name and address to build the MID from.", item=index
            )
        needs = agency_needs(item, press_found=press_on_line(rule_reasons, index, item, len(items)))
        if "DEA" in needs and not _text(item.get("dea_452_transaction_id")):
            yield codes.FILER_DEA_452_MISSING.found(
                f"Item {index}: a tablet or capsule press needs the DEA Form 452 transaction id.", item=index
            )
        if "CPSC" in needs and not _text(item.get("cpsc_certificate")):
            yield codes.FILER_CPSC_CERTIFICATE_MISSING.found(
                f"Item {index}: a children's or CPSC-regulated product needs its certificate reference.",
                item=index,
            )
