"""systemd's readiness and watchdog protocol (sd_notify), without linking libsystemd.

Why hand-written: the protocol is one datagram of ``KEY=value`` lines to the socket named in
``NOTIFY_SOCKET`` (sd_notify(3)); a dependency for ten lines would cost more than it saves. Outside
systemd (no ``NOTIFY_SOCKET``) every call is a no-op, so the same code runs in a terminal.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("prescreen.sdnotify")
_failing = {"now": False}  # log a failure once, and its recovery, not every two seconds


def notify(**fields: str) -> bool:
    """Send ``FIELD=value`` lines (``READY="1"``, ``STATUS="..."``, ``WATCHDOG="1"``, ...).

    Returns False, never raises, when there is no manager to tell or the send failed: a lost
    notification must not take the pipeline down (systemd's watchdog will act if it matters).
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Never block: a manager that stops reading (a full queue) must not freeze the
            # service loop, which would also stop it from shutting down on SIGTERM.
            sock.setblocking(False)
            sock.sendto(message, address)
    except OSError as exc:
        if not _failing["now"]:
            log.warning("sd_notify failed (logged once until it works again)", extra={"reason": str(exc)})
        _failing["now"] = True
        return False
    if _failing["now"]:
        log.info("sd_notify works again")
        _failing["now"] = False
    return True


def watchdog_interval_s() -> float | None:
    """Half of systemd's WatchdogSec (the recommended petting interval), or None when unset."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
