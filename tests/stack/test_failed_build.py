"""A `dbt build` on Trino that fails leaves silver and gold as they were before it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from components.core.catalog import read_table
from components.core.settings import Settings, scoped_environ
from components.ingestion.ingest import run_ingest
from components.sources.ecommerce.generator import generate
from components.transformation.transform import TransformError, published_snapshots, run_transform
from testing.changes import INVALID_ROW_TESTS, append_invalid_rows, append_row
from testing.engines import MODELS, clear_lakehouse, make_engines
from testing.fingerprints import fingerprint
from testing.stack import StackServices

pytestmark = pytest.mark.stack

SCALE = 0.05
SEED = 11


@dataclass(frozen=True)
class FailedBuild:
    settings: Settings
    before: dict[str, int | None]
    contents: dict[str, dict]
    error: str


@pytest.fixture(scope="module")
def failed_build(stack: StackServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FailedBuild]:
    """A good build on Trino; then a new product price and rows that fail dbt's tests, and a build that
    merges the price into dim_product before it fails."""
    root = tmp_path_factory.mktemp("failed-build")
    generate(root / "data", scale=SCALE, seed=SEED)
    settings = make_engines(stack, root / "data", root).trino
    clear_lakehouse(stack)
    try:
        with scoped_environ(stack.env):
            run_ingest(settings)
            run_transform(settings)
            before = published_snapshots(settings)
            contents = {identifier: fingerprint(read_table(identifier, settings)) for identifier in before}
            # a valid new price, which dim_product merges before the invalid rows stop the build
            append_row(settings.data_dir / "products.csv", lambda rows: {"list_price_cents": "12345"})
            append_invalid_rows(settings.data_dir)
            run_ingest(settings)
            with pytest.raises(TransformError) as failure:
                run_transform(settings)
            yield FailedBuild(settings, before, contents, str(failure.value))
    finally:
        clear_lakehouse(stack)


def test_the_error_names_the_failing_tests_and_what_was_restored(failed_build: FailedBuild) -> None:
    for name in INVALID_ROW_TESTS:
        assert name in failed_build.error
    assert "silver/gold restored to their state before the build" in failed_build.error
    # dim_product took the new price before the failure, and was set back
    assert "silver.dim_product: back to snapshot" in failed_build.error


def test_every_table_is_back_at_its_snapshot_with_its_rows(
    stack: StackServices, failed_build: FailedBuild
) -> None:
    settings = failed_build.settings
    with scoped_environ(stack.env):
        assert published_snapshots(settings) == failed_build.before
        assert set(failed_build.before) == set(MODELS)
        for identifier, expected in failed_build.contents.items():
            assert fingerprint(read_table(identifier, settings)) == expected, identifier
    for identifier, snapshot in failed_build.before.items():
        assert stack.trino_snapshot(identifier) == snapshot, f"Trino reads {identifier} at another snapshot"
        rows = failed_build.contents[identifier]["rows"]
        assert stack.trino(f"SELECT count(*) FROM {identifier}") == [[rows]], identifier
    prices = stack.trino("SELECT list_price_cents FROM silver.dim_product WHERE product_id = 1")
    assert prices != [[12345]] and len(prices) == 1, "Trino still reads the price of the failed build"
