"""The wire format between a station and the receivers, both ends in one place: batches of
signed records going up, acks coming back.

A batch is ``{"batch_id", "device_id", "key_id", "signature", "digest", "records": [...]}``
whose records are spliced in exactly as the station stored (and signed) them, and whose
``signature`` covers those records exactly as joined (``",".join(bodies)``), so a receiver checks
a whole batch with one Ed25519 verification and stores each record's text as signed, without
serialising it again. With ``"digest": "sha256"`` (what stations send) the Ed25519 signature is
over the SHA-256 digest of the joined records: one hashlib pass over a batch's ~450 KB at each
end instead of Ed25519's own two passes to sign and one to verify, each behind a copy of the
whole message in PyNaCl (per record of a 500-record batch, CPU on the reference machine: sign
3.9 -> 1.3 µs, verify 3.8 -> 1.4 µs with SHA-512). SHA-256 rather than SHA-512 because these
CPUs hash it in hardware (SHA-NI): 0.66 against 1.93 µs a record here, about 17,000 of the
receiver's 160,000 instructions a record; its 128-bit collision resistance matches Ed25519's
security level. Batches of the version before (``"sha512"``) are still checked, and a batch
without a digest (older stations) is checked over the joined records themselves.
An ack is ``{"acked": [ids], "batch_id", "rejected": [{"record_id", "reason"}], "signature"}``,
signed by the receiver's key over its canonical JSON without the signature.

Why msgspec: one pass over a batch finds each record's exact bytes (``msgspec.Raw``) and checks
the batch's shape, where the standard library's ``raw_decode`` loop cost 16 µs a record on the
reference machine; decoding a record is about twice as fast as ``json.loads``. The published JSON
Schema stays the contract: records are still validated against it (:func:`prescreen.core.records.validate`).
Anything msgspec refuses that the standard library reads (integers beyond 64 bits, NaN) is read
by the standard library, so a record is refused by the schema with its id, never by the decoder.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import msgspec
from prescreen.core.records import dumps

# A batch is refused whole beyond these (a station's batch_size is at most 10,000): a cheap batch
# must not buy expensive work, memory or a huge ack.
MAX_BATCH_RECORDS = 10_000
MAX_RAW_BYTES = 16 * 2**20  # as received (compressed or not)
MAX_BATCH_BYTES = 64 * 2**20  # inflated
# Above this many commas a batch is split record by record with a limit (the standard library),
# so a batch of millions of tiny values never becomes millions of objects before it is counted.
FAST_PATH_COMMAS = 2**20
_RECORDS = b',"records":['
_STDLIB = json.JSONDecoder()
SIGNATURE_ALGORITHM = "Ed25519"
BATCH_DIGEST = "sha256"  # a batch signature covers this digest of its joined records
# Every digest a receiver accepts: what stations send now, and what they sent before.
_DIGESTS = {BATCH_DIGEST: hashlib.sha256, "sha512": hashlib.sha512}


class BatchRefused(ValueError):
    """A batch refused whole, before any record in it is looked at."""


class BatchSigner(Protocol):
    """Signs bytes with a device's key (:class:`prescreen.core.signing.DeviceKey`)."""

    @property
    def key_id(self) -> str: ...

    def sign_bytes(self, data: bytes) -> str: ...


class _Message(msgspec.Struct):
    """The batch as it travels; records stay undecoded (their exact bytes)."""

    records: Annotated[list[msgspec.Raw], msgspec.Meta(max_length=MAX_BATCH_RECORDS)]
    batch_id: Any = None
    device_id: Any = None
    key_id: Any = None
    signature: Any = None
    digest: Any = None


_BATCH = msgspec.json.Decoder(_Message)
_ANY = msgspec.json.Decoder()


@dataclass(frozen=True)
class Batch:
    """A received batch: its head, each record's exact text, and what the batch signature covers."""

    batch_id: Any
    key_id: Any
    signature: Any
    texts: list[bytes]  # each record exactly as sent
    signed: bytes | None  # the records as the station joined them (None: not laid out as a station does)
    digest: Any = None  # a name in _DIGESTS: the signature covers that digest of ``signed``; None: ``signed``

    @property
    def signed_texts(self) -> bool:
        """True when the records are exactly the signed bytes, record by record (no gap, no extra)."""
        return self.signed is not None and b",".join(self.texts) == self.signed

    def signed_message(self) -> bytes | None:
        """What the batch signature is over (None: nothing it could cover, or an unknown digest)."""
        if self.signed is None:
            return None
        if self.digest is None:
            return self.signed
        hasher = _DIGESTS.get(self.digest) if isinstance(self.digest, str) else None
        return None if hasher is None else hasher(self.signed).digest()


def encode_batch(
    batch_id: str, device_id: str, bodies: list[str], signer: BatchSigner | None = None
) -> bytes:
    """A batch message; record bodies are spliced in as stored (no re-serialisation).

    With a ``signer`` the batch carries one signature over the digest of the records exactly as
    spliced in.
    """
    return encode_joined(batch_id, device_id, ",".join(bodies).encode("utf-8"), signer)


def encode_joined(batch_id: str, device_id: str, joined: bytes, signer: BatchSigner | None = None) -> bytes:
    """:func:`encode_batch` of records already joined with commas, as UTF-8 (what the station's
    outbox reads: a str join and encode of a batch's bodies cost ~1.2 µs a record, a bytes join
    0.06). The message is made in one copy of ``joined``."""
    head: dict[str, str] = {"batch_id": batch_id, "device_id": device_id}
    if signer is not None:
        signature = signer.sign_bytes(_DIGESTS[BATCH_DIGEST](joined).digest())
        head |= {"key_id": signer.key_id, "signature": signature, "digest": BATCH_DIGEST}
    return b"".join((json.dumps(head)[:-1].encode("utf-8"), _RECORDS, joined, b"]}"))


def inflate(payload: bytes) -> bytes:
    """A batch as JSON bytes: zlib-compressed batches (``[sync] compress``) are inflated, with a
    size cap so a hostile payload cannot exhaust memory.

    Raises:
        BatchRefused: more than :data:`MAX_RAW_BYTES` received or :data:`MAX_BATCH_BYTES` inflated.
        ValueError: neither JSON-looking nor a valid zlib stream.
    """
    if len(payload) > MAX_RAW_BYTES:
        raise BatchRefused(f"batch of {len(payload)} bytes, more than {MAX_RAW_BYTES}")
    if payload[:1] in (b"{", b" ", b"\n"):
        return payload
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(payload, MAX_BATCH_BYTES)
    except zlib.error as exc:
        raise ValueError(f"neither JSON nor a zlib batch: {exc}") from None
    if inflater.unconsumed_tail:
        raise BatchRefused(f"batch inflates beyond {MAX_BATCH_BYTES} bytes")
    return data


def decode_batch(payload: bytes) -> Batch:
    """Read a batch message (inflating it if compressed) without decoding its records.

    Raises:
        BatchRefused: over the record, byte or inflated-size bounds.
        ValueError: not a batch (malformed JSON, no ``records`` list, not UTF-8).
    """
    data = inflate(payload)
    at = data.find(_RECORDS)
    signed = data[at + len(_RECORDS) : -2] if at >= 0 and data.endswith(b"]}") else None
    # Fewer bytes than FAST_PATH_COMMAS cannot hold that many commas: no count (4,600 instructions
    # a record of a typical batch) unless the batch is big enough to need one.
    if len(data) >= FAST_PATH_COMMAS and data.count(b",") >= FAST_PATH_COMMAS:
        if signed is None:
            raise ValueError("a batch this large must be laid out as a station sends it")
        return _decode_by_record(data[:at] + b"}", signed)
    try:
        message = _BATCH.decode(data)
    except msgspec.ValidationError as exc:
        if "length <=" in str(exc):
            raise BatchRefused(f"more than {MAX_BATCH_RECORDS} records in one batch") from None
        raise ValueError(f"not a batch: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a batch: {exc}") from None
    texts = [bytes(r) for r in message.records]
    return Batch(message.batch_id, message.key_id, message.signature, texts, signed, message.digest)


def _decode_by_record(head_text: bytes, signed: bytes) -> Batch:
    """The standard library's way, stopping at :data:`MAX_BATCH_RECORDS` (for batches with very
    many commas, which the fast path would first turn into objects)."""
    head = json.loads(head_text)
    if not isinstance(head, dict):
        raise ValueError("the batch head is not an object")
    text = signed.decode("utf-8")
    texts: list[bytes] = []
    pos, end = 0, len(text)
    while pos < end:
        if len(texts) == MAX_BATCH_RECORDS:
            raise BatchRefused(f"more than {MAX_BATCH_RECORDS} records in one batch")
        _, stop = _STDLIB.raw_decode(text, pos)
        texts.append(text[pos:stop].encode("utf-8"))
        pos = stop
        if pos < end:
            if text[pos] != ",":
                raise ValueError(f"records are not comma-separated at {pos}")
            pos += 1
    return Batch(
        head.get("batch_id"), head.get("key_id"), head.get("signature"), texts, signed, head.get("digest")
    )


def decode_record(text: bytes) -> Any:
    """One record's value (msgspec; the standard library for what msgspec refuses).

    Raises:
        ValueError: not JSON.
    """
    try:
        return _ANY.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def encode_ack(
    batch_id: Any, acked: list[str], rejected: list[dict[str, str]], signer: BatchSigner | None = None
) -> bytes:
    """An ack, signed over its canonical JSON (serialised once: the signature sorts last)."""
    unsigned = dumps({"acked": acked, "batch_id": batch_id, "rejected": rejected})
    if signer is None:
        return unsigned.encode("utf-8")
    signature = {
        "alg": SIGNATURE_ALGORITHM,
        "key_id": signer.key_id,
        "value": signer.sign_bytes(unsigned.encode("utf-8")),
    }
    return (unsigned[:-1] + ',"signature":' + dumps(signature) + "}").encode("utf-8")


@dataclass(frozen=True)
class Ack:
    """An ack as a station reads it; ``document`` is what its signature is checked on."""

    batch_id: str
    acked: list[str]
    rejected: list[str]
    document: dict[str, Any]


def decode_ack(payload: bytes) -> Ack:
    """Read an ack (its signature is checked by the caller, which knows the receivers' keys).

    Raises:
        ValueError: not an ack.
    """
    try:
        document = _ANY.decode(payload)
        acked = [str(i) for i in document["acked"]]
        rejected = [str(r["record_id"]) for r in document["rejected"]]
        return Ack(str(document["batch_id"]), acked, rejected, document)
    except (msgspec.DecodeError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not an ack ({len(payload)} bytes)") from exc
