"""`settings`: the `local` profile in a temporary state folder, over the tiny source of `tiny_source.py`."""

from __future__ import annotations

import pytest

from components.settings import get_settings
from tests.components.tiny_source import ROWS, write_source


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    write_source(tmp_path / "data", ROWS)
    return get_settings("local")
