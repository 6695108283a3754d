"""Ingestion step: dlt loads every source file into the Iceberg namespace `bronze` (merge, incremental)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from components.iceberg_writer import dlt_iceberg_destination
from components.lakehouse import snapshot_ids
from components.settings import BRONZE, SOURCE_TABLES, Settings, get_settings

PIPELINE_NAME = "lakehouse_bronze"


@contextmanager
def _dlt_environment(settings: Settings) -> Iterator[None]:
    """dlt settings of the bronze load: tag each row with its load id and a row id, keep dlt's logs quiet."""
    values = {
        "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
        "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID": "true",
        "RUNTIME__LOG_LEVEL": os.environ.get("RUNTIME__LOG_LEVEL", "ERROR"),
    }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_ingest(settings: Settings | None = None, tables: Sequence[str] = SOURCE_TABLES) -> dict:
    """Load `data/<table>.csv` into `bronze.<table>`: upsert on primary keys, only rows past the cursor.

    Args:
        settings: profile settings; the default profile when None.
        tables: source tables to load.

    Returns:
        rows loaded per table in this run, the dlt load id, and the bronze snapshot ids after the load.
    """
    import dlt

    from components.sources.ecommerce import ecommerce

    settings = settings or get_settings()
    settings.ensure_dirs()
    with _dlt_environment(settings):
        pipeline = dlt.pipeline(
            pipeline_name=PIPELINE_NAME,
            pipelines_dir=str(settings.home / "dlt"),
            destination=dlt_iceberg_destination(settings),
            dataset_name=BRONZE,
            progress="log" if os.environ.get("LAKEHOUSE_PROGRESS") else None,
        )
        info = pipeline.run(ecommerce(data_dir=str(settings.data_dir), tables=tuple(tables)))
        info.raise_on_failed_jobs()
        trace = pipeline.last_trace
        rows = dict.fromkeys(tables, 0)
        if trace and trace.last_normalize_info:
            for table, count in trace.last_normalize_info.row_counts.items():
                if table in rows:
                    rows[table] = count
    return {
        "load_id": info.loads_ids[-1] if info.loads_ids else None,
        "rows_loaded": rows,
        "snapshots": snapshot_ids(BRONZE, settings),
    }
