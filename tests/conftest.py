"""Fixtures shared by every test folder: `stack`, the real stack services for the tests marked `stack`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from testing.prerequisites import unavailable
from testing.stack import StackServices, StackStartFailed, StackUnavailable, private_stack

# The suite never reads the env file of a stack this machine may run (`make stack-up`): the tests that use
# one start their own and set its variables themselves.
os.environ.setdefault("LAKEHOUSE_STACK_ENV_FILE", os.devnull)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the `stack` fixture is marked `stack`, so `-m "not stack"` leaves it out."""
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack() -> Iterator[StackServices]:
    """The stack services (PostgreSQL, Redis, S3, Trino, MLflow) on free loopback ports, once per session.

    They run from a new folder under /tmp with their own credentials, are started only when a test asks
    for them, and are stopped at the end of the session, failed tests or not. Skips, naming the missing
    prerequisite, when they cannot run on this machine; fails instead when CI=true. Fails when a service
    does not start.
    """
    try:
        with private_stack() as services:
            yield services
    except StackUnavailable as exc:
        unavailable(f"the stack services cannot start on this machine: {exc}", "the stack")
    except StackStartFailed as exc:
        pytest.fail(str(exc), pytrace=False)
