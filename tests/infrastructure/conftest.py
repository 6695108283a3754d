"""Fixtures of the stack tests: free loopback ports and a STACK_* environment under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from components.core.ports import free_ports
from testing.stack import PORT_VARIABLES, STACK_DEFAULT_PORTS


def stack_environment(home: Path, cache: Path) -> dict[str, str]:
    """STACK_* variables for a private stack: its own home, its own ports, a given download cache."""
    env = {"STACK_HOME": str(home), "STACK_CACHE": str(cache)}
    ports = free_ports(len(PORT_VARIABLES), avoid=STACK_DEFAULT_PORTS)
    env.update({name: str(port) for name, port in zip(PORT_VARIABLES, ports, strict=True)})
    return env


@pytest.fixture
def stack_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A STACK_* environment under tmp_path, set in os.environ for the test."""
    env = stack_environment(tmp_path / "stack", tmp_path / "cache")
    for key in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "LAKEHOUSE_CATALOG_CLIENT_ID",
        "LAKEHOUSE_CATALOG_CLIENT_SECRET",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
