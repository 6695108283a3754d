"""The dbt project built from the same generated data on DuckDB (`local`) and on Trino (`stack`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.datagen import generate
from tests.stack.engines import Engines, clear_lakehouse, make_engines
from tests.stack.services import StackServices

SCALE = 0.1
SEED = 7


@pytest.fixture(scope="session")
def engines(stack: StackServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    """Data generated once (scale 0.1), ingested into a local catalog and the stack's emptied one, built on
    both engines; the stack's bronze/silver/gold are emptied again at the end."""
    root = tmp_path_factory.mktemp("engines")
    generate(root / "data", scale=SCALE, seed=SEED)
    built = make_engines(stack, root / "data", root)
    clear_lakehouse(stack)
    try:
        built.ingest()
        built.build_both()
        yield built
    finally:
        clear_lakehouse(stack)
