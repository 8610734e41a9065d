"""A PostgreSQL server for the tests: the machine's, or one started for the session.

Why: the receiver's PostgreSQL store is tested against a real server. The developers' machines
and CI have one on 127.0.0.1:5432 (user ``postgres``); where there is none, the suite starts a
throwaway cluster of its own (``initdb`` + ``pg_ctl``, as the ``postgres`` user when run as
root), and where it cannot do that either, the PostgreSQL tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from prescreen.sync.broker import free_port

MACHINE_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Server:
    """A reachable server: ``admin_url`` reaches its ``postgres`` database as a superuser."""

    admin_url: str
    data_dir: Path | None = None  # set when the suite started it (and must stop it)

    def stop(self) -> None:
        """Stop a server the suite started; the machine's is left alone."""
        if self.data_dir is not None:
            _as_owner(["pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "stop"], self.data_dir)
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def reachable(url: str) -> str | None:
    """None if ``url`` answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def _as_owner(command: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL tool as the data directory's owner (it refuses to run as root)."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, cwd=data_dir.parent
    )


def start_private() -> tuple[Server | None, str]:
    """Start a throwaway server on a free port; (server, "") or (None, why it could not)."""
    missing = [tool for tool in ("initdb", "pg_ctl") if shutil.which(tool) is None]
    if missing:
        return None, f"{' and '.join(missing)} not found (apt-get install postgresql)"
    root = Path(tempfile.mkdtemp(prefix="prescreen-pg-"))
    data_dir = root / "data"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return None, "running as root without runuser to start PostgreSQL as the postgres user"
        shutil.chown(root, "postgres")
    port = free_port()
    steps = (
        ["initdb", "-D", str(data_dir), "-U", "postgres", "--auth=trust", "--no-sync"],
        ["pg_ctl", "-D", str(data_dir), "-w", "-l", str(root / "log"), "-o",
         f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
    )  # fmt: skip
    for step in steps:
        result = _as_owner(step, data_dir)
        if result.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            return None, f"{step[0]} failed: {(result.stderr or result.stdout).strip()[-300:]}"
    return Server(f"postgresql://postgres@127.0.0.1:{port}/postgres", data_dir), ""


def find_or_start() -> tuple[Server | None, str]:
    """The machine's server if it answers, else one started here; or (None, the reasons)."""
    why_not = reachable(MACHINE_SERVER)
    if why_not is None:
        return Server(MACHINE_SERVER), ""
    if why_not.startswith("psycopg"):
        return None, why_not
    server, why_not_started = start_private()
    if server is None:
        return (
            None,
            f"no PostgreSQL on 127.0.0.1:5432 ({why_not}) and none could be started: {why_not_started}",
        )
    return server, ""
