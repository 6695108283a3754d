"""The dbt project built from the same generated data on DuckDB (`local`) and on Trino (`stack`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from components.sources.ecommerce.generator import generate
from testing.engines import Engines, clear_lakehouse, make_engines
from testing.stack import StackServices

SCALE = 0.1
SEED = 7


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the shared `engines` build run first, before any module empties the stack's catalog
    for a lakehouse of its own (the whole pipeline, the failed build)."""
    here = Path(__file__).parent
    places = [i for i, item in enumerate(items) if here in item.path.parents]
    mine = sorted(
        (items[i] for i in places), key=lambda item: "engines" not in getattr(item, "fixturenames", ())
    )
    for place, item in zip(places, mine, strict=True):
        items[place] = item


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
