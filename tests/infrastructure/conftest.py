"""Fixtures of the stack tests: free loopback ports and a STACK_* environment under tmp_path."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

PORT_VARIABLES = (
    "STACK_PG_PORT",
    "STACK_REDIS_PORT",
    "STACK_S3_PORT",
    "STACK_TRINO_PORT",
    "STACK_MLFLOW_PORT",
)


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that nothing listens on right now (never the stack's defaults)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def stack_environment(home: Path, cache: Path) -> dict[str, str]:
    """STACK_* variables for a private stack: its own home, its own ports, a given download cache."""
    env = {"STACK_HOME": str(home), "STACK_CACHE": str(cache)}
    env.update({name: str(port) for name, port in zip(PORT_VARIABLES, free_ports(5), strict=True)})
    return env


@pytest.fixture
def stack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A STACK_* environment under tmp_path, set in os.environ for the test."""
    env = stack_environment(tmp_path / "stack", tmp_path / "cache")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
