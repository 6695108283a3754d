"""Model server processes: quiet request logs, one math thread, HTTP workers forked with the model loaded."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import time
import traceback
import warnings
from collections.abc import Callable


def quiet_request_logs() -> None:
    """No access or timing line per request (they cost more than a prediction); errors are still logged."""
    for name in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")


def one_math_thread() -> None:
    """Limit OpenMP/BLAS to one thread: a few-row prediction gains nothing from a pool and spin-waits.

    Call it once the model's native libraries are loaded, so they can be found.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def listening_socket(host: str, port: int, shared: bool = False, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to `host:port` and listening.

    Args:
        host: address to bind.
        port: TCP port.
        shared: with SO_REUSEPORT, so that each worker process binds a socket of its own on the same port
            and the kernel spreads new connections over them (one socket shared by all workers lets the
            first one to wake accept every connection).
        backlog: pending connections the kernel keeps.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # accepted connections inherit it: a response written in two parts must not wait for a delayed ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(backlog)
    return sock


def fork_worker(serve_forever: Callable[[], None]) -> int:
    """Fork a process that runs `serve_forever`, then exits; it gets SIGTERM if this process dies first.

    The child starts as a copy of this process, with the model already loaded: nothing is imported or
    unpickled, so it answers at once. It must reopen anything it cannot share (a database connection).

    Returns:
        the child's pid (in this process; the child never returns).
    """
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _die_with_parent()
        serve_forever()
        code = 0
    except BaseException:  # noqa: BLE001 - a worker reports whatever stopped it, then exits
        traceback.print_exc()
    finally:
        os._exit(code)


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent exits (prctl PR_SET_PDEATHSIG)."""
    parent = os.getppid()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent exited before the request took effect
        os._exit(0)


_PR_SET_PDEATHSIG = 1


def stop_workers(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM each worker, wait up to `timeout` seconds for all, SIGKILL the rest."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    waiting = set(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            waiting.discard(pid)
        time.sleep(0.05)
    for pid in waiting:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
