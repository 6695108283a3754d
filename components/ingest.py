"""Ingestion step: dlt loads every source file into the Iceberg namespace `bronze` (merge, incremental)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from components.iceberg_writer import dlt_iceberg_destination
from components.lakehouse import snapshot_ids
from components.lineage import dvc_data_version, source_data_hash
from components.settings import BRONZE, SOURCE_TABLES, Settings, get_settings, scoped_environ

PIPELINE_NAME = "lakehouse_bronze"

log = logging.getLogger(__name__)


def _dlt_environment() -> dict[str, str]:
    """dlt settings of the bronze load: tag each row with its load id and a row id, keep dlt's logs quiet."""
    return {
        "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
        "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID": "true",
        "RUNTIME__LOG_LEVEL": os.environ.get("RUNTIME__LOG_LEVEL", "ERROR"),
    }


def run_ingest(settings: Settings | None = None, tables: Sequence[str] = SOURCE_TABLES) -> dict:
    """Load `data/<table>.csv` into `bronze.<table>`: upsert on primary keys, only rows past the cursor.

    dlt keeps its cursors in a working folder under the state folder, apart from the catalog. When a
    requested bronze table is not in the catalog (a new stack, a dropped table) but that folder has run
    before, its cursors describe loads the catalog no longer holds: the folder is reset and every file is
    loaded again, merged on its keys.

    Args:
        settings: profile settings; the default profile when None.
        tables: source tables to load.

    Returns:
        rows loaded per table in this run, the dlt load id, the bronze snapshot ids after the load, and
        the version of the source data (its SHA-256, and the md5 `data.dvc` records for it).
    """
    import dlt

    from components.sources.ecommerce import ecommerce

    settings = settings or get_settings()
    settings.ensure_dirs()
    with scoped_environ(_dlt_environment()):
        pipeline = dlt.pipeline(
            pipeline_name=PIPELINE_NAME,
            pipelines_dir=str(settings.home / "dlt"),
            destination=dlt_iceberg_destination(settings),
            dataset_name=BRONZE,
            progress="log" if os.environ.get("LAKEHOUSE_PROGRESS") else None,
        )
        missing = sorted(set(tables) - {name.split(".", 1)[1] for name in snapshot_ids(BRONZE, settings)})
        if missing and not pipeline.first_run:
            log.warning(
                "bronze tables %s are not in the catalog at %s: resetting dlt's cursors for a full load",
                ", ".join(missing),
                settings.catalog_uri,
            )
            pipeline = pipeline.drop()
        info = pipeline.run(ecommerce(data_dir=str(settings.data_dir), tables=tuple(tables)))
        info.raise_on_failed_jobs()
        trace = pipeline.last_trace
        rows = dict.fromkeys(tables, 0)
        if trace and trace.last_normalize_info:
            for table, count in trace.last_normalize_info.row_counts.items():
                if table in rows:
                    rows[table] = count
    return {
        "data_sha256": source_data_hash(settings.data_dir),
        "data_dvc_md5": dvc_data_version(settings),
        "load_id": info.loads_ids[-1] if info.loads_ids else None,
        "rows_loaded": rows,
        "snapshots": snapshot_ids(BRONZE, settings),
    }
