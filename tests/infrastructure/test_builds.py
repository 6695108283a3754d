"""The builds' CPU priority (`LAKEHOUSE_BUILD_NICE`), seen by a real child process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from infrastructure.local.builds import BUILD_NICE_DEFAULT, BUILD_NICE_ENV, _niced
from infrastructure.local.service import ServiceError

PRINT_NICE = [sys.executable, "-c", "import os; print(os.nice(0))"]


def _child_niceness() -> int:
    return int(subprocess.run(_niced(PRINT_NICE), capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize(("setting", "increment"), [(None, BUILD_NICE_DEFAULT), ("0", 0), (" 3 ", 3)])
def test_builds_run_at_the_configured_priority(monkeypatch, setting, increment):
    if setting is None:
        monkeypatch.delenv(BUILD_NICE_ENV, raising=False)
    else:
        monkeypatch.setenv(BUILD_NICE_ENV, setting)
    ours = os.nice(0)
    assert _child_niceness() == min(ours + increment, 19)
    if increment == 0:
        assert _niced(PRINT_NICE) == PRINT_NICE


@pytest.mark.parametrize("setting", ["-5", "20", "low", "1.5"])
def test_a_priority_out_of_range_is_named(monkeypatch, setting):
    monkeypatch.setenv(BUILD_NICE_ENV, setting)
    with pytest.raises(ServiceError, match=rf"{BUILD_NICE_ENV}='{setting}'.*0 to 19"):
        _niced(PRINT_NICE)
