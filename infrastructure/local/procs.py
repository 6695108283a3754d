"""Start, find and stop the stack's server processes by pid file; check ports; read log tails."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file holds: the process id and its kernel start time (guards against reused pids)."""

    pid: int
    start_ticks: int
    port: int
    command: list[str]


def start_ticks(pid: int) -> int | None:
    """Kernel start time of `pid` in clock ticks, or None when no such live (non-zombie) process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True when a TCP connection to `host:port` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a log file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class PidFile:
    """The pid file of one service under `<run dir>/<name>.pid`."""

    def __init__(self, run_dir: Path, name: str) -> None:
        self.path = run_dir / f"{name}.pid"

    def read(self) -> ProcessRecord | None:
        try:
            data = json.loads(self.path.read_text())
            return ProcessRecord(
                int(data["pid"]), int(data["start_ticks"]), int(data["port"]), data["command"]
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, record: ProcessRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record.__dict__))
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def alive(self) -> ProcessRecord | None:
        """The recorded process if it is still the same live process; a stale file is removed."""
        record = self.read()
        if record is None:
            if self.path.exists():
                self.remove()
            return None
        if start_ticks(record.pid) != record.start_ticks:
            self.remove()
            return None
        return record


def spawn(
    command: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> int:
    """Start `command` detached in its own session, stdout and stderr appended to `log_path`.

    Args:
        command: program and arguments.
        log_path: log file (created; a header line marks each start).
        env: full environment of the child (default: this process's).
        cwd: working directory.
        user: run as this (unprivileged) user instead of the caller.

    Returns:
        The process id (also the process group id).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n=== {stamp} starting: {' '.join(command)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            user=user,
            group=pwd.getpwnam(user).pw_gid if user else None,
            extra_groups=[] if user else None,
            start_new_session=True,
            close_fds=True,
        )
    return proc.pid


def _reap(pid: int) -> None:
    """Collect the exit status when `pid` is a child of this process (avoids zombies in tests)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _process_table() -> dict[int, tuple[int, int, int]]:
    """Every live (non-zombie) process: pid -> (parent pid, process group id, start ticks)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] not in ("Z", "X"):
            table[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[19]))
    return table


def family(pid: int, with_descendants: bool = True) -> dict[int, int]:
    """The processes a server owns: members of process group `pid` and (optionally) all descendants.

    Descendants matter because some servers (PostgreSQL) put each child in a session of its own.
    A process group id is never reused while a member lives, so group members are always the server's.

    Returns:
        pid -> start ticks of each live process found.
    """
    table = _process_table()
    members = {p for p, (_, pgid, _) in table.items() if pgid == pid}
    if with_descendants:
        if pid in table:
            members.add(pid)
        frontier = list(members)
        while frontier:
            parent = frontier.pop()
            for child, (ppid, _, _) in table.items():
                if ppid == parent and child not in members:
                    members.add(child)
                    frontier.append(child)
    return {p: table[p][2] for p in members}


def _still_alive(known: dict[int, int]) -> dict[int, int]:
    for pid in known:
        _reap(pid)
    return {pid: ticks for pid, ticks in known.items() if start_ticks(pid) == ticks}


def _wait_all_gone(record: ProcessRecord, known: dict[int, int], seconds: float) -> dict[int, int]:
    """Wait until every process in `known` (plus late members of its group) exited; return survivors."""
    deadline = time.monotonic() + seconds
    while True:
        known = _still_alive(known)
        group = family(record.pid, with_descendants=False)
        # The group id is surely ours while its leader or one of our known processes is still in it.
        if start_ticks(record.pid) == record.start_ticks or known.keys() & group.keys():
            known = _still_alive({**known, **group})
        if not known or time.monotonic() >= deadline:
            return known
        time.sleep(0.1)


def stop(record: ProcessRecord, first_signal: int = signal.SIGTERM, grace: float = 20.0) -> str:
    """Stop a recorded server and every process it started: `first_signal`, wait `grace` s, then SIGKILL.

    Returns:
        "stopped" (all gone after the first signal), "killed" (needed SIGKILL) or "not running".
    """
    pgid = record.pid
    leader_alive = start_ticks(record.pid) == record.start_ticks
    if not leader_alive and start_ticks(record.pid) is not None:
        return "not running"  # the pid now names another process, so group `pgid` cannot be ours
    # Without the leader its orphans have new parents: only its old process group can still be found.
    known = family(pgid, with_descendants=leader_alive)
    if not known:
        return "not running"
    if leader_alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, first_signal)
        known = _wait_all_gone(record, known, grace)
        if not known:
            return "stopped"
    if known.keys() & family(pgid, with_descendants=False).keys():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    for pid, ticks in known.items():
        if start_ticks(pid) == ticks:  # still the same process, not a reused pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    survivors = _wait_all_gone(record, known, 10.0)
    if survivors:
        raise RuntimeError(f"processes {sorted(survivors)} of {record.command[0]} survived SIGKILL")
    return "killed"


def wait_until(
    check: Callable[[], bool], timeout: float, alive: Callable[[], bool], interval: float = 0.5
) -> bool:
    """Poll `check` until it is true (True), the process dies or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - a server that is still starting answers with all kinds of errors
            pass
        if not alive():
            return False
        time.sleep(interval)
    return False
