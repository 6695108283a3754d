"""Iceberg writes shared by the steps: one-commit merges and the dlt destination that uses them."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from components.core.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table


class TableWriteError(RuntimeError):
    """Writing one table failed; `table` names it and `reason` says why (the first line of the cause)."""

    def __init__(self, table: str, reason: str):
        super().__init__(f"writing {table} failed: {reason}")
        self.table, self.reason = table, reason


def _one_line(exc: BaseException) -> str:
    """What went wrong in one line: the message's first line, and the mismatched fields of a schema table."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    if not lines or not lines[0]:
        return type(exc).__name__
    differing = []
    for line in lines:
        if "❌" in line:  # a row of pyiceberg's table of differing fields: | ❌ | table field | data field |
            cells = [cell.strip() for cell in line.split("│") if cell.strip() not in ("", "❌")]
            differing.append(" vs data ".join(cells))
    if differing:
        return f"{lines[0].rstrip(':')}: table " + "; table ".join(differing)
    return lines[0]


def iceberg_compatible(data: pa.Table, naive_timestamps: bool = False) -> pa.Table:
    """Cast to types Iceberg stores: microsecond timestamps, dictionaries decoded to their values.

    Args:
        data: the rows to write.
        naive_timestamps: drop the zone of zoned timestamps (their values are UTC already).
    """
    fields = []
    for field in data.schema:
        if pa.types.is_dictionary(field.type):
            field = field.with_type(field.type.value_type)
        if pa.types.is_timestamp(field.type):
            zone = None if naive_timestamps else field.type.tz
            field = field.with_type(pa.timestamp("us", tz=zone))
        fields.append(field)
    return data.cast(pa.schema(fields))


def ensure_table(catalog: Catalog, identifier: str, schema: pa.Schema) -> Table:
    """Load `namespace.name`, creating the namespace and table when missing, evolving new columns in."""
    from pyiceberg.exceptions import NoSuchTableError

    namespace = identifier.split(".")[0]
    catalog.create_namespace_if_not_exists(namespace)
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        return catalog.create_table(identifier, schema=schema)
    known = set(table.schema().column_names)
    if any(name not in known for name in schema.names):
        with table.update_schema() as update:
            update.union_by_name(schema)
    return table


def merge_rows(table: Table, data: pa.Table, keys: list[str]) -> None:
    """Upsert `data` into `table` on `keys` in one commit: delete the keys' old rows, append the new.

    `data` must hold one row per key. A failure leaves the previous snapshot as it was.
    """
    from pyiceberg.expressions import In

    data = iceberg_compatible(data)
    with table.transaction() as tx:
        if table.current_snapshot() is not None:
            # delete by the first key column; rows sharing it but not the whole key are written back
            touched = In(keys[0], data.column(keys[0]).unique().to_pylist())
            if len(keys) > 1:
                existing = table.scan(row_filter=touched).to_arrow()
                kept = existing.join(data.select(keys), keys=keys, join_type="left anti", use_threads=False)
                data = pa.concat_tables([kept.select(data.column_names).cast(data.schema), data])
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                tx.delete(touched)
        tx.append(data)


def replace_rows(table: Table, data: pa.Table, row_filter: Any, same_on: Sequence[str] | None = None) -> bool:
    """Make the rows matching `row_filter` exactly `data`, in one commit; no commit when they already are.

    Args:
        table: the Iceberg table to write.
        data: the rows that must match `row_filter` afterwards (all of them must match it).
        row_filter: a pyiceberg expression selecting the rows `data` replaces.
        same_on: the columns that decide whether the stored rows already are `data`, compared as sets of
            rows (default: every column of `data`); e.g. leave out a column that records when rows were
            written.

    Returns:
        True when a snapshot was committed.
    """
    data = iceberg_compatible(data)
    columns = list(same_on or data.column_names)
    if table.current_snapshot() is not None:
        existing = table.scan(row_filter=row_filter, selected_fields=tuple(columns)).to_arrow()
        wanted = data.select(columns)
        if existing.num_rows == wanted.num_rows:
            existing = existing.select(columns).cast(wanted.schema)
            if _sorted(existing).equals(_sorted(wanted)):
                return False
    with table.transaction() as tx:
        if table.current_snapshot() is not None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                tx.delete(row_filter)
        tx.append(data)
    return True


def _sorted(data: pa.Table) -> pa.Table:
    return data.sort_by([(name, "ascending") for name in data.column_names])


def dlt_iceberg_destination(settings: Settings) -> Any:
    """A dlt destination that writes each load job into `<dataset>.<table>` of the profile's catalog.

    Merge tables are upserted on their primary key in one Iceberg commit per job (delete + append);
    append and replace tables are appended to or overwritten. dlt's own tables are not written.
    """
    import dlt
    import pyarrow.parquet as pq
    from dlt.common.destination.exceptions import DestinationTerminalException

    from components.core.catalog import get_catalog

    def write(items: str, table: dict) -> None:
        name = table["name"]
        if name.startswith("_dlt"):
            return
        # dlt reads the naive UTC source timestamps as UTC; bronze keeps them as the source wrote them
        data = iceberg_compatible(pq.read_table(items), naive_timestamps=True)
        identifier = f"{dlt.current.pipeline().dataset_name}.{name}"
        try:
            _write_job(get_catalog(settings), identifier, data, table)
        except Exception as exc:
            failed = TableWriteError(identifier, _one_line(exc))
            failed.__cause__ = exc
            raise DestinationTerminalException(str(failed)) from failed  # not retried: the cause stays

    return dlt.destination(
        write,
        name="iceberg",
        batch_size=0,
        loader_file_format="parquet",
        loader_parallelism_strategy="sequential",
    )()


def _write_job(catalog: Catalog, identifier: str, data: pa.Table, table: dict) -> None:
    """Write one dlt load job into `identifier` as the table's write disposition says."""
    target = ensure_table(catalog, identifier, data.schema)
    disposition = table.get("write_disposition", "append")
    if disposition == "merge":
        keys = [c for c, col in table["columns"].items() if col.get("primary_key")]
        if not keys:
            raise ValueError(f"table {identifier!r} is merged but declares no primary key")
        merge_rows(target, data, keys)
    elif disposition == "replace":
        target.overwrite(data)
    else:
        target.append(data)


def model_rows(model_name: str, version: int | str, as_of: datetime) -> Any:
    """The pyiceberg filter of the rows one model version wrote for one as-of date."""
    from pyiceberg.expressions import And, EqualTo

    return And(
        EqualTo("model_name", model_name),
        And(EqualTo("model_version", int(version)), EqualTo("as_of_ts", as_of.isoformat())),
    )
