"""One Iceberg catalog, two engines: pyiceberg writes, Trino reads; dbt-trino writes, pyiceberg reads."""

from __future__ import annotations

import pyarrow as pa
import pytest

from components.lakehouse import snapshot_ids
from components.settings import BRONZE, SOURCE_TABLES, scoped_environ
from tests.stack.engines import MODELS, Engines

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
    ingested = engines.ingests["trino"][-1]["snapshots"]
    built = engines.builds["trino"][-1]
    assert set(ingested) == {f"{BRONZE}.{t}" for t in SOURCE_TABLES}
    assert built["bronze_snapshots"] == ingested
    assert set(built["published"]) == set(MODELS)
    for identifier, snapshot_id in {**ingested, **built["published"]}.items():
        assert snapshot_id is not None, identifier
        assert engines.stack.trino_snapshot(identifier) == snapshot_id, identifier


def test_staging_models_are_iceberg_views_in_the_jdbc_catalog(engines: Engines) -> None:
    """dbt-trino's staging views live in the shared catalog (schema V1 rows typed VIEW); pyiceberg lists
    only the bronze tables, so views never pass for tables in snapshot lineage."""
    import sqlalchemy

    staging = {f"stg_{table}" for table in SOURCE_TABLES}
    views = engines.stack.trino(
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'bronze'"
    )
    assert {row[0] for row in views} == staging
    engine = sqlalchemy.create_engine(engines.stack.config.pg_url("iceberg_catalog"))
    try:
        with engine.connect() as con:
            rows = con.execute(
                sqlalchemy.text(
                    "SELECT table_name, iceberg_type FROM iceberg_tables "
                    "WHERE catalog_name = 'lakehouse' AND table_namespace = 'bronze'"
                )
            ).all()
    finally:
        engine.dispose()
    assert dict(rows) == {**dict.fromkeys(SOURCE_TABLES, "TABLE"), **dict.fromkeys(staging, "VIEW")}
    with scoped_environ(engines.stack.env):
        assert set(snapshot_ids(BRONZE, engines.trino)) == {f"{BRONZE}.{t}" for t in SOURCE_TABLES}
