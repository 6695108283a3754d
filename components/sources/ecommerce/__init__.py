"""dlt source over the e-commerce export files `data/<table>.csv`: merge on keys, incremental cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import dlt
import pyarrow as pa
from pyarrow import csv

from components.sources.ecommerce.settings import COLUMNS, CURSOR, PRIMARY_KEYS, TIMESTAMP_FORMAT


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
    ordered = indexed.sort_by([(CURSOR, "ascending"), ("_row", "ascending")])
    last = ordered.group_by(keys, use_threads=False).aggregate([("_row", "last")])
    return data.take(last["_row_last"].sort())  # kept rows stay in file order


@dlt.source(name="ecommerce", max_table_nesting=0)
def ecommerce(data_dir: str = dlt.config.value, tables: Sequence[str] = tuple(COLUMNS)) -> Iterator:
    """One merge resource per source table, named after the table it fills."""
    unknown = sorted(set(tables) - set(COLUMNS))
    if unknown:
        raise SourceFileError(f"unknown source tables {unknown}: expected some of {list(COLUMNS)}")
    for table in tables:
        yield dlt.resource(
            _table_rows,
            name=table,
            primary_key=list(PRIMARY_KEYS[table]),
            write_disposition={"disposition": "merge", "strategy": "upsert"},
        )(Path(data_dir) / f"{table}.csv", table)


def _table_rows(
    path: Path,
    table: str,
    updated_at: dlt.sources.incremental = dlt.sources.incremental(CURSOR),  # noqa: B008
) -> Iterator[pa.Table]:
    yield read_source_file(path, table)
