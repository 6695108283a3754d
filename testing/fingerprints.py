"""Order-independent fingerprints of a table's rows and columns, to compare two engines' results."""

from __future__ import annotations

import hashlib
import math

import pyarrow as pa
import pyarrow.compute as pc


def _text_digest(values: list) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for value in sorted(values, key=lambda v: (v is None, repr(v))):
        digest.update(repr(value).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def column_fingerprint(name: str, column: pa.ChunkedArray) -> tuple:
    """A checksum of one column that does not depend on row order.

    Integers: (count, sum). Amounts (`*_amount`): (count, sum in whole cents). Other doubles: (count,
    exact sum). Booleans: (true, false, null) counts. Timestamps and dates: (count, sum of their integer
    values). Strings (surrogate keys included): md5 of the sorted values.
    """
    kind = column.type
    count = len(column) - column.null_count
    if pa.types.is_integer(kind):
        return count, pc.sum(column).as_py() or 0
    if pa.types.is_floating(kind):
        values = [v for v in column.to_pylist() if v is not None]
        if name.endswith("_amount"):
            return count, sum(round(v * 100) for v in values)
        return count, math.fsum(values)
    if pa.types.is_boolean(kind):
        trues = pc.sum(column.cast(pa.int64())).as_py() or 0
        return trues, count - trues, column.null_count
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        storage = pa.int32() if pa.types.is_date32(kind) else pa.int64()
        return count, pc.sum(column.cast(storage).cast(pa.int64())).as_py() or 0
    return count, _text_digest(column.to_pylist())


def fingerprint(table: pa.Table) -> dict[str, object]:
    """Row count, a digest of the sorted rows, and a fingerprint of every column (by name)."""
    names = sorted(table.column_names)
    rows = [tuple(row[n] for n in names) for row in table.select(names).to_pylist()]
    result: dict[str, object] = {"rows": table.num_rows, "row_digest": _text_digest(rows)}
    for name in names:
        result[name] = column_fingerprint(name, table[name])
    return result


#: Columns that say which bronze load built a row: two lakehouses fed the same data at other times differ
#: there and nowhere else.
LOAD_COLUMNS = ("dlt_load_id",)


def content_fingerprint(table: pa.Table) -> dict[str, object]:
    """`fingerprint` without the LOAD_COLUMNS: what two lakehouses built, whenever they loaded."""
    return fingerprint(table.drop_columns([c for c in LOAD_COLUMNS if c in table.column_names]))


def differences(left: dict[str, object], right: dict[str, object]) -> dict[str, tuple]:
    """The entries of two fingerprints that differ: name -> (left, right)."""
    return {
        k: (left.get(k), right.get(k)) for k in sorted(set(left) | set(right)) if left.get(k) != right.get(k)
    }
