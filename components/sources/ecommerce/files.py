"""Reading the export files: the column contract, extra columns kept, and errors that name file and line."""

from __future__ import annotations

import csv as pycsv
import dataclasses
import io
import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from pyarrow import csv

from components.sources.ecommerce.settings import (
    COLUMNS,
    PRIMARY_KEYS,
    RESERVED_PREFIX,
    ROW_HASH,
    TIMESTAMP_FORMAT,
    UPDATED_AT,
)

log = logging.getLogger(__name__)

#: What TIMESTAMP_FORMAT writes: every field zero-padded, a space between date and time.
TIMESTAMP_LAYOUT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
TIMESTAMP_EXAMPLE = datetime(2024, 1, 31, 9, 30).strftime(TIMESTAMP_FORMAT)
#: Longest value a source field may hold, in bytes (a longer one is refused with its line and column), and
#: the CSV reader's block, which a whole row must fit in.
MAX_FIELD_BYTES = 1 << 20
READ_BLOCK_BYTES = 32 << 20


class SourceFileError(ValueError):
    """A source file is missing, unreadable or breaks the column contract; the message names file, line."""


@dataclasses.dataclass
class ExportFindings:
    """What reading the exports noticed and let through (each also logged), filled by `read_source_file`."""

    #: the tables whose export held a header and no rows
    empty: list[str] = dataclasses.field(default_factory=list)
    #: table -> how many keys have rows that differ but share their latest `updated_at` (the last kept)
    tied_keys: dict[str, int] = dataclasses.field(default_factory=dict)


def read_source_file(
    path: Path, table: str, empty: str = "warn", findings: ExportFindings | None = None
) -> pa.Table:
    """Read one export file: the contract's columns with their types, any new column as text.

    Columns are matched by name, in any order. A column the contract does not know is read as a string
    (bronze gains it by schema evolution); one per key is kept, the newest by updated_at. A file with a
    header and no rows is warned about, or refused when `empty` is `refuse`. What is let through with a
    warning (no rows, keys with differing rows of one latest `updated_at`) is added to `findings` as well.

    Raises:
        SourceFileError: the file is missing, empty, not UTF-8, truncated mid-row, lacks a contract
            column, has a column whose stored name is reserved or taken by another column, or holds a
            value that does not parse as its column's type, or holds no row and `empty` is `refuse`. The
            message names the file and, where it is about a row, the line and the column.
    """
    if not path.is_file():
        raise SourceFileError(f"source file {path} is missing (run `lakehouse data generate`)")
    header = _header(path)
    contract = COLUMNS[table]
    missing = [name for name in contract if name not in header]
    if missing:
        raise SourceFileError(
            f"{path}:1: column(s) {', '.join(missing)} missing from the header (a source column that "
            f"disappears is not loaded; expected {', '.join(contract)})"
        )
    types = {name: contract.get(name, pa.string()) for name in header}
    as_read = {name: pa.string() if pa.types.is_timestamp(kind) else kind for name, kind in types.items()}
    try:
        data = csv.read_csv(
            path,
            read_options=csv.ReadOptions(column_names=header, skip_rows=1, block_size=READ_BLOCK_BYTES),
            convert_options=csv.ConvertOptions(column_types=as_read, strings_can_be_null=True),
        )
        data = _parse_timestamps(data, types)
    except pa.ArrowInvalid as exc:
        raise SourceFileError(_locate(path, header, types) or f"{path}: {exc}") from None
    _no_long_values(path, header, types, data)
    if data.num_rows == 0:
        found = f"{path}: a header and no rows, so nothing of {table!r} is in this export"
        if empty == "refuse":
            raise SourceFileError(f"{found}: refused (setting empty_exports = refuse)")
        log.warning("%s (setting empty_exports = warn: loading the other files)", found)
        if findings is not None:
            findings.empty.append(table)
    _no_future_updates(path, data)
    keys = list(PRIMARY_KEYS[table])
    for key in keys:
        if data.column(key).null_count:
            line = 2 + data.column(key).is_null().to_pylist().index(True)
            raise SourceFileError(f"{path}:{line}: key column {key!r} is empty")
    tied = _report_ties(path, data, keys)
    if tied and findings is not None:
        findings.tied_keys[table] = tied
    return _latest_per_key(data, keys)


def _no_long_values(path: Path, header: list[str], types: dict[str, pa.DataType], data: pa.Table) -> None:
    """Refuse a text value over `MAX_FIELD_BYTES` (Arrow reads it whole when its row fits in the block)."""
    import pyarrow.compute as pc

    for name in data.column_names:
        column = data.column(name)
        if not pa.types.is_string(column.type) or not len(column):
            continue
        if (pc.max(pc.binary_length(column)).as_py() or 0) > MAX_FIELD_BYTES:
            raise SourceFileError(
                _locate(path, header, types) or f"{path}: column {name!r} holds a value too long"
            )


def _report_ties(path: Path, data: pa.Table, keys: list[str]) -> int:
    """Log the keys whose latest `updated_at` is shared by rows that differ, and return how many: which one is
    right cannot be told from the file, and the last in file order is kept (identical repeats are not
    reported)."""
    if UPDATED_AT not in data.column_names or data.num_rows < 2:
        return 0
    frame = data.to_pandas().assign(_line=range(2, data.num_rows + 2))
    latest = frame[frame[UPDATED_AT] == frame.groupby(keys)[UPDATED_AT].transform("max")]
    values = [name for name in frame.columns if name != "_line"]
    distinct = latest.drop_duplicates(subset=values)
    tied = distinct[distinct.duplicated(subset=keys, keep=False)]
    if tied.empty:
        return 0
    count = len(tied.drop_duplicates(subset=keys))
    lines = ", ".join(str(line) for line in tied["_line"].head(6))
    log.warning(
        "%s: %d key(s) have rows that differ but share their latest %s; the last in file order is kept "
        "(lines %s%s)",
        path,
        count,
        UPDATED_AT,
        lines,
        ", ..." if len(tied) > 6 else "",
    )
    return count


#: How far past the present an `updated_at` may lie (clocks of the source systems that run ahead); a later one
#: would win every merge on its key until then, so the file is refused.
FUTURE_TOLERANCE = timedelta(days=1)


def _no_future_updates(path: Path, data: pa.Table) -> None:
    """Raise SourceFileError naming the first line whose `updated_at` lies beyond now + FUTURE_TOLERANCE."""
    import pyarrow.compute as pc

    if UPDATED_AT not in data.column_names:
        return
    limit = datetime.now(UTC).replace(tzinfo=None) + FUTURE_TOLERANCE
    late = pc.greater(data.column(UPDATED_AT), pa.scalar(limit, data.schema.field(UPDATED_AT).type))
    if pc.any(late).as_py():
        index = late.to_pylist().index(True)
        value = data.column(UPDATED_AT)[index].as_py().strftime(TIMESTAMP_FORMAT)
        raise SourceFileError(
            f"{path}:{2 + index}: column {UPDATED_AT!r}: {value!r} lies in the future (more than "
            f"{FUTURE_TOLERANCE.days} day past now): it would win every later change of its key"
        )


def _parse_timestamps(data: pa.Table, types: dict[str, pa.DataType]) -> pa.Table:
    """Turn the timestamp columns, read as text, into timestamps; only real dates and times of the layout.

    Arrow's strptime parser rolls an impossible date over (2024-02-30 becomes 2024-03-01, 23:59:60 the next
    minute); its ISO 8601 cast refuses those but also takes other layouts (a date alone, a `T`, fractions).
    Text of exactly the contract's length with a space between date and time that the cast accepts is both.

    Raises:
        pyarrow.ArrowInvalid: some value is not a real timestamp in the layout (the caller finds its line).
    """
    import pyarrow.compute as pc

    for name, kind in types.items():
        if not pa.types.is_timestamp(kind):
            continue
        text = data.column(name)
        laid_out = pc.and_(
            pc.equal(pc.utf8_length(text), len(TIMESTAMP_EXAMPLE)),
            pc.equal(pc.utf8_slice_codeunits(text, 10, 11), " "),
        )
        if not pc.all(laid_out, min_count=0).as_py():  # NULLs (empty values) are skipped, no row is fine
            raise pa.ArrowInvalid(f"column {name!r}: a value is not laid out as {TIMESTAMP_FORMAT}")
        data = data.set_column(data.schema.get_field_index(name), name, pc.cast(text, kind))
    return data


def _header(path: Path) -> list[str]:
    with path.open("rb") as fh:
        first = fh.readline()
    if not first.strip():
        raise SourceFileError(f"{path}:1: the file is empty (no header line)")
    try:
        header = next(pycsv.reader([first.decode("utf-8").lstrip("\ufeff")]))
    except UnicodeDecodeError:
        raise SourceFileError(f"{path}:1: the header is not valid UTF-8") from None
    header = [name.strip() for name in header]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated or "" in header:
        raise SourceFileError(f"{path}:1: the header names {duplicated or 'an empty'} column more than once")
    _check_stored_names(path, header)
    return header


def stored_name(column: str) -> str:
    """The name a source column gets in bronze: dlt's default naming (snake_case, ASCII)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier(column)


def _check_stored_names(path: Path, header: list[str]) -> None:
    """Refuse a header that would break the load: a reserved name, or two columns stored under one name.

    dlt renames columns to snake_case and adds its own `_dlt_*` columns; ingestion adds ROW_HASH. A source
    column named like one of those (in any spelling that renames to it) would collide with the loader's
    column only when the table is written, after other tables were; here it is refused before any is.
    """
    owner: dict[str, str] = {}
    for column in header:
        name = stored_name(column)
        if name.startswith(RESERVED_PREFIX):
            raise SourceFileError(
                f"{path}:1: column {column!r} is reserved for the loader's own columns ({RESERVED_PREFIX}*): "
                f"rename it in the export"
            )
        if name == ROW_HASH:
            raise SourceFileError(
                f"{path}:1: column {column!r} is reserved for the hash ingestion keeps of each row: "
                f"rename it in the export"
            )
        if name in owner:
            raise SourceFileError(
                f"{path}:1: columns {owner[name]!r} and {column!r} are both stored as {name!r}: "
                f"rename one of them in the export"
            )
        owner[name] = column


def _locate(path: Path, header: list[str], types: dict[str, pa.DataType]) -> str | None:
    """Find the first line Arrow refused (it names no line) and say what is wrong with it."""
    limit = pycsv.field_size_limit()
    pycsv.field_size_limit(sys.maxsize)  # a long value is reported with its line, not raised as csv.Error
    try:
        return _first_problem(path, header, types)
    finally:
        pycsv.field_size_limit(limit)


def _first_problem(path: Path, header: list[str], types: dict[str, pa.DataType]) -> str | None:
    with path.open("rb") as fh:
        fh.readline()
        for number, raw in enumerate(fh, start=2):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return f"{path}:{number}: not valid UTF-8 (byte {exc.start + 1} of the line)"
            if not text.strip():
                continue
            fields = next(pycsv.reader(io.StringIO(text)))
            if len(fields) != len(header):
                return f"{path}:{number}: {len(fields)} fields, the header {len(header)} (truncated?)"
            for name, value in zip(header, fields, strict=True):
                size = len(value.encode())
                if size > MAX_FIELD_BYTES:
                    where = f"{path}:{number}: column {name!r}"
                    return f"{where}: a value of {size:,} bytes, over the limit of {MAX_FIELD_BYTES:,}"
                problem = _value_problem(value, types[name])
                if problem:
                    return f"{path}:{number}: column {name!r}: {value!r} {problem}"
    return None


def _value_problem(value: str, kind: pa.DataType) -> str | None:
    if value == "":
        return None
    if pa.types.is_integer(kind):
        try:
            number = int(value)
        except ValueError:
            return "is not an integer"
        bits = kind.bit_width
        low, high = (
            (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            if pa.types.is_signed_integer(kind)
            else (0, 2**bits - 1)
        )
        if not low <= number <= high:
            return f"is out of the range of a {bits}-bit integer ({low} to {high})"
    elif pa.types.is_timestamp(kind):
        if not TIMESTAMP_LAYOUT.fullmatch(value):
            return f"is not a timestamp like {TIMESTAMP_EXAMPLE}"
        try:
            datetime.strptime(value, TIMESTAMP_FORMAT)
        except ValueError as exc:  # laid out right, but no such day or time, e.g. 2024-02-30 or 23:59:60
            return f"is not a real date and time ({exc})"
    return None


def _latest_per_key(data: pa.Table, keys: list[str]) -> pa.Table:
    """Keep one row per key: the one with the greatest updated_at, the last in file order on ties."""
    indexed = data.append_column("_row", pa.array(range(data.num_rows), pa.int64()))
    ordered = indexed.sort_by([(UPDATED_AT, "ascending"), ("_row", "ascending")])
    last = ordered.group_by(keys, use_threads=False).aggregate([("_row", "last")])
    return data.take(last["_row_last"].sort())  # kept rows stay in file order
