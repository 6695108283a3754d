"""Ingestion step: dlt loads every source file into the Iceberg namespace `bronze` (merge on keys)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from components.core.catalog import read_columns, snapshot_ids
from components.core.lineage import dvc_data_version, source_data_hash
from components.core.results import Ingestion
from components.core.settings import BRONZE, SOURCE_TABLES, Settings, get_settings, scoped_environ
from components.core.tables import TableWriteError, dlt_iceberg_destination
from components.sources.ecommerce.files import ExportFindings, SourceFileError
from components.sources.store import fetch_exports

if TYPE_CHECKING:
    import pyarrow as pa

PIPELINE_NAME = "lakehouse_bronze"

E = TypeVar("E", bound=BaseException)

log = logging.getLogger(__name__)


class IngestError(RuntimeError):
    """A bronze table refused its write; the message says which tables this run committed and which not."""


def _dlt_environment() -> dict[str, str]:
    """dlt settings of the bronze load: tag each row with its load id and a row id, keep dlt's logs quiet."""
    return {
        "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID": "true",
        "NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID": "true",
        "RUNTIME__LOG_LEVEL": os.environ.get("RUNTIME__LOG_LEVEL", "ERROR"),
    }


def run_ingest(settings: Settings | None = None, tables: Sequence[str] = SOURCE_TABLES) -> Ingestion:
    """Load `data/<table>.csv` into `bronze.<table>`: every row bronze does not hold yet, upserted on its key.
    When `sources_uri` names an object store prefix, the exports are copied from there into the data folder
    first (`sources/store.py`).

    Each export is compared with bronze row by row (key and a hash of the row's values), so a row that
    arrives late, a backfilled old row, a correction with an unchanged updated_at and a new key older than
    everything loaded all land, exactly once; rows bronze already holds are not loaded again. The catalog is
    the only state: a dropped bronze table is loaded again in full.

    Args:
        settings: profile settings; the default profile when None.
        tables: source tables to load.

    Every file is read and checked before any table is written, so a bad file stops the run with bronze
    as it was. A write that fails later (the catalog or object store refusing it) may leave the tables
    written before it committed; the error names them, and the failed load is dropped, never retried: the
    next run compares the exports with bronze again and loads what is still missing.

    Returns:
        a `Ingestion` (fields documented in `core/results.py`): rows loaded per table, the dlt load id,
        the bronze snapshots after the load and the version of the source data.

    Raises:
        SourceFileError: a source file is missing (in the data folder or the object store) or breaks its
            contract (nothing was written).
        IngestError: a table's write failed (the message names what was and was not committed).
    """
    import dlt

    from components.sources.ecommerce import ecommerce

    settings = settings or get_settings()
    settings.ensure_dirs()
    fetch_exports(settings, tables)

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
        _drop_pending_loads(pipeline, "dropping the unfinished load of an earlier run")
        findings = ExportFindings()
        source = ecommerce(
            data_dir=str(settings.data_dir),
            tables=tuple(tables),
            stored_rows=stored_rows,
            empty_exports=settings.policy.empty_exports,
            findings=findings,
        )
        before = snapshot_ids(BRONZE, settings, tables)
        try:
            info = pipeline.run(source)
            info.raise_on_failed_jobs()
        except Exception as exc:
            _drop_pending_loads(pipeline, "dropping this run's failed load")
            committed = _committed(before, snapshot_ids(BRONZE, settings, tables))
            source_error = _cause(exc, SourceFileError)
            if source_error is not None:
                raise SourceFileError(f"{source_error} ({committed})") from None
            raise _load_error(exc, committed) from exc
        trace = pipeline.last_trace
        rows = dict.fromkeys(tables, 0)
        if trace and trace.last_normalize_info:
            for table, count in trace.last_normalize_info.row_counts.items():
                if table in rows:
                    rows[table] = count
    return Ingestion(
        data_sha256=source_data_hash(settings.data_dir),
        data_dvc_md5=dvc_data_version(settings),
        load_id=info.loads_ids[-1] if info.loads_ids else None,
        rows_loaded=rows,
        snapshots=snapshot_ids(BRONZE, settings, tables),
        empty_exports=findings.empty,
        tied_keys=findings.tied_keys,
    )


def _drop_pending_loads(pipeline: Any, why: str) -> None:
    """Forget load packages a failed or killed run left: the catalog alone decides what the next run loads.

    dlt would otherwise load a pending package before anything new, and a package that cannot be loaded
    would fail every later run the same way.
    """
    if pipeline.has_pending_data:
        log.warning("%s; its rows are compared with bronze again by the next run", why)
        pipeline.abort_packages()


def _committed(before: dict, after: dict) -> str:
    """Which bronze tables this run committed a snapshot to, as a sentence."""
    tables = sorted(name for name, snapshot in after.items() if snapshot != before.get(name))
    return f"committed: {', '.join(tables)}; nothing else was written" if tables else "nothing was written"


def _load_error(exc: BaseException, committed: str) -> IngestError:
    """Say which table failed and why, what this run committed, and that nothing is left pending."""
    failed = _cause(exc, TableWriteError)
    what = f"writing {failed.table} failed: {failed.reason}" if failed else f"the bronze load failed: {exc}"
    return IngestError(
        f"{what} ({committed}). The failed load was dropped: fix the cause and run again, the next run "
        f"loads what bronze is still missing"
    )


def _cause(exc: BaseException | None, kind: type[E]) -> E | None:
    """The exception of type `kind` that dlt wrapped (in its step errors or the exception chain), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = getattr(exc, "exception", None) or exc.__cause__ or exc.__context__
    return None
