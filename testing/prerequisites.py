"""What a test does when something it needs cannot run on this machine: skip, naming it; fail in CI."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """True when CI=true: there the stack must run, so a missing prerequisite fails instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def unavailable(message: str, what: str = "it") -> None:
    """Skip, naming the missing prerequisite; fail instead when CI=true (`what` must run there)."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: {what} must run in CI)", pytrace=False)
    pytest.skip(message)
