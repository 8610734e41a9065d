"""Device signatures: each station signs every record with its own Ed25519 key.

Records are evidence, so the receiver must be able to prove which station made one and that no
byte changed on the way. The key is created on the station's first start (file mode 0600, never
leaves the box); IT copies its public half into the receiver's trust store with
``prescreen key show``. The signature covers the record's canonical JSON (key-sorted, compact,
UTF-8) without the ``signature`` field, so both sides compute the same bytes with
:func:`prescreen.core.records.dumps`.

Ed25519 is PyNaCl's (libsodium): the agent's import of pyca/cryptography cost 9–11 MB of resident
memory (its Rust extension) for two operations, where libsodium costs under 2 MB and signs and
verifies faster. Key files stay what cryptography and OpenSSL write (PKCS#8, RFC 8410), so keys
made before keep working, and Ed25519 is deterministic: the same key signs the same bytes alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.exceptions import CryptoError
from nacl.signing import SigningKey, VerifyKey
from prescreen.core.errors import ConfigError
from prescreen.core.files import tighten
from prescreen.core.records import Record, dumps, join_members, member_texts

log = logging.getLogger("prescreen.signing")
ALGORITHM = "Ed25519"
# RFC 8410 section 7: the DER of a PKCS#8 OneAsymmetricKey (version 0, id-Ed25519) up to its
# 32-byte seed. Fixed for every Ed25519 key; cryptography and `openssl genpkey` write exactly it.
_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
_PEM = re.compile(rb"-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]*)-----END PRIVATE KEY-----")


def key_id_of(public: VerifyKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(bytes(public)).hexdigest()[:16]


def public_key(text: str) -> VerifyKey:
    """The Ed25519 public key of its base64 (as trust stores and ``[sync]`` keys list them).

    Raises:
        ValueError: not base64 (``binascii.Error``) or not 32 bytes.
    """
    return VerifyKey(base64.b64decode(text, validate=True))


def private_key_pem(private: SigningKey) -> bytes:
    """``private`` as an unencrypted PKCS#8 PEM file, byte for byte what cryptography wrote."""
    body = base64.b64encode(_PKCS8_PREFIX + bytes(private)).decode("ascii")
    return f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n".encode("ascii")


def private_key_of_pem(data: bytes) -> SigningKey:
    """The Ed25519 key of a PKCS#8 PEM file (one written by :func:`private_key_pem`, cryptography
    or OpenSSL).

    Raises:
        ValueError: no unencrypted ``PRIVATE KEY`` block, bad base64, or not an Ed25519 key.
    """
    found = _PEM.search(data)
    if found is None:
        raise ValueError("no unencrypted PKCS#8 PEM block (-----BEGIN PRIVATE KEY-----)")
    der = base64.b64decode(b"".join(found.group(1).split()), validate=True)
    if len(der) != len(_PKCS8_PREFIX) + 32 or not der.startswith(_PKCS8_PREFIX):
        raise ValueError("the key is not an Ed25519 key (PKCS#8, RFC 8410)")
    return SigningKey(der[len(_PKCS8_PREFIX) :])


def signed_bytes(record: Record) -> bytes:
    """The exact bytes a signature covers: the canonical record without its signature."""
    return dumps({k: v for k, v in record.items() if k != "signature"}).encode("utf-8")


class DeviceKey:
    """The station's private signing key, loaded from (or created at) one file."""

    def __init__(self, private: SigningKey, path: Path | None = None) -> None:
        self._private = private
        self.public = private.verify_key
        self.key_id = key_id_of(self.public)
        self.path = path

    @classmethod
    def generate(cls) -> DeviceKey:
        """A new key held in memory only (customs' and receivers' tools and the tests)."""
        return cls(SigningKey.generate())

    @classmethod
    def load_or_create(cls, path: str | Path) -> DeviceKey:
        """Load the key at ``path``, creating it (mode 0600) if the file does not exist.

        A key that exists but cannot be read is an error, never silently replaced: a new key
        would be a new identity the receiver does not trust.

        Raises:
            ConfigError: the file is unreadable or not an Ed25519 private key.
        """
        path = Path(path)
        try:
            return cls._create(path)
        except FileExistsError:
            pass
        try:
            tighten(path)
            private = private_key_of_pem(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot load the device signing key: {exc}") from exc
        return cls(private, path)

    @classmethod
    def _create(cls, path: Path) -> DeviceKey:
        path.parent.mkdir(parents=True, exist_ok=True)
        private = SigningKey.generate()
        pem = private_key_pem(private)
        # O_EXCL: two processes starting at once cannot both create (and disagree on) the key;
        # the mode is set at creation, so the key is never readable by others, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        key = cls(private, path)
        log.info("device key created", extra={"path": str(path), "key_id": key.key_id})
        return key

    def sign_bytes(self, data: bytes) -> str:
        """A base64 Ed25519 signature of ``data`` (a batch of already signed records)."""
        return base64.b64encode(self._private.sign(data).signature).decode("ascii")

    def sign(self, record: Record) -> Record:
        """``record`` with its ``signature`` field set."""
        value = self._private.sign(signed_bytes(record)).signature
        record["signature"] = {
            "alg": ALGORITHM,
            "key_id": self.key_id,
            "value": base64.b64encode(value).decode("ascii"),
        }
        return record

    def sign_text(self, record: Record, known: Mapping[str, str] | None = None) -> str:
        """Sign ``record`` (setting its ``signature``) and return its canonical text, ``dumps`` of
        the signed record, serialising it once: the bytes signed and the text stored share every
        member but the signature (signing then storing used to serialise each record twice).

        ``known``: members already serialised as :func:`member_texts` writes them (by a replay's
        worker processes, or once for every record of a replay), signed and stored as they are,
        in place of ``record``'s own values of those members."""
        known = known or {}
        members = member_texts({k: v for k, v in record.items() if k != "signature" and k not in known})
        members.update(known)
        value = self._private.sign(join_members(members).encode("utf-8")).signature
        encoded = base64.b64encode(value).decode("ascii")
        signature = {"alg": ALGORITHM, "key_id": self.key_id, "value": encoded}
        record["signature"] = signature
        members["signature"] = f'"signature":{dumps(signature)}'
        return join_members(members)

    @property
    def public_b64(self) -> str:
        """The public half in base64, as ``[sync] customs_keys`` and ``receiver_keys`` list it."""
        return base64.b64encode(bytes(self.public)).decode("ascii")

    def trust_entry(self, site_id: str, device_id: str) -> dict[str, str]:
        """What the receiver's trust store needs to accept this station's records."""
        return {
            "key_id": self.key_id,
            "site_id": site_id,
            "device_id": device_id,
            "public_key": self.public_b64,
        }


@dataclass(frozen=True)
class Rejection:
    """Why a record was refused: ``kind`` is unsigned, forged or tampered (the counter's name)."""

    kind: str
    reason: str


def _signing_key_id(document: dict[str, Any]) -> str:
    signature = document.get("signature")
    return str(signature.get("key_id")) if isinstance(signature, dict) else ""


def verify_detached(public: VerifyKey, data: bytes, signature_b64: str) -> bool:
    """True if ``signature_b64`` (base64 Ed25519) signs exactly ``data`` by ``public``.

    The one verifier: records, batches, acks, downlink messages and model manifests all end here,
    so a malformed signature (bad base64, wrong length) is a refusal everywhere, never a crash.
    """
    try:
        public.verify(data, base64.b64decode(signature_b64, validate=True))
    except (CryptoError, ValueError, binascii.Error):
        return False
    return True


def verify_document(
    document: dict[str, Any], public: VerifyKey | None, unknown: str
) -> Rejection | None:
    """None if ``document``'s ``signature`` is valid by ``public`` (None: the key was not found,
    which ``unknown`` words for the log line)."""
    signature = document.get("signature")
    if not isinstance(signature, dict):
        return Rejection("unsigned", "not signed")
    if public is None:
        return Rejection("forged", f"key {_signing_key_id(document)[:40]!r} {unknown}")
    if not verify_detached(public, signed_bytes(document), str(signature.get("value"))):
        return Rejection("tampered", "signature does not match the content")
    return None


class KeyRing:
    """Public keys trusted for one kind of message, not bound to a station: customs' downlink
    messages (``[sync] customs_keys``) or the receivers' acks (``[sync] receiver_keys``).

    A document is signed like a record: a ``signature`` object over its canonical JSON without it.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys: dict[str, VerifyKey] = {}
        for text in keys:
            try:
                public = public_key(text)
            except ValueError as exc:
                raise ConfigError(f"not an Ed25519 public key in base64: {text[:60]!r} ({exc})") from None
            self._keys[key_id_of(public)] = public

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def key_ids(self) -> list[str]:
        """The trusted keys' ids (for log lines and status)."""
        return sorted(self._keys)

    def check(self, document: dict[str, Any]) -> Rejection | None:
        """None if ``document`` carries a valid signature by one of these keys."""
        return verify_document(document, self._keys.get(_signing_key_id(document)), "is not trusted")


@dataclass(frozen=True)
class _Trusted:
    site_id: str
    device_id: str
    public: VerifyKey


TRUST_FORMAT = '{"keys": [one `prescreen key show` entry per station]} (prescreen trust add builds it)'


class TrustStore:
    """The receiver's list of station public keys, each bound to one site and device."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self._keys: dict[str, _Trusted] = {}
        for entry in entries:
            public = public_key(entry["public_key"])
            if key_id_of(public) != entry["key_id"]:
                raise ValueError(f"key_id {entry['key_id']} does not match its public key")
            self._keys[entry["key_id"]] = _Trusted(str(entry["site_id"]), str(entry["device_id"]), public)

    @classmethod
    def load(cls, path: str | Path) -> TrustStore:
        """Read a trust store file: ``{"keys": [trust entries]}``.

        Raises:
            ConfigError: unreadable, not JSON, or an entry is malformed.
        """
        try:
            data = json.loads(Path(path).read_text())
            return cls(list(data["keys"]))
        except (OSError, ValueError, TypeError, KeyError, binascii.Error) as exc:
            raise ConfigError(f"{path}: not a usable trust store ({exc!r}); expected {TRUST_FORMAT}") from exc

    def __len__(self) -> int:
        return len(self._keys)

    def verify_batch(self, key_id: str, site_id: str, device_id: str, data: bytes, signature: str) -> bool:
        """True if ``signature`` over ``data`` is by the trusted key ``key_id`` of that station.

        A batch signature lets the receiver check a whole batch with one Ed25519 verification
        (185 µs on the reference machine) instead of one per record; each record still carries its
        own signature, kept as evidence and re-checkable with ``prescreen records verify``.
        """
        trusted = self._keys.get(key_id)
        if trusted is None or (trusted.site_id, trusted.device_id) != (site_id, device_id):
            return False
        return verify_detached(trusted.public, data, signature)

    def check_from(
        self, document: dict[str, Any], site_id: str | None, device_id: str | None
    ) -> Rejection | None:
        """None if ``document`` carries a valid signature by the trusted key of ``site_id``/
        ``device_id`` (a downlink ack names no station itself; a record names its own)."""
        key_id = _signing_key_id(document)
        trusted = self._keys.get(key_id)
        if trusted is not None and (trusted.site_id, trusted.device_id) != (site_id, device_id):
            return Rejection(
                "forged",
                f"key {key_id} belongs to {trusted.site_id}/{trusted.device_id}, not {site_id}/{device_id}",
            )
        return verify_document(document, trusted.public if trusted else None, "is not in the trust store")

    def check(self, record: Record) -> Rejection | None:
        """None if ``record`` carries a valid signature by the key of the station it names."""
        return self.check_from(record, record.get("site_id"), record.get("device_id"))
