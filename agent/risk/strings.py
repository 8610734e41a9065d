"""Every word the operator sees, in every language the station speaks, in one place.

Why one module: a site adds a language by adding one column here (and one key per finding code in
``data/findings.toml``, the registry of :mod:`prescreen.risk.codes`), and a reviewer can check
that nothing is left untranslated (the tests do). Reason texts are plain words with the parcel's
own figures (``Declared 0.2 kg, scale says 1.4 kg``), built from the committed record, so the
screen never says anything the record does not.
"""

from __future__ import annotations

from typing import Any

from prescreen.risk import codes
from prescreen.risk.findings import item_of

LANGUAGES = ("en", "es")

UI: dict[str, dict[str, str]] = {
    "en": {
        "title": "Packing station",
        "CLEAR": "CLEAR",
        "REVIEW": "REVIEW",
        "HOLD": "HOLD",
        "do_CLEAR": "Ship it: put on the outbound belt.",
        "do_REVIEW": "Put in the review tray for the supervisor.",
        "do_HOLD": "Put on the hold shelf, then scan the shelf label or touch Confirm.",
        "confirm": "Confirm: on the hold shelf",
        "confirmed": "On the hold shelf: recorded.",
        "waiting": "Scan a parcel",
        "tracking": "Tracking",
        "weight": "Weight",
        "settled": "settled",
        "moving": "settling…",
        "no_weight": "no weight",
        "recent": "Last parcels",
        "scanner": "Scanner",
        "scale": "Scale",
        "broker": "Customs link",
        "backlog": "Waiting to send",
        "up": "OK",
        "down": "DOWN",
        "offline": "Connection to the station lost: reconnecting…",
        "not_recorded": "NOT RECORDED: call the supervisor, do not ship.",
        "updated": "Updated: the order arrived.",
        "carton": "Master carton open: scan each parcel inside, then the master label again.",
        "late_hold": "Find this parcel and take it off the outgoing cart: put it on the hold shelf.",
        "shelf_release": "Customs released this parcel: take it off the hold shelf and ship it.",
        "shelf_keep": "Customs decided on this parcel: leave it on the hold shelf for customs.",
        "no_reasons": "All checks passed.",
        "health": "Station",
        "health_ok": "OK",
        "health_degraded": "DEGRADED",
        "health_down": "DOWN",
        "sim": "Simulated devices",
        "sim_scan": "Weigh + scan",
        "sim_lift": "Lift",
    },
    "es": {
        "title": "Puesto de embalaje",
        "CLEAR": "LIBRE",
        "REVIEW": "REVISAR",
        "HOLD": "RETENER",
        "do_CLEAR": "Enviar: póngalo en la cinta de salida.",
        "do_REVIEW": "Póngalo en la bandeja de revisión para el supervisor.",
        "do_HOLD": "Póngalo en el estante de retenidos y escanee la etiqueta del estante o toque Confirmar.",
        "confirm": "Confirmar: en el estante de retenidos",
        "confirmed": "En el estante de retenidos: registrado.",
        "waiting": "Escanee un paquete",
        "tracking": "Seguimiento",
        "weight": "Peso",
        "settled": "estable",
        "moving": "estabilizando…",
        "no_weight": "sin peso",
        "recent": "Últimos paquetes",
        "scanner": "Escáner",
        "scale": "Báscula",
        "broker": "Enlace con aduanas",
        "backlog": "Pendientes de envío",
        "up": "OK",
        "down": "CAÍDO",
        "offline": "Conexión con el puesto perdida: reconectando…",
        "not_recorded": "NO REGISTRADO: llame al supervisor, no lo envíe.",
        "updated": "Actualizado: llegó el pedido.",
        "carton": "Caja master abierta: escanee cada paquete de dentro y luego otra vez la etiqueta master.",
        "late_hold": "Busque este paquete y sáquelo del carro de salida: póngalo en el estante de retención.",
        "shelf_release": "Aduanas liberó este paquete: sáquelo del estante de retenidos y envíelo.",
        "shelf_keep": "Aduanas decidió sobre este paquete: déjelo en el estante de retenidos para aduanas.",
        "no_reasons": "Todas las comprobaciones correctas.",
        "health": "Puesto",
        "health_ok": "OK",
        "health_degraded": "DEGRADADO",
        "health_down": "CAÍDO",
        "sim": "Dispositivos simulados",
        "sim_scan": "Pesar + escanear",
        "sim_lift": "Retirar",
    },
}


def ui(language: str) -> dict[str, str]:
    """The interface strings for ``language`` (English when the site's language is not here)."""
    return UI.get(language, UI["en"])


def _figures(record: dict[str, Any]) -> dict[str, str]:
    order = record.get("order") or {}
    parcel = record.get("parcel") or {}

    def number(value: Any) -> str:
        return "?" if value is None else f"{value:g}"

    return {
        "declared": number(order.get("declared_weight_kg")),
        "measured": number(parcel.get("measured_weight_kg")),
        "value": number(order.get("total_declared_value")),
        "currency": order.get("currency") or "",
    }


LATE_HOLD: dict[str, str] = {
    "en": "Customs {kind} after the scan: the parcel was {verdict} at {time} UTC.",
    "es": "Aduanas pide {kind} después del escaneo: el paquete fue {verdict} a las {time} UTC.",
}
HOLD_KINDS: dict[str, dict[str, str]] = {
    "hold": {"en": "hold", "es": "retención"},
    "rfi": {"en": "request for information", "es": "solicitud de información"},
    "rfs": {"en": "request for screening", "es": "solicitud de inspección"},
    "dnl": {"en": "DO NOT LOAD", "es": "NO CARGAR"},
}


def late_hold(downlink: dict[str, Any]) -> dict[str, str]:
    """The operator's message, per language, for a customs hold on a parcel already scanned."""
    state = downlink.get("parcel_state") or {}
    when = str(state.get("scanned_at") or "")[11:16]
    return {
        lang: LATE_HOLD[lang].format(
            kind=HOLD_KINDS.get(downlink["type"], {}).get(lang, downlink["type"]),
            verdict=UI[lang].get(str(state.get("verdict")), str(state.get("verdict"))),
            time=when,
        )
        for lang in LANGUAGES
    }


SHELF_OUTCOME: dict[str, str] = {
    "en": "Customs outcome: {outcome} (reference {reference}, reason {reason}).",
    "es": "Resultado de aduanas: {outcome} (referencia {reference}, motivo {reason}).",
}
CUSTOMS_OUTCOMES: dict[str, dict[str, str]] = {
    "released": {"en": "released", "es": "liberado"},
    "assessment_complete": {"en": "assessment complete", "es": "evaluación terminada"},
    "seized": {"en": "seized", "es": "incautado"},
    "denied_entry": {"en": "entry denied", "es": "entrada denegada"},
    "penalty": {"en": "penalty", "es": "sanción"},
    "destroyed": {"en": "to be destroyed", "es": "para destruir"},
    "abandoned": {"en": "abandoned", "es": "abandonado"},
    "returned": {"en": "returned", "es": "devuelto"},
}


def shelf_outcome(downlink: dict[str, Any]) -> dict[str, str]:
    """The operator's message, per language, for a customs outcome on a parcel on the hold shelf."""
    outcome = downlink["customs_outcome"]
    return {
        lang: SHELF_OUTCOME[lang].format(
            outcome=CUSTOMS_OUTCOMES.get(outcome["outcome"], {}).get(lang, outcome["outcome"]),
            reference=outcome["customs_reference"],
            reason=outcome["reason_code"],
        )
        for lang in LANGUAGES
    }


def reasons(record: dict[str, Any], language: str) -> list[str]:
    """Plain-words reasons for a verdict record, most serious first (info findings left out)."""
    findings = [r for r in record.get("screening", {}).get("reasons", []) if r["severity"] != "info"]
    findings.sort(key=lambda r: r["severity"] != "hold")
    figures = _figures(record)
    texts = []
    for finding in findings:
        code = codes.REGISTRY.get(finding["code"])
        template = code.operator.get(language) if code else None
        texts.append(template.format(**figures) if template else finding["message"])
    return texts


def seller_advice(record: dict[str, Any], language: str) -> list[tuple[str, str]]:
    """(code, what to fix) for each seller-caused finding of a verdict record; the order line a
    finding is about fills ``{description}``, ``{hts}`` and ``{origin}`` (the first line when it
    names none)."""
    order = record.get("order") or {}
    items = order.get("items") or [{}]
    figures = _figures(record)
    advice = []
    for finding in record.get("screening", {}).get("reasons", []):
        code = codes.REGISTRY.get(finding["code"])
        template = code.seller.get(language) if code and code.seller and not code.customs_only else None
        if template is None:
            continue
        index = (item_of(finding) or 1) - 1
        item = items[index] if 0 <= index < len(items) else {}
        advice.append(
            (
                finding["code"],
                template.format(
                    description=item.get("description") or "?",
                    hts=item.get("hts_code") or "?",
                    origin=item.get("origin_country") or "?",
                    **figures,
                ),
            )
        )
    return advice
