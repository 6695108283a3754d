"""One Iceberg catalog, two engines: pyiceberg writes, Trino reads; dbt-trino writes, pyiceberg reads."""

from __future__ import annotations

import pyarrow as pa
import pytest

from components.core.catalog import snapshot_ids
from components.core.settings import BRONZE, SOURCE_TABLES, scoped_environ
from testing.engines import MODELS, Engines

pytestmark = pytest.mark.stack


def sorted_rows(rows) -> list[tuple]:
    return sorted((tuple(row) for row in rows), key=repr)


def trino_rows(engines: Engines, identifier: str, columns: list[str]) -> list[tuple]:
    select = ", ".join(f'"{name}"' for name in columns)
    return sorted_rows(engines.stack.trino(f"SELECT {select} FROM {identifier}"))


def arrow_rows(table: pa.Table) -> list[tuple]:
    return sorted_rows(row.values() for row in table.to_pylist())


@pytest.mark.parametrize("table", SOURCE_TABLES)
def test_bronze_written_by_pyiceberg_reads_back_from_trino(engines: Engines, table: str) -> None:
    data = engines.read("trino", f"{BRONZE}.{table}")
    assert data.num_rows > 0
    assert {"_dlt_load_id", "_dlt_id"} <= set(data.column_names)
    assert trino_rows(engines, f"{BRONZE}.{table}", data.column_names) == arrow_rows(data)


@pytest.mark.parametrize("identifier", MODELS)
def test_models_written_by_dbt_trino_read_back_from_pyiceberg(engines: Engines, identifier: str) -> None:
    data = engines.read("trino", identifier)
    assert data.num_rows > 0
    assert arrow_rows(data) == trino_rows(engines, identifier, data.column_names)


def test_both_engines_see_the_same_current_snapshots(engines: Engines) -> None:
    ingested = engines.ingests["trino"][-1].snapshots
    built = engines.builds["trino"][-1]
    assert set(ingested) == {f"{BRONZE}.{t}" for t in SOURCE_TABLES}
    assert built.bronze_snapshots == ingested
    assert set(built.published) == set(MODELS)
    for identifier, snapshot_id in {**ingested, **built.published}.items():
        assert snapshot_id is not None, identifier
        assert engines.stack.trino_snapshot(identifier) == snapshot_id, identifier


def test_staging_models_are_iceberg_views_in_the_rest_catalog(engines: Engines) -> None:
    """dbt-trino's staging views are Iceberg views served by the REST catalog; pyiceberg lists them apart
    from the bronze tables, so views never pass for tables in snapshot lineage."""
    from pyiceberg.catalog import load_catalog

    staging = {f"stg_{table}" for table in SOURCE_TABLES}
    views = engines.stack.trino(
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'bronze'"
    )
    assert {row[0] for row in views} == staging
    catalog = load_catalog("lakehouse", **engines.stack.catalog_properties)
    assert {name for _, name in catalog.list_views(BRONZE)} == staging
    assert {name for _, name in catalog.list_tables(BRONZE)} == set(SOURCE_TABLES)
    with scoped_environ(engines.stack.env):
        assert set(snapshot_ids(BRONZE, engines.trino)) == {f"{BRONZE}.{t}" for t in SOURCE_TABLES}
