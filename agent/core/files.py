"""Files that hold personal data or secrets are created readable by their owner only (0600).

Why here and not by the umask: under systemd the unit's ``UMask=0077`` does it, but the agent, the
receiver and the CLI also run from a shell (demo, benches, a first try), where the umask is usually
022 and a consignee's name and address would be readable by every local user. SQLite creates its
``-wal`` and ``-shm`` files with the database file's mode, so making the file first is enough.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("prescreen.files")


def private(path: str | Path) -> Path:
    """Create ``path`` (and its folder) as an empty 0600 file if it is missing; an existing file
    readable by others is tightened to 0600 with one log line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        tighten(path)
    return path


def tighten(path: Path) -> None:
    """Set an existing file readable by others to 0600, with one log line."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(0o600)
        log.warning("file was readable by others; set to 0600", extra={"path": str(path), "mode": oct(mode)})
