"""Model updates from the customs side: a signed manifest, fetched, verified, swapped in atomically.

The downlink message carries a manifest ``{"version", "files": [{"name", "url", "sha256"}]}`` and
an Ed25519 signature (``manifest_signature``) over its canonical JSON by the key the station
trusts for updates (``[sync] update_key``). The files are fetched with httpx (timeouts, a size
cap), each checked against its SHA-256, written into a new directory that is renamed into place
only when complete, and loaded. Only a model that loads is swapped in; anything else leaves the
running model as it was (the rollback) and the message is acked as rejected. The active model's
directory is kept in the outbox's settings, so a restart loads the same model, or falls back to
the configured one if it no longer loads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from prescreen.core.errors import SyncError
from prescreen.core.records import dumps, epoch_s
from prescreen.core.signing import public_key, verify_detached
from prescreen.sync.topics import addressed_to

log = logging.getLogger("prescreen.downlink")
MAX_FILE_BYTES = 20 * 2**20
# Version and file names: a letter or digit first, so never "..", "." or a hidden file.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class UpdateError(SyncError):
    """A model update that was not applied; the running model is unchanged."""


def verify_manifest(
    message: dict[str, Any],
    update_key: str,
    *,
    site: str,
    device: str,
    installed_serial: int,
    now: float | None = None,
) -> dict[str, Any]:
    """The manifest of a ``model`` message, if its signature is by ``update_key`` and it binds
    this station (``target``), is not expired (``expires_at``) and is newer (``serial``) than the
    one installed: an old signed manifest replayed cannot roll a station back.

    Raises:
        UpdateError: no key configured, bad signature, a malformed, mistargeted, expired or old
            manifest.
    """
    if not update_key:
        raise UpdateError("model updates are off: no [sync] update_key configured")
    manifest = message.get("manifest")
    if not isinstance(manifest, dict):
        raise UpdateError("a model message needs a manifest object")
    try:
        public = public_key(update_key)
    except ValueError:
        raise UpdateError("[sync] update_key is not an Ed25519 public key in base64") from None
    if not verify_detached(public, dumps(manifest).encode(), str(message.get("manifest_signature"))):
        raise UpdateError("manifest signature is not valid for the configured update key")
    if not addressed_to(manifest.get("target"), site, device):
        raise UpdateError(f"manifest is for {str(manifest.get('target'))[:120]}, not {site}/{device}")
    try:
        expires = epoch_s(str(manifest["expires_at"]))
    except (KeyError, ValueError):
        raise UpdateError("manifest needs expires_at (RFC 3339)") from None
    if (time.time() if now is None else now) > expires:
        raise UpdateError(f"manifest expired at {manifest['expires_at']}")
    serial = manifest.get("serial")
    if type(serial) is not int or serial < 1:
        raise UpdateError("manifest needs a serial (an integer from 1)")
    if serial <= installed_serial:
        raise UpdateError(f"serial {serial} is not newer than the installed {installed_serial}: an old one")
    version, files = manifest.get("version"), manifest.get("files")
    if not isinstance(version, str) or not _SAFE_NAME.match(version):
        raise UpdateError("manifest version must be a plain name")
    if not isinstance(files, list) or not files:
        raise UpdateError("manifest lists no files")
    for entry in files:
        if not (
            isinstance(entry, dict)
            and _SAFE_NAME.match(str(entry.get("name")))
            and re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256")))
            and str(entry.get("url", "")).startswith(("https://", "http://"))
        ):
            raise UpdateError(f"manifest file entry is malformed: {str(entry)[:200]}")
    return manifest


def check_installed(manifest: dict[str, Any], directory: Path, what: str = "the shadow model") -> None:
    """That ``directory`` holds exactly the files the signed manifest lists (by SHA-256): a
    promotion makes live the shadow model that was evaluated, not whatever its directory holds now.

    Raises:
        UpdateError: a file missing or different (``what`` names the directory in the reason).
    """
    for entry in manifest["files"]:
        path = _inside(directory, str(entry["name"]))
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise UpdateError(f"{entry['name']}: not in {what}: {exc.strerror}") from None
        if digest != entry["sha256"]:
            raise UpdateError(f"{entry['name']}: {what}'s file differs from the manifest")


def install_dir(manifest: dict[str, Any], models_dir: Path) -> Path:
    """Where a verified manifest's files go: ``models_dir/<version>.<serial>``.

    Per version *and serial*, so a fetch never replaces a directory a model runs from. Customs
    may re-send a fixed model under the same version name with a newer serial; with one directory
    per version, that fetch deleted the live (or shadow, or rollback) model's files, and if the
    new files then did not load nothing was left to restart on. Refusing a version equal to the
    running one was the other choice, but it would refuse that legitimate re-send and would have
    to know every directory still in use; a serial is never installed twice (each must be newer
    than the installed one), so ``<version>.<serial>`` is a directory no installed model uses.
    """
    _inside(models_dir, str(manifest["version"]))  # the version is a plain name ...
    return models_dir.resolve() / f"{manifest['version']}.{int(manifest['serial'])}"  # ... and so is this


def fetch(manifest: dict[str, Any], models_dir: Path, *, timeout_s: float = 30.0) -> Path:
    """Download and verify every file into :func:`install_dir`; returns that directory.

    Nothing is ever deleted but this fetch's own staging directory. If the directory is there
    already (the same manifest fetched before and its answer not committed), it is used as it
    is when it holds exactly the manifest's files, and refused otherwise.

    Raises:
        UpdateError: a download failed, was too large, or did not match its SHA-256; or the
            directory exists with other files.
    """
    final = install_dir(manifest, models_dir)
    if final.exists():
        check_installed(manifest, final, f"the existing {final.name}")
        return final
    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=models_dir))  # one per update, never shared
    import httpx  # only when a model update arrives: the agent's resident set stays smaller

    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
            for entry in manifest["files"]:
                try:
                    _download(client, entry, _inside(staging, entry["name"]))
                except httpx.HTTPError as exc:
                    raise UpdateError(f"{entry['name']}: download failed: {exc}") from None
        _fsync_dir(staging)
        os.rename(staging, final)  # atomic: the directory is complete or absent (never replaced)
        _fsync_dir(models_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _inside(directory: Path, name: str) -> Path:
    """``directory/name``, checked to stay inside ``directory`` before anything is written or deleted.

    Raises:
        UpdateError: the name would leave the directory.
    """
    path = (directory / name).resolve()
    if not _SAFE_NAME.match(name) or path.parent != directory.resolve():
        raise UpdateError(f"{name!r} would leave {directory}")
    return path


def _download(client: Any, entry: dict[str, Any], target: Path) -> None:
    digest = hashlib.sha256()
    size = 0
    with client.stream("GET", entry["url"]) as response:
        if response.status_code != 200:
            raise UpdateError(f"{entry['name']}: HTTP {response.status_code} from {entry['url']}")
        with target.open("wb") as handle:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise UpdateError(f"{entry['name']}: larger than {MAX_FILE_BYTES} bytes")
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    if digest.hexdigest() != entry["sha256"]:
        raise UpdateError(f"{entry['name']}: SHA-256 does not match the manifest")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
