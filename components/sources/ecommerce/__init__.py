"""dlt source over the export files `data/<table>.csv`: merge on keys, rows diffed against bronze."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dlt
import pyarrow as pa

from components.sources.ecommerce.files import ExportFindings, SourceFileError, read_source_file
from components.sources.ecommerce.settings import COLUMNS, PRIMARY_KEYS, ROW_HASH

__all__ = [
    "ExportFindings",
    "SourceFileError",
    "ecommerce",
    "read_source_file",
    "rows_not_stored",
    "with_row_hash",
]

#: Reads what bronze holds of a table (its key columns and ROW_HASH), or None when it holds nothing yet.
StoredRows = Callable[[str, Sequence[str]], "pa.Table | None"]


def with_row_hash(data: pa.Table) -> pa.Table:
    """Append ROW_HASH: a 64-bit hash of each row's values (NULLs included), the same on every run."""
    from pandas.util import hash_pandas_object

    hashes = hash_pandas_object(data.to_pandas(), index=False).to_numpy().view("int64")
    return data.append_column(ROW_HASH, pa.array(hashes, pa.int64()))


def rows_not_stored(data: pa.Table, stored: pa.Table | None, keys: Sequence[str]) -> pa.Table:
    """The rows of `data` (with ROW_HASH) that bronze does not hold with the same key and content.

    A row is new when its key is not stored (whatever its updated_at: late and backfilled rows included) or
    when the stored row under its key has other values (a correction, even with the same updated_at).
    Stored rows without a hash (written before hashes were kept) never match: they are loaded once more.
    """
    if stored is None or stored.num_rows == 0:
        return data
    on = [*keys, ROW_HASH]
    indexed = data.append_column("_row", pa.array(range(data.num_rows), pa.int64()))
    new = indexed.join(stored.select(on), keys=on, join_type="left anti", use_threads=False)
    return data.take(new["_row"].sort())  # new rows stay in file order


@dlt.source(name="ecommerce", max_table_nesting=0)
def ecommerce(
    data_dir: str = dlt.config.value,
    tables: Sequence[str] = tuple(COLUMNS),
    stored_rows: StoredRows | None = None,
    empty_exports: str = "warn",
    findings: ExportFindings | None = None,
) -> Iterator:
    """One merge resource per source table, named after the table it fills.

    Args:
        data_dir: folder of the export files.
        tables: the tables to load.
        stored_rows: reads what the destination already holds of a table (see `StoredRows`); each export
            is compared with it row by row and only new or changed rows are yielded. None loads every row.
        empty_exports: `warn` or `refuse` an export with a header and no rows (see `read_source_file`).
        findings: collects what the exports' reading let through with a warning (see `ExportFindings`).
    """
    unknown = sorted(set(tables) - set(COLUMNS))
    if unknown:
        raise SourceFileError(f"unknown source tables {unknown}: expected some of {list(COLUMNS)}")
    for table in tables:
        yield dlt.resource(
            _table_rows,
            name=table,
            primary_key=list(PRIMARY_KEYS[table]),
            write_disposition={"disposition": "merge", "strategy": "upsert"},
        )(Path(data_dir) / f"{table}.csv", table, stored_rows, empty_exports, findings)


def _table_rows(
    path: Path, table: str, stored_rows: StoredRows | None, empty: str, findings: ExportFindings | None
) -> Iterator[pa.Table]:
    keys = PRIMARY_KEYS[table]
    data = with_row_hash(read_source_file(path, table, empty, findings))
    stored = stored_rows(table, [*keys, ROW_HASH]) if stored_rows else None
    new = rows_not_stored(data, stored, keys)
    if new.num_rows:
        yield new
