"""Ed25519 on PyNaCl stays what it was on pyca/cryptography: same key files, same signatures.

``fixtures/device-key-v1.pem`` is a throwaway key written by ``DeviceKey.load_or_create`` when it
used cryptography (commit 32e74a0); the constants below are what that code signed with it. Stations
in the field keep their key files and trust entries, and Ed25519 is deterministic, so the signature
of the same bytes by the same key must come out byte for byte the same.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prescreen.core.errors import ConfigError
from prescreen.core.signing import DeviceKey, KeyRing, TrustStore, public_key, verify_detached

OLD_KEY = Path(__file__).parents[1] / "fixtures" / "device-key-v1.pem"
KEY_ID = "7aef6c0bf6c6a01a"
PUBLIC = "bjkJNZAYMGWs1xwqel1GsrW7ht9Z21AK9P7BnFVfx70="
RECORD = {"record_id": "r-1", "seq": 7, "note": "brake pads für Autos", "n": 1.5}
RECORD_SIGNATURE = (
    "VivXXfK/d05g9ofsACObI5XpNHuXBnpGjXnu1llTwJLZ8fMZpiu6lgar9V7js3DZMWDr95ZVvJLmHJwXLJUfCw=="
)
BATCH_SIGNATURE = (
    "z43gi88SRIS651gCM/vrnAPoiK+h5cm8BknT3BL6N/9oDyza3Y8Bi9GsbBABry7L9qd96lQnURGzLhtsSmGxAQ=="
)


def _old_key(tmp_path: Path) -> DeviceKey:
    path = tmp_path / "device.key"
    shutil.copy(OLD_KEY, path)
    path.chmod(0o600)
    return DeviceKey.load_or_create(path)


def test_a_key_file_of_the_cryptography_code_loads_as_the_same_identity(tmp_path: Path) -> None:
    key = _old_key(tmp_path)
    assert (key.key_id, key.public_b64) == (KEY_ID, PUBLIC)
    assert key.path is not None
    assert key.path.read_bytes() == OLD_KEY.read_bytes()  # loaded, not replaced


def test_signatures_are_byte_identical_to_the_cryptography_code(tmp_path: Path) -> None:
    key = _old_key(tmp_path)
    assert key.sign(dict(RECORD))["signature"]["value"] == RECORD_SIGNATURE
    assert key.sign_bytes(b"batch of records\n") == BATCH_SIGNATURE
    text = key.sign_text(dict(RECORD))
    assert RECORD_SIGNATURE in text
    entry = TrustStore([{"key_id": KEY_ID, "site_id": "s", "device_id": "d", "public_key": PUBLIC}])
    assert entry.check_from(key.sign(dict(RECORD)), "s", "d") is None


def test_new_key_files_are_what_cryptography_writes_and_reads(tmp_path: Path) -> None:
    """A key made now is the same PKCS#8 PEM cryptography writes for the same seed, and signs
    what cryptography signs: a station can go back to a build on cryptography with its key."""
    path = tmp_path / "new.key"
    key = DeviceKey.load_or_create(path)
    theirs = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(theirs, Ed25519PrivateKey)
    pem = theirs.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert pem == path.read_bytes()
    raw = theirs.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.b64encode(raw).decode() == key.public_b64
    data = b"the same bytes"
    assert key.sign_bytes(data) == base64.b64encode(theirs.sign(data)).decode()
    assert verify_detached(key.public, data, base64.b64encode(theirs.sign(data)).decode())


def test_a_key_of_another_kind_or_encrypted_is_refused_not_replaced(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    for name, pem in {
        "ec.key": other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "encrypted.key": Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ),
    }.items():
        path = tmp_path / name
        path.write_bytes(pem)
        path.chmod(0o600)
        with pytest.raises(ConfigError, match="cannot load the device signing key"):
            DeviceKey.load_or_create(path)
        assert path.read_bytes() == pem


@pytest.mark.parametrize("text", ["", "not base64 !!", base64.b64encode(b"short").decode()])
def test_a_malformed_public_key_is_a_value_error_everywhere(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (binascii.Error and nacl's ValueError alike)
        public_key(text)
    with pytest.raises(ConfigError, match="not an Ed25519 public key"):
        KeyRing([text])
    with pytest.raises(ValueError):  # noqa: PT011
        TrustStore([{"key_id": "x", "site_id": "s", "device_id": "d", "public_key": text}])
