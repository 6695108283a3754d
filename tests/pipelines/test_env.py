"""`python -m pipelines.env`: the settings as lines a shell can take, whatever the values hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from components.core.settings import get_settings
from pipelines.env import MASK, render, secret_keys


def test_exported_values_are_evaluated_as_values_never_as_commands(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = f"redis://:pa ss'$(touch {marker})`touch {marker}`@redis:6379/0"
    env = {**os.environ, "LAKEHOUSE_HOME": str(tmp_path), "LAKEHOUSE_REDIS_URL": hostile}
    script = f'eval "$({sys.executable} -m pipelines.env --export)"; printf %s "$LAKEHOUSE_REDIS_URL"'
    done = subprocess.run(["/bin/sh", "-ec", script], capture_output=True, text=True, env=env, check=True)
    assert done.stdout == hostile and not marker.exists()


def test_credentials_are_masked_when_shown_and_only_then(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_REDIS_URL", "redis://:secret@redis:6379/0")
    settings = get_settings("local")
    values = settings.env()
    masked = secret_keys(settings, values)
    assert {"LAKEHOUSE_REDIS_URL", "LAKEHOUSE_FEAST_REDIS_CONNECTION"} <= masked
    shown = render(values, export=False, masked=masked)
    assert "secret" not in shown and f"LAKEHOUSE_REDIS_URL={MASK}" in shown
    assert "LAKEHOUSE_REDIS_URL=redis://:secret@redis:6379/0" in render(values, export=False)
