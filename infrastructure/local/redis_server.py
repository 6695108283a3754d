"""Redis for the stack (Feast online store): Debian's redis-server on 127.0.0.1, no persistence."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

from infrastructure.local.service import Launch, Log, Service, ServiceError, own, unprivileged_user

PACKAGE = "redis-server"


def install_redis(log: Log) -> str:
    """Return the redis-server binary, installing Debian's package first when running as root."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServiceError(f"redis-server not found: install it with `apt-get install -y {PACKAGE}`")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", PACKAGE]):
        log(f"redis: running {' '.join(command)}")
        done = subprocess.run(
            command,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ServiceError(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-2000:]}")
    found = shutil.which("redis-server")
    if not found:
        raise ServiceError(f"{PACKAGE} installed but redis-server is not on PATH")
    return found


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
