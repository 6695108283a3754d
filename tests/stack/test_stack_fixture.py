"""The `stack` fixture skips, naming the reason, when the services cannot run here; with CI=true it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.core.settings import REPO_ROOT

USES_STACK = """
from tests.conftest import stack  # noqa: F401


def test_uses_stack(stack):
    raise AssertionError("the stack services should not have started")
"""


def run_pytest(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on a test that asks for `stack`, where no download can be found or fetched."""
    (folder / "test_uses_stack.py").write_text(USES_STACK)
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "STACK_CACHE": str(folder / "empty-cache"),
        "STACK_MAVEN_URL": "http://127.0.0.1:9/maven2",
        **env,
    }
    command = [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(folder)]
    return subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=120)


def test_missing_prerequisite_skips_with_its_reason(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, CI="")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 skipped" in result.stdout
    assert "the stack services cannot start on this machine" in result.stdout
    assert "Maven Central cannot be reached" in result.stdout or "Java" in result.stdout


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_missing_prerequisite_fails_in_ci(tmp_path: Path, ci: str) -> None:
    result = run_pytest(tmp_path, CI=ci)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "1 error" in result.stdout
    assert "CI=true: the stack must run in CI" in result.stdout
