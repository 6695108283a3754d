"""One pipeline run at a time per lakehouse: an exclusive lock on a file in the profile's state folder."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from components.core.settings import Settings

LOCK_FILE = "run.lock"


class LakehouseBusy(RuntimeError):
    """Raised when another run holds the lakehouse and the caller chose not to wait (or waited too long)."""


@contextmanager
def lakehouse_lock(settings: Settings, wait: float | None = 0.0, poll: float = 1.0) -> Iterator[None]:
    """Hold the run lock of `settings`' lakehouse for the duration of the block.

    The kernel releases the lock when its holder ends, however it ends (SIGKILL included), so a crashed
    run never leaves the lakehouse locked. The file records who holds it, for the message of the next one.

    Args:
        settings: the profile whose state folder holds the lock file.
        wait: seconds to wait for a running holder; 0 fails at once, None waits without limit.
        poll: seconds between two attempts while waiting.

    Raises:
        LakehouseBusy: another run holds the lock (its pid, host and start time named).
    """
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / LOCK_FILE
    with path.open("a+") as fh:
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise LakehouseBusy(_busy_message(fh, settings, wait)) from None
                time.sleep(poll)
        fh.seek(0)
        fh.truncate()
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        fh.write(json.dumps(holder))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _busy_message(fh, settings: Settings, waited: float | None) -> str:
    fh.seek(0)
    try:
        holder = json.loads(fh.read() or "{}")
    except ValueError:
        holder = {}
    who = (
        f"run {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}"
        if holder
        else "another run"
    )
    after = f" after waiting {waited:g} s" if waited else ""
    return (
        f"the {settings.profile!r} lakehouse at {settings.home} is busy{after}: {who} holds "
        f"{settings.home / LOCK_FILE}; wait for it to finish, or pass --wait SECONDS to queue behind it"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
