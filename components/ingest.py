"""Ingestion step: dlt loads every source file into the Iceberg namespace `bronze` (merge on keys)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from components.iceberg_writer import dlt_iceberg_destination
from components.lakehouse import read_columns, snapshot_ids
from components.lineage import dvc_data_version, source_data_hash
from components.settings import BRONZE, SOURCE_TABLES, Settings, get_settings, scoped_environ

if TYPE_CHECKING:
    import pyarrow as pa

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
    """Load `data/<table>.csv` into `bronze.<table>`: every row bronze does not hold yet, upserted on its key.

    Each export is compared with bronze row by row (key and a hash of the row's values), so a row that
    arrives late, a backfilled old row, a correction with an unchanged updated_at and a new key older than
    everything loaded all land, exactly once; rows bronze already holds are not loaded again. The catalog is
    the only state: a dropped bronze table is loaded again in full.

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

    def stored_rows(table: str, columns: Sequence[str]) -> pa.Table | None:
        return read_columns(f"{BRONZE}.{table}", columns, settings)

    with scoped_environ(_dlt_environment()):
        pipeline = dlt.pipeline(
            pipeline_name=PIPELINE_NAME,
            pipelines_dir=str(settings.home / "dlt"),
            destination=dlt_iceberg_destination(settings),
            dataset_name=BRONZE,
            progress="log" if os.environ.get("LAKEHOUSE_PROGRESS") else None,
        )
        source = ecommerce(data_dir=str(settings.data_dir), tables=tuple(tables), stored_rows=stored_rows)
        try:
            info = pipeline.run(source)
        except Exception as exc:
            raise _source_error(exc) or exc from None
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


def _source_error(exc: BaseException) -> Exception | None:
    """The SourceFileError dlt wrapped while extracting, if that is what stopped the run."""
    from components.sources.ecommerce import SourceFileError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SourceFileError):
            return exc
        seen.add(id(exc))
        exc = getattr(exc, "exception", None) or exc.__cause__ or exc.__context__
    return None
