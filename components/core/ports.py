"""Loopback TCP ports for the servers the platform starts for itself: a model server asked once by the
deploy step, private API servers and stack services in tests and benchmarks."""

from __future__ import annotations

import contextlib
import errno
import itertools
import random
import socket
from collections.abc import Collection
from pathlib import Path

#: Free ports are drawn from here up to the kernel's ephemeral range (its low end read from /proc).
PRIVATE_PORTS_FROM, EPHEMERAL_LOW = 20000, 32768


class NoFreePort(RuntimeError):
    """Every candidate port is taken."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on `host:port` (or the address cannot be bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def free_ports(count: int = 1, avoid: Collection[int] = ()) -> list[int]:
    """`count` distinct loopback ports nothing listens on now, none of them in `avoid`.

    They are drawn below the kernel's ephemeral range, so that no outgoing connection takes one of them
    between now and the moment its server binds it.
    """
    low = EPHEMERAL_LOW
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    taken = set(avoid)
    candidates = [p for p in range(PRIVATE_PORTS_FROM, max(low, PRIVATE_PORTS_FROM + 1000)) if p not in taken]
    random.SystemRandom().shuffle(candidates)
    ports = list(itertools.islice((p for p in candidates if not port_in_use(p)), count))
    if len(ports) < count:
        raise NoFreePort(f"fewer than {count} free loopback ports from {PRIVATE_PORTS_FROM} to {low}")
    return ports


def free_port() -> int:
    """One loopback port nothing listens on now (see `free_ports`)."""
    return free_ports(1)[0]
