"""Redis for the stack (Feast online store): Debian's redis-server on 127.0.0.1, no persistence."""

from __future__ import annotations

import shutil
import socket

from infrastructure.local.service import (
    Launch,
    Log,
    Service,
    ServiceError,
    install_debian_package,
    own,
    unprivileged_user,
)

PACKAGE = "redis-server"


def install_redis(log: Log) -> str:
    """Return the redis-server binary, installing Debian's package first when running as root."""
    return install_debian_package("redis-server", PACKAGE, log)


def ping(port: int, timeout: float = 2.0) -> bytes:
    """Send PING over the Redis protocol and return the raw reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


class Redis(Service):
    """Feast's online store in the `stack` profile."""

    name = "redis"
    port_variable = "STACK_REDIS_PORT"

    def prepare(self, log: Log) -> None:
        install_redis(log)
        own(self.dir, unprivileged_user("redis"))

    def launch(self) -> Launch:
        binary = shutil.which("redis-server") or "redis-server"
        command = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--protected-mode", "yes"]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(self.dir)]
        command += ["--logfile", ""]
        return Launch(command=command, cwd=self.dir, user=unprivileged_user("redis"))

    def check(self) -> str:
        reply = ping(self.port)
        if not reply.startswith(b"+PONG"):
            raise ServiceError(f"redis answered PING with {reply!r}")
        return "PING -> PONG"
