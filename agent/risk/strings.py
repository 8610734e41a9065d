"""Every word the operator sees, in every language the station speaks, in one place.

Why one module: a site adds a language by adding one column here, and a reviewer can check that
no reason code is left untranslated (a test does). Reason texts are plain words with the parcel's
own figures (``Declared 0.2 kg, scale says 1.4 kg``), built from the committed record, so the
screen never says anything the record does not.
"""

from __future__ import annotations

import re
from typing import Any

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

# Plain-words reasons per finding code: {placeholders} are filled from the record.
REASONS: dict[str, dict[str, str]] = {
    "WEIGHT_MISMATCH": {
        "en": "Declared {declared} kg, scale says {measured} kg.",
        "es": "Declarado {declared} kg, la báscula marca {measured} kg.",
    },
    "VALUE_PER_KG_LOW": {
        "en": "Declared value {value} {currency} is very low for {measured} kg.",
        "es": "Valor declarado {value} {currency} muy bajo para {measured} kg.",
    },
    "NO_WEIGHT": {"en": "The scale gave no steady weight.", "es": "La báscula no dio un peso estable."},
    "BARCODE_CHECK_FAILED": {
        "en": "Label check digit is wrong: rescan or relabel.",
        "es": "El dígito de control de la etiqueta es incorrecto: vuelva a escanear o reetiquete.",
    },
    "BARCODE_UNKNOWN": {"en": "Not a known tracking label.", "es": "No es una etiqueta de envío conocida."},
    "ORDER_NOT_FOUND": {"en": "No order found for this label.", "es": "No hay pedido para esta etiqueta."},
    "ORDER_UNAVAILABLE": {
        "en": "Order system did not answer in time.",
        "es": "El sistema de pedidos no respondió a tiempo.",
    },
    "ORDER_MALFORMED": {
        "en": "The order data is unreadable.",
        "es": "Los datos del pedido no se pueden leer.",
    },
    "ORDER_MISMATCH": {
        "en": "The order belongs to another label.",
        "es": "El pedido pertenece a otra etiqueta.",
    },
    "WATCHLIST_HOLD": {
        "en": "Customs asked to hold this parcel.",
        "es": "Aduanas pidió retener este paquete.",
    },
    "CARTON_UNMANIFESTED_PARCEL": {
        "en": "Parcel is not on the master carton's list.",
        "es": "El paquete no está en la lista de la caja master.",
    },
    "CARTON_COUNT_EXCEEDS_MANIFEST": {
        "en": "More parcels in the carton than its list says.",
        "es": "Hay más paquetes en la caja de los que dice su lista.",
    },
    "CARTON_WEIGHT_MISMATCH": {
        "en": "Carton weight does not match the parcels inside.",
        "es": "El peso de la caja no coincide con los paquetes de dentro.",
    },
    "SPLIT_SHIPMENT": {
        "en": "Same recipient again within a short time (split shipment?).",
        "es": "Mismo destinatario otra vez en poco tiempo (¿envío fraccionado?).",
    },
    "DQ_SELLER_MISSING": {
        "en": "Seller's name or address missing.",
        "es": "Falta nombre o dirección del vendedor.",
    },
    "DQ_CONSIGNEE_MISSING": {
        "en": "Recipient's name or address missing.",
        "es": "Falta nombre o dirección del destinatario.",
    },
    "DQ_COUNTRY_UNKNOWN": {"en": "A country code is not valid.", "es": "Un código de país no es válido."},
    "DQ_CURRENCY_UNKNOWN": {"en": "Currency code is not valid.", "es": "El código de moneda no es válido."},
    "DQ_NO_ITEMS": {"en": "The order lists no items.", "es": "El pedido no tiene artículos."},
    "DQ_DESCRIPTION_MISSING": {
        "en": "An item has no description.",
        "es": "Un artículo no tiene descripción.",
    },
    "DQ_DESCRIPTION_VAGUE": {
        "en": "An item description is too vague.",
        "es": "La descripción de un artículo es demasiado vaga.",
    },
    "DQ_TARIFF_MISSING": {
        "en": "An item has no tariff code.",
        "es": "Un artículo no tiene código arancelario.",
    },
    "DQ_TARIFF_MALFORMED": {
        "en": "A tariff code is not a valid number.",
        "es": "Un código arancelario no es un número válido.",
    },
    "DQ_TARIFF_CHAPTER_INVALID": {
        "en": "A tariff code's chapter does not exist.",
        "es": "El capítulo de un código arancelario no existe.",
    },
    "DQ_TARIFF_NOT_ENTRY_GRADE": {
        "en": "Tariff code needs all 10 digits.",
        "es": "El código arancelario necesita los 10 dígitos.",
    },
    "DQ_ORIGIN_UNKNOWN": {"en": "Country of origin missing.", "es": "Falta el país de origen."},
    "DQ_VALUE_MISSING": {
        "en": "An item has no declared value.",
        "es": "Un artículo no tiene valor declarado.",
    },
    "TARIFF_DESCRIPTION_MISMATCH": {
        "en": "Tariff code does not fit the description.",
        "es": "El código arancelario no corresponde a la descripción.",
    },
    "PRECURSOR_CHEMICAL": {
        "en": "Description names a controlled chemical.",
        "es": "La descripción nombra un producto químico controlado.",
    },
    "PILL_PRESS_EQUIPMENT": {
        "en": "Description suggests a pill press or its parts.",
        "es": "La descripción sugiere una prensa de pastillas o sus piezas.",
    },
    "MODEL_ELEVATED_RISK": {
        "en": "Risk model: looks unusual, check it.",
        "es": "Modelo de riesgo: parece inusual, revíselo.",
    },
    "MODEL_HIGH_RISK": {"en": "Risk model: high risk.", "es": "Modelo de riesgo: riesgo alto."},
    "INTERNAL_ERROR": {
        "en": "The agent could not screen this parcel: check it by hand.",
        "es": "El agente no pudo revisar este paquete: revíselo a mano.",
    },
    "FILER_IMPORTER_MISSING": {
        "en": "No importer of record: the US entry cannot be filed.",
        "es": "Falta el importador registrado: no se puede presentar la entrada en EE. UU.",
    },
    "FILER_MANUFACTURER_MISSING": {
        "en": "No manufacturer name and address: no MID for the entry.",
        "es": "Falta el nombre y la dirección del fabricante: no hay MID para la entrada.",
    },
    "FILER_POSTAL_NO_S10": {
        "en": "Postal parcel without a UPU S10 label: print the postal label.",
        "es": "Paquete postal sin etiqueta UPU S10: imprima la etiqueta postal.",
    },
    "FILER_DEA_452_MISSING": {
        "en": "Press without a DEA Form 452 transaction id.",
        "es": "Prensa sin número de transacción del formulario DEA 452.",
    },
    "FILER_CPSC_CERTIFICATE_MISSING": {
        "en": "Children's or CPSC product without a certificate reference.",
        "es": "Producto infantil o regulado por la CPSC sin referencia de certificado.",
    },
    "DQ_TARIFF_UNKNOWN": {
        "en": "Tariff code does not exist.",
        "es": "El código arancelario no existe.",
    },
    "DQ_TARIFF_NOT_IN_HTS": {
        "en": "Tariff code is not in the US tariff.",
        "es": "El código arancelario no está en el arancel de EE. UU.",
    },
    "VALUE_FORMAL_ENTRY": {
        "en": "Worth over 2,500 USD: needs a formal entry.",
        "es": "Vale más de 2.500 USD: necesita una entrada formal.",
    },
    "GIFT_OVER_LIMIT": {
        "en": "Declared a gift but worth over 100 USD.",
        "es": "Declarado como regalo pero vale más de 100 USD.",
    },
    "PRECURSOR_TARIFF_LINE": {
        "en": "Tariff code is a controlled chemical's line.",
        "es": "El código arancelario es el de un químico controlado.",
    },
    "CHEMICAL_TARIFF_LINE": {
        "en": "A chemical the description does not explain.",
        "es": "Un producto químico que la descripción no explica.",
    },
    "PRESS_TARIFF_LINE": {
        "en": "Tariff line of tablet presses and dies: check the goods.",
        "es": "Partida de prensas de pastillas y troqueles: revise la mercancía.",
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
        template = REASONS.get(finding["code"], {}).get(language)
        texts.append(template.format(**figures) if template else finding["message"])
    return texts


# What the seller should fix, per finding code, in the seller's words (for scorecards and
# feedback to the trade). {placeholders} come from the record: the item the finding names
# ({description}, {hts}, {origin}) and the parcel ({declared}, {measured}, {value}, {currency}).
SELLER_ADVICE: dict[str, dict[str, str]] = {
    "DQ_DESCRIPTION_VAGUE": {
        "en": "Description '{description}' is too vague: say what the item is, e.g. 'brake pads for cars'.",
        "es": "La descripción '{description}' es demasiado vaga: diga qué es el artículo, p. ej. "
        "'pastillas de freno para coches'.",
    },
    "DQ_DESCRIPTION_MISSING": {
        "en": "An item has no description: describe each item as a shopper would, e.g. 'cotton T-shirt'.",
        "es": "Un artículo no tiene descripción: describa cada artículo como lo haría un comprador, p. ej. "
        "'camiseta de algodón'.",
    },
    "DQ_TARIFF_MISSING": {
        "en": "An item has no tariff code: give the 10-digit US HTS code for '{description}'.",
        "es": "Un artículo no tiene código arancelario: indique el código HTS de EE. UU. de 10 dígitos para "
        "'{description}'.",
    },
    "DQ_TARIFF_MALFORMED": {
        "en": "Tariff code '{hts}' is not a tariff code: use the 10 digits of the US HTS, without letters.",
        "es": "'{hts}' no es un código arancelario: use los 10 dígitos del HTS de EE. UU., sin letras.",
    },
    "DQ_TARIFF_CHAPTER_INVALID": {
        "en": "Tariff code '{hts}' is from a chapter that low-value entries cannot use (98/99): "
        "give the code of the goods themselves (chapters 1–97).",
        "es": "El código '{hts}' es de un capítulo que no sirve para envíos de bajo valor (98/99): "
        "indique el código de la mercancía (capítulos 1–97).",
    },
    "DQ_TARIFF_NOT_ENTRY_GRADE": {
        "en": "Tariff code '{hts}' is too short: US entries need all 10 digits.",
        "es": "El código '{hts}' es demasiado corto: las entradas de EE. UU. necesitan los 10 dígitos.",
    },
    "DQ_VALUE_MISSING": {
        "en": "An item has no value: declare what the buyer paid for '{description}'.",
        "es": "Un artículo no tiene valor: declare lo que pagó el comprador por '{description}'.",
    },
    "DQ_ORIGIN_UNKNOWN": {
        "en": "Country of origin is missing or not an ISO code: say where '{description}' was "
        "made, e.g. 'CN'.",
        "es": "Falta el país de origen o no es un código ISO: indique dónde se fabricó "
        "'{description}', p. ej. 'CN'.",
    },
    "DQ_NO_ITEMS": {
        "en": "The order lists no items: list every item in the parcel.",
        "es": "El pedido no tiene artículos: indique cada artículo del paquete.",
    },
    "DQ_SELLER_MISSING": {
        "en": "Your name or address is missing from the order: give the seller's full name and address.",
        "es": "Falta su nombre o dirección en el pedido: indique el nombre y la dirección "
        "completos del vendedor.",
    },
    "DQ_CONSIGNEE_MISSING": {
        "en": "The buyer's name or address is missing: give the full delivery name and address.",
        "es": "Falta el nombre o la dirección del comprador: indique el nombre y la dirección "
        "de entrega completos.",
    },
    "DQ_COUNTRY_UNKNOWN": {
        "en": "An address has no valid country: use the two-letter ISO code, e.g. 'US'.",
        "es": "Una dirección no tiene un país válido: use el código ISO de dos letras, p. ej. 'US'.",
    },
    "DQ_CURRENCY_UNKNOWN": {
        "en": "The currency is not an ISO code: use three letters, e.g. 'USD'.",
        "es": "La moneda no es un código ISO: use tres letras, p. ej. 'USD'.",
    },
    "WEIGHT_MISMATCH": {
        "en": "You declared {declared} kg; the parcel weighed {measured} kg: declare the packed weight.",
        "es": "Declaró {declared} kg; el paquete pesó {measured} kg: declare el peso con el embalaje.",
    },
    "VALUE_PER_KG_LOW": {
        "en": "A value of {value} {currency} for {measured} kg is far below what such goods cost: "
        "declare the price the buyer paid.",
        "es": "Un valor de {value} {currency} para {measured} kg está muy por debajo de lo que cuestan esos "
        "artículos: declare el precio que pagó el comprador.",
    },
    "DQ_TARIFF_UNKNOWN": {
        "en": "Tariff code '{hts}' does not exist: its first six digits are no HS subheading. Give the "
        "10-digit US HTS code of '{description}'.",
        "es": "El código '{hts}' no existe: sus seis primeros dígitos no son una subpartida del SA. Indique "
        "el código HTS de EE. UU. de 10 dígitos de '{description}'.",
    },
    "DQ_TARIFF_NOT_IN_HTS": {
        "en": "Tariff code '{hts}' is not in the current US HTS: check the 10 digits for '{description}'.",
        "es": "El código '{hts}' no está en el HTS vigente de EE. UU.: revise los 10 dígitos de "
        "'{description}'.",
    },
    "VALUE_FORMAL_ENTRY": {
        "en": "This parcel is worth more than 2,500 USD: it needs a formal entry; arrange one with your "
        "broker.",
        "es": "Este paquete vale más de 2.500 USD: necesita una entrada formal; organícela con su agente.",
    },
    "GIFT_OVER_LIMIT": {
        "en": "Declared as a gift but worth more than 100 USD: declare it as a sale unless it is a real "
        "gift.",
        "es": "Declarado como regalo pero vale más de 100 USD: declárelo como venta salvo que sea un "
        "regalo real.",
    },
    "TARIFF_DESCRIPTION_MISMATCH": {
        "en": "Tariff code '{hts}' does not fit the description '{description}': check both.",
        "es": "El código '{hts}' no corresponde a la descripción '{description}': revise ambos.",
    },
    "SPLIT_SHIPMENT": {
        "en": "Several parcels to the same buyer on the same day: ship one order as one parcel where you "
        "can, and declare each parcel's own contents.",
        "es": "Varios paquetes al mismo comprador el mismo día: envíe un pedido en un solo paquete cuando "
        "pueda y declare el contenido de cada paquete.",
    },
    "ORDER_NOT_FOUND": {
        "en": "The parcel arrived without order data: send the order to the warehouse before it is packed.",
        "es": "El paquete llegó sin datos del pedido: envíe el pedido al almacén antes del embalaje.",
    },
    "ORDER_MISMATCH": {
        "en": "The label and the order do not match: print the label from the order it belongs to.",
        "es": "La etiqueta y el pedido no coinciden: imprima la etiqueta desde el pedido correcto.",
    },
    "ORDER_MALFORMED": {
        "en": "The order data could not be read: check your export to the warehouse.",
        "es": "No se pudieron leer los datos del pedido: revise su exportación al almacén.",
    },
    "BARCODE_CHECK_FAILED": {
        "en": "The shipping label's barcode is damaged or wrong: print a new label.",
        "es": "El código de barras de la etiqueta está dañado o es incorrecto: imprima una etiqueta nueva.",
    },
    "BARCODE_UNKNOWN": {
        "en": "The label is not a known carrier label: use the carrier's label.",
        "es": "La etiqueta no es de un transportista conocido: use la etiqueta del transportista.",
    },
    "CARTON_UNMANIFESTED_PARCEL": {
        "en": "A parcel was packed in a master carton without being on its list: list every parcel you pack.",
        "es": "Se embaló un paquete en una caja master sin estar en su lista: incluya cada "
        "paquete que embale.",
    },
    "CARTON_COUNT_EXCEEDS_MANIFEST": {
        "en": "The master carton held more parcels than listed: list every parcel you pack.",
        "es": "La caja master tenía más paquetes de los listados: incluya cada paquete que embale.",
    },
    "CARTON_WEIGHT_MISMATCH": {
        "en": "The master carton weighs more than its parcels: nothing may be packed loose in it.",
        "es": "La caja master pesa más que sus paquetes: no se puede embalar nada suelto dentro.",
    },
    "FILER_IMPORTER_MISSING": {
        "en": "No importer of record: send the importer's name and EIN, SSN or CBP-assigned number with "
        "every US order.",
        "es": "Sin importador registrado: envíe con cada pedido a EE. UU. el nombre del importador y su "
        "EIN, SSN o número asignado por la CBP.",
    },
    "FILER_MANUFACTURER_MISSING": {
        "en": "No manufacturer for '{description}': send the maker's name and full street address, "
        "from which the entry's MID is built.",
        "es": "Sin fabricante para '{description}': envíe el nombre y la dirección completa del fabricante, "
        "con los que se construye el MID de la entrada.",
    },
    "FILER_POSTAL_NO_S10": {
        "en": "A parcel sent by post had no UPU S10 label (two letters, nine digits, two letters): buy "
        "the postal label from the postal operator.",
        "es": "Un paquete enviado por correo no tenía etiqueta UPU S10 (dos letras, nueve dígitos, dos "
        "letras): compre la etiqueta postal al operador postal.",
    },
    "FILER_CPSC_CERTIFICATE_MISSING": {
        "en": "'{description}' needs a CPSC certificate reference (children's product certificate): send "
        "it with the order.",
        "es": "'{description}' necesita la referencia de un certificado CPSC (certificado de producto "
        "infantil): envíela con el pedido.",
    },
}
# Risk findings for customs only: never on a seller's scorecard or in advice to the trade, where
# they would tell a smuggler which words or tariff lines gave the parcel away.
CUSTOMS_ONLY_FINDINGS = frozenset(
    {
        "PRECURSOR_CHEMICAL",
        "PRECURSOR_TARIFF_LINE",
        "CHEMICAL_TARIFF_LINE",
        "PILL_PRESS_EQUIPMENT",
        "PRESS_TARIFF_LINE",
        "FILER_DEA_452_MISSING",
        "WATCHLIST_HOLD",
        "MODEL_HIGH_RISK",
        "MODEL_ELEVATED_RISK",
    }
)
# Findings that are not the seller's doing (the station's own devices, systems or customs'
# own list and risk signals): a scorecard counts them but gives the seller no advice for them.
NOT_SELLER_FINDINGS = CUSTOMS_ONLY_FINDINGS | {"NO_WEIGHT", "ORDER_UNAVAILABLE", "INTERNAL_ERROR"}


def seller_advice(record: dict[str, Any], language: str) -> list[tuple[str, str]]:
    """(code, what to fix) for each seller-caused finding of a verdict record."""
    order = record.get("order") or {}
    items = order.get("items") or [{}]
    figures = _figures(record)
    advice = []
    for finding in record.get("screening", {}).get("reasons", []):
        template = SELLER_ADVICE.get(finding["code"], {}).get(language)
        if template is None:
            continue
        named = re.match(r"Item (\d+)", finding.get("message", ""))
        index = int(named.group(1)) - 1 if named else 0
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
