"""The receiver's trust-store file: add, remove and list station keys without editing JSON by hand.

Why: appending ``prescreen key show`` output to a file (``>> entries.json``) makes a file the
receiver cannot read. Every change here goes through the same check the receiver makes when it
loads the file (:class:`prescreen.core.signing.TrustStore`), is written atomically, and every error
names the expected format.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prescreen.core.errors import ConfigError
from prescreen.core.signing import TRUST_FORMAT, TrustStore

ENTRY_KEYS = ("key_id", "site_id", "device_id", "public_key")


def read(path: Path, *, missing_ok: bool = False) -> list[dict[str, Any]]:
    """The entries of the trust store at ``path`` (none for a missing file if ``missing_ok``).

    Raises:
        ConfigError: unreadable, not JSON, not the expected shape, or an entry that does not check.
    """
    if missing_ok and not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a usable trust store ({exc}); expected {TRUST_FORMAT}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ConfigError(f'{path}: not a usable trust store (no "keys" list); expected {TRUST_FORMAT}')
    return [check_entry(entry, f"{path}: entry {number}") for number, entry in enumerate(data["keys"], 1)]


def check_entry(entry: object, where: str) -> dict[str, Any]:
    """``entry`` if it is one station's trust entry whose key id matches its public key.

    Raises:
        ConfigError: names what is missing or wrong, and the expected shape.
    """
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: not a trust entry; expected one `prescreen key show` object")
    missing = [key for key in ENTRY_KEYS if not isinstance(entry.get(key), str)]
    if missing:
        raise ConfigError(
            f"{where}: trust entry without {', '.join(missing)}; expected {{{', '.join(ENTRY_KEYS)}}} "
            "as `prescreen key show` prints it"
        )
    try:
        TrustStore([entry])
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: trust entry does not check: {exc}") from None
    return {key: entry[key] for key in ENTRY_KEYS}


def write(path: Path, entries: list[dict[str, Any]]) -> None:
    """Replace the file atomically (a receiver reading it never sees half a file)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({"keys": entries}, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def add(path: Path, entry: dict[str, Any]) -> str:
    """Add ``entry`` (replacing one with the same key id); returns what was done, in words.

    A second key for a station already trusted is added beside the first (a key rotation: records
    signed with either are accepted until the old one is removed).
    """
    entries = read(path, missing_ok=True)
    entry = check_entry(entry, "new entry")
    kept = [e for e in entries if e["key_id"] != entry["key_id"]]
    replaced = len(kept) != len(entries)
    others = [
        e["key_id"] for e in kept if (e["site_id"], e["device_id"]) == (entry["site_id"], entry["device_id"])
    ]
    write(path, [*kept, entry])
    station = f"{entry['site_id']}/{entry['device_id']}"
    if replaced:
        return f"replaced key {entry['key_id']} of {station}"
    if others:
        also = ", ".join(others)
        return (
            f"added key {entry['key_id']} of {station} (also trusted: {also}; remove the old after rotating)"
        )
    return f"added key {entry['key_id']} of {station}"


def remove(path: Path, what: str) -> list[dict[str, Any]]:
    """Remove the entries whose key id is ``what``, or of station ``SITE/DEVICE``; returns them.

    Raises:
        ConfigError: nothing matched (the file is left as it was).
    """
    entries = read(path)
    gone = [e for e in entries if what in (e["key_id"], f"{e['site_id']}/{e['device_id']}")]
    if not gone:
        raise ConfigError(f"{path}: no key {what!r} (give a key id or SITE/DEVICE; see prescreen trust list)")
    write(path, [e for e in entries if e not in gone])
    return gone
