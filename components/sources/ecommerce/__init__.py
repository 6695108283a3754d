"""dlt source over the export files `data/<table>.csv`: merge on keys, rows diffed against bronze."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dlt
import pyarrow as pa
from pyarrow import csv

from components.sources.ecommerce.settings import (
    COLUMNS,
    PRIMARY_KEYS,
    ROW_HASH,
    TIMESTAMP_FORMAT,
    UPDATED_AT,
)

#: Reads what bronze holds of a table (its key columns and ROW_HASH), or None when it holds nothing yet.
StoredRows = Callable[[str, Sequence[str]], "pa.Table | None"]


class SourceFileError(ValueError):
    """A source file is missing or does not have the expected columns and types."""


def read_source_file(path: Path, table: str) -> pa.Table:
    """Read one export file with its declared column types, dropping exact duplicate rows.

    Raises:
        SourceFileError: the file is missing, its header differs from the contract, or a value does
            not parse as its column's type (the message names file, column and value).
    """
    columns = COLUMNS[table]
    if not path.is_file():
        raise SourceFileError(f"source file {path} is missing (run `lakehouse data generate`)")
    with path.open("r", encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
    if header != list(columns):
        raise SourceFileError(f"{path}: header {header} does not match the expected columns {list(columns)}")
    try:
        data = csv.read_csv(
            path,
            convert_options=csv.ConvertOptions(
                column_types=columns, timestamp_parsers=[TIMESTAMP_FORMAT], strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SourceFileError(f"{path}: {exc}") from exc
    keys = list(PRIMARY_KEYS[table])
    for key in keys:
        if data.column(key).null_count:
            raise SourceFileError(
                f"{path}: key column {key!r} has {data.column(key).null_count} empty values"
            )
    return _latest_per_key(data, keys)


def _latest_per_key(data: pa.Table, keys: list[str]) -> pa.Table:
    """Keep one row per key: the one with the greatest updated_at, the last in file order on ties."""
    indexed = data.append_column("_row", pa.array(range(data.num_rows), pa.int64()))
    ordered = indexed.sort_by([(UPDATED_AT, "ascending"), ("_row", "ascending")])
    last = ordered.group_by(keys, use_threads=False).aggregate([("_row", "last")])
    return data.take(last["_row_last"].sort())  # kept rows stay in file order


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
) -> Iterator:
    """One merge resource per source table, named after the table it fills.

    Args:
        data_dir: folder of the export files.
        tables: the tables to load.
        stored_rows: reads what the destination already holds of a table (see `StoredRows`); each export
            is compared with it row by row and only new or changed rows are yielded. None loads every row.
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
        )(Path(data_dir) / f"{table}.csv", table, stored_rows)


def _table_rows(path: Path, table: str, stored_rows: StoredRows | None) -> Iterator[pa.Table]:
    keys = PRIMARY_KEYS[table]
    data = with_row_hash(read_source_file(path, table))
    stored = stored_rows(table, [*keys, ROW_HASH]) if stored_rows else None
    new = rows_not_stored(data, stored, keys)
    if new.num_rows:
        yield new
