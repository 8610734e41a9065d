"""The station's identity on disk: its device key, its outbox, and the seq file beside the key
(the last sequence number the key signed).

Why the seq file beside the key and not only in the outbox: an outbox deleted or emptied by hand
would restart the sequence at 1, and the receiver would refuse every record after it as replayed.
The outbox writes it at each commit (:class:`prescreen.packing.outbox.Outbox`); the agent checks
the three together at start (:func:`check_identity`).
"""

from __future__ import annotations

from pathlib import Path

from prescreen.core.errors import ConfigError
from prescreen.core.signing import DeviceKey


def seq_file_of(key_path: Path) -> Path:
    """Where the last sequence number a device key signed is kept: beside the key."""
    return key_path.with_name(key_path.name + ".seq")


def read_seq(path: Path) -> tuple[str, int] | None:
    """(key id, last sequence number) kept in ``path``, or None if there is none (yet)."""
    try:
        key_id, last = path.read_text(encoding="ascii").split()
        return key_id, int(last)
    except (OSError, ValueError):
        return None


def check_identity(key_path: Path, outbox_path: Path) -> None:
    """Refuse to start when only one half of the station's identity is there.

    A missing key with an outbox would silently become a new key, and every record a forgery to
    the receiver; a key that has signed records without its outbox means the records not yet
    sent are gone and nobody was told. Either needs a person: restore the missing file, or start
    a new identity on purpose with ``prescreen key new --i-know``.

    Raises:
        ConfigError: which half is missing and what to do.
    """
    fix = "restore it from backup, or start a new identity on purpose: prescreen key new --i-know"
    if outbox_path.exists() and not key_path.exists():
        raise ConfigError(
            f"the outbox {outbox_path} exists but its device key {key_path} does not "
            f"(a new key would make every record a forgery to the receiver): {fix}"
        )
    kept = read_seq(seq_file_of(key_path))
    used = key_path.exists() and kept is not None and kept[1] > 0
    if used and not outbox_path.exists() and kept and kept[0] == DeviceKey.load_or_create(key_path).key_id:
        raise ConfigError(
            f"the device key {key_path} signed records up to seq {kept[1]} but the outbox "
            f"{outbox_path} is missing (its unsent records are lost): {fix}"
        )
