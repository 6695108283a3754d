"""Ingestion into bronze: merge on keys, every new or changed row exactly once, idempotent, clear errors."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from components.core.catalog import read_table, snapshot_ids
from components.ingestion.ingest import run_ingest
from components.sources.ecommerce import SourceFileError
from components.sources.ecommerce.settings import COLUMNS, PRIMARY_KEYS
from testing.tiny_source import ROWS, write_source


def keys_are_unique(table: str, settings) -> bool:
    data = read_table(f"bronze.{table}", settings)
    return data.group_by(list(PRIMARY_KEYS[table])).aggregate([]).num_rows == data.num_rows


def test_first_load_writes_every_table_once(settings):
    result = run_ingest(settings)
    assert result.rows_loaded == {
        "customers": 3,
        "products": 2,
        "stores": 1,
        "orders": 2,
        "order_items": 2,
    }
    assert set(result.snapshots) == {f"bronze.{t}" for t in COLUMNS}
    customers = read_table("bronze.customers", settings)
    assert customers.num_rows == 3  # the exact duplicate of customer 2 is loaded once
    assert {"_dlt_load_id", "_dlt_id"} <= set(customers.column_names)
    assert all(keys_are_unique(t, settings) for t in COLUMNS)


def test_other_tables_in_bronze_are_not_reported_or_touched(settings):
    """A table an engine keeps in bronze (the scratch table of a stopped dbt build) is not a source table:
    the run neither reports its snapshot (a later step would look for it) nor changes it."""
    import pyarrow as pa

    from components.core.catalog import get_catalog

    catalog = get_catalog(settings)
    catalog.create_namespace_if_not_exists("bronze")
    scratch = pa.table({"leftover": pa.array([1], pa.int64())})
    catalog.create_table("bronze.stg_customers_test__dbt_tmp", schema=scratch.schema).append(scratch)
    kept = snapshot_ids("bronze", settings)["bronze.stg_customers_test__dbt_tmp"]
    result = run_ingest(settings)
    assert set(result.snapshots) == {f"bronze.{t}" for t in COLUMNS}
    assert snapshot_ids("bronze", settings)["bronze.stg_customers_test__dbt_tmp"] == kept


def test_rerun_without_new_data_changes_nothing(settings):
    first = run_ingest(settings)
    second = run_ingest(settings)
    assert second.rows_loaded == dict.fromkeys(COLUMNS, 0)
    assert second.snapshots == first.snapshots
    assert all(keys_are_unique(t, settings) for t in COLUMNS)


def test_new_and_changed_rows_are_applied_exactly_once(settings):
    run_ingest(settings)
    rows = {table: list(lines) for table, lines in ROWS.items()}
    # later extract: order 1000 ships (a change), order 1002 is new, customer 2 gets a new version
    rows["orders"][0] = "1000,1,100,2024-02-01 12:00:00,shipped,2024-03-03 08:00:00"
    rows["orders"].append("1002,1,100,2024-03-02 12:00:00,placed,2024-03-02 12:00:00")
    rows["customers"].append(
        "2,bob@new.example.com,Bob,Roe,Lyon,FR,gold,2024-01-02 09:00:00,2024-04-01 09:00:00"
    )
    write_source(settings.data_dir, rows)

    result = run_ingest(settings)
    assert result.rows_loaded["orders"] == 2
    assert result.rows_loaded["customers"] == 1
    assert result.rows_loaded["products"] == 0

    orders = read_table("bronze.orders", settings).sort_by("order_id").to_pydict()
    assert orders["order_id"] == [1000, 1001, 1002]
    assert orders["status"] == ["shipped", "delivered", "placed"]
    customers = read_table("bronze.customers", settings)
    assert pc.sum(pc.equal(customers["customer_id"], 2)).as_py() == 2  # history kept: two versions
    assert customers.num_rows == 4

    again = run_ingest(settings)
    assert again.rows_loaded == dict.fromkeys(COLUMNS, 0)
    assert again.snapshots == result.snapshots
    assert all(keys_are_unique(t, settings) for t in COLUMNS)


def test_rows_at_or_before_the_last_load_land_exactly_once(settings):
    """Late, backfilled, corrected and old-but-new rows: the next run loads each, once, whatever its time."""
    run_ingest(settings)
    rows = {table: list(lines) for table, lines in ROWS.items()}
    # a late arrival: an order placed (and updated) before the newest order already loaded
    rows["orders"].append("1002,2,100,2024-01-20 12:00:00,placed,2024-01-20 12:00:00")
    # a backfilled old version of customer 1, recorded between its two loaded versions
    rows["customers"].append(
        "1,ann@example.com,Ann,Lee,Munich,DE,bronze,2024-01-01 09:00:00,2024-02-01 10:00:00"
    )
    # a correction that keeps its updated_at: order 1001 was returned, not delivered
    rows["orders"][1] = "1001,2,100,2024-02-02 12:00:00,returned,2024-02-05 12:00:00"
    # a new key older than every loaded row, and a line of an old order that uses it
    rows["products"].append("9,Vase,home,Lumo,1900,2023-06-01 00:00:00,2023-06-01 00:00:00")
    rows["order_items"].append("5002,1000,9,1,1900,0,2023-06-01 00:00:00")
    write_source(settings.data_dir, rows)

    result = run_ingest(settings)
    assert result.rows_loaded == {
        "customers": 1,
        "products": 1,
        "stores": 0,
        "orders": 2,
        "order_items": 1,
    }
    orders = read_table("bronze.orders", settings).sort_by("order_id").to_pydict()
    assert orders["order_id"] == [1000, 1001, 1002]
    assert orders["status"] == ["placed", "returned", "placed"]
    customers = read_table("bronze.customers", settings).sort_by("updated_at")
    ann = customers.filter(pc.equal(customers["customer_id"], 1)).to_pydict()
    assert ann["city"] == ["Berlin", "Munich", "Hamburg"]
    assert 9 in read_table("bronze.products", settings)["product_id"].to_pylist()
    assert 5002 in read_table("bronze.order_items", settings)["order_item_id"].to_pylist()
    assert all(keys_are_unique(t, settings) for t in COLUMNS)

    again = run_ingest(settings)
    assert again.rows_loaded == dict.fromkeys(COLUMNS, 0)
    assert again.snapshots == result.snapshots


def test_bronze_without_row_hashes_is_loaded_once_more_then_settles(settings):
    """Rows stored before hashes were kept are written again once (merged on their keys), then not again."""
    from components.core.catalog import get_catalog
    from components.sources.ecommerce.settings import ROW_HASH

    run_ingest(settings)
    with get_catalog(settings).load_table("bronze.stores").update_schema() as update:
        update.delete_column(ROW_HASH)
    again = run_ingest(settings)
    assert again.rows_loaded == {**dict.fromkeys(COLUMNS, 0), "stores": len(ROWS["stores"])}
    assert read_table("bronze.stores", settings).num_rows == len(ROWS["stores"])
    assert run_ingest(settings).rows_loaded == dict.fromkeys(COLUMNS, 0)


def test_malformed_value_is_named_with_its_line_and_bronze_is_kept(settings):
    first = run_ingest(settings)
    rows = {table: list(lines) for table, lines in ROWS.items()}
    rows["orders"].append("1003,1,100,not-a-timestamp,placed,2024-05-01 00:00:00")
    write_source(settings.data_dir, rows)
    with pytest.raises(SourceFileError, match=r"orders\.csv:4: column 'ordered_at': 'not-a-timestamp'"):
        run_ingest(settings)
    assert snapshot_ids("bronze", settings) == first.snapshots
    assert read_table("bronze.orders", settings).num_rows == 2


def test_new_source_column_reaches_bronze_and_dbt_still_builds(settings):
    from components.transformation.transform import run_transform

    run_ingest(settings)
    path = settings.data_dir / "customers.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    segments = ["retail"] + ["b2b"] * (len(lines) - 2)
    path.write_text(
        "\n".join(
            [lines[0] + ",segment"] + [f"{ln},{seg}" for ln, seg in zip(lines[1:], segments, strict=True)]
        )
        + "\n",
        encoding="utf-8",
    )
    result = run_ingest(settings)
    assert result.rows_loaded["customers"] == 3  # every row has a new value: each is written again
    customers = read_table("bronze.customers", settings)
    assert customers.num_rows == 3 and sorted(customers["segment"].to_pylist()) == ["b2b", "b2b", "retail"]
    assert run_transform(settings).models > 0


def test_a_disappearing_or_retyped_column_stops_the_run_before_anything_is_stored(settings):
    first = run_ingest(settings)
    rows = {table: list(lines) for table, lines in ROWS.items()}
    rows["customers"].append(
        "3,cy@example.com,Cy,Doe,Rome,IT,gold,2024-01-03 09:00:00,2024-06-01 09:00:00"
    )  # a valid new row in a file loaded before the broken one: it must not land either
    write_source(settings.data_dir, rows)
    orders = settings.data_dir / "orders.csv"
    orders.write_text("order_id,customer_id,store_id,ordered_at,updated_at\n1000,1,100,2024-02-01 12:00:00,"
                      "2024-02-01 12:00:00\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(SourceFileError, match=r"orders\.csv:1: column\(s\) status missing"):
        run_ingest(settings)
    assert snapshot_ids("bronze", settings) == first.snapshots

    write_source(settings.data_dir, rows)
    items = settings.data_dir / "order_items.csv"
    items.write_text(items.read_text(encoding="utf-8").replace(",2,2500,", ",2.5,2500,"), encoding="utf-8")
    with pytest.raises(
        SourceFileError, match=r"order_items\.csv:2: column 'quantity': '2\.5' is not an integer"
    ):
        run_ingest(settings)
    assert snapshot_ids("bronze", settings) == first.snapshots

    write_source(settings.data_dir, rows)  # repaired: exactly the new row lands, nothing left over loads
    again = run_ingest(settings)
    assert again.rows_loaded == {**dict.fromkeys(COLUMNS, 0), "customers": 1}
    assert read_table("bronze.customers", settings).num_rows == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"stores\.csv:1: the file is empty"),
        (b"store_id,store_name,city,country,channel,opened_at,updated_at\n"
         b"100,Web,Berlin,DE,online,2023-01-01 00:00:00,2023-01-01 00:00:00\n101,Kiosk,Par",
         r"stores\.csv:3: 3 fields, the header 7 \(truncated\?\)"),
        (b"store_id,store_name,city,country,channel,opened_at,updated_at\n"
         b"100,Web,Berlin,DE,online,2023-01-01 00:00:00,2023-01-01 00:00:00\n"
         b"101,K\xf6ln Mitte,K\xf6ln,DE,retail,2023-01-01 00:00:00,2023-01-01 00:00:00\n",
         r"stores\.csv:3: not valid UTF-8"),
    ],
    ids=["empty", "truncated", "latin-1"],
)  # fmt: skip
def test_unreadable_source_files_are_named_with_their_line(settings, content, message):
    first = run_ingest(settings)
    (settings.data_dir / "stores.csv").write_bytes(content)
    with pytest.raises(SourceFileError, match=message):
        run_ingest(settings)
    assert snapshot_ids("bronze", settings) == first.snapshots


def test_missing_file_and_wrong_header_are_named(settings):
    (settings.data_dir / "stores.csv").unlink()
    with pytest.raises(SourceFileError, match="stores.csv is missing"):
        run_ingest(settings)
    (settings.data_dir / "stores.csv").write_text("store_id,name\n1,x\n", encoding="utf-8")
    with pytest.raises(
        SourceFileError, match="store_name, city, country, channel, opened_at, updated_at missing"
    ):
        run_ingest(settings)
    with pytest.raises(SourceFileError, match="unknown source tables"):
        run_ingest(settings, tables=("customers", "invoices"))


def test_a_header_only_export_is_named_and_loads_nothing_or_is_refused(settings, caplog):
    run_ingest(settings)
    before = read_table("bronze.stores", settings).num_rows
    header = (settings.data_dir / "stores.csv").read_text(encoding="utf-8").splitlines()[0]
    (settings.data_dir / "stores.csv").write_text(header + "\n\n", encoding="utf-8")

    result = run_ingest(settings)

    assert result.empty_exports == ["stores"] and result.rows_loaded["stores"] == 0
    assert any("stores.csv: a header and no rows" in record.getMessage() for record in caplog.records)
    assert read_table("bronze.stores", settings).num_rows == before, "what bronze holds stays"
    snapshots = snapshot_ids("bronze", settings)
    with pytest.raises(SourceFileError, match=r"stores.csv: a header and no rows.*refused \(setting empty_"):
        run_ingest(settings.with_policy(empty_exports="refuse"))
    assert snapshot_ids("bronze", settings) == snapshots, "a refused run writes nothing"


@pytest.mark.parametrize("size", [2 << 20, 40 << 20])  # within the reader's block, and over it
def test_a_value_over_the_field_limit_is_named_with_its_line_and_column(settings, size):
    path = settings.data_dir / "customers.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index("email")] = "x" * size
    path.write_text("\n".join([lines[0], lines[1], ",".join(row), *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(
        SourceFileError, match=rf"customers.csv:3: column 'email': a value of {size:,} bytes, over the limit"
    ):
        run_ingest(settings)
    assert snapshot_ids("bronze", settings) == {}, "nothing was written"


def test_a_table_dropped_from_the_catalog_is_loaded_again_in_full(settings):
    from components.core.catalog import get_catalog

    run_ingest(settings)
    get_catalog(settings).drop_table("bronze.orders")  # e.g. a new catalog under an old state folder
    again = run_ingest(settings)
    assert again.rows_loaded["orders"] == len(ROWS["orders"])
    assert read_table("bronze.orders", settings).num_rows == len(ROWS["orders"])
    assert all(keys_are_unique(t, settings) for t in COLUMNS)
    assert read_table("bronze.customers", settings).num_rows == 3


def _with_extra_column(path, name: str, value: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([f"{lines[0]},{name}"] + [f"{line},{value}" for line in lines[1:]]) + "\n")


def _customer_changed() -> dict[str, list[str]]:
    rows = {table: list(lines) for table, lines in ROWS.items()}
    rows["customers"].append(
        "2,bob@new.example.com,Bob,Roe,Lyon,FR,gold,2024-01-02 09:00:00,2024-04-01 09:00:00"
    )
    return rows


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("_dlt_load_id", r"stores\.csv:1: column '_dlt_load_id' is reserved for the loader's own columns"),
        ("_DLT_Id", r"stores\.csv:1: column '_DLT_Id' is reserved for the loader's own columns"),
        ("_row_hash", r"stores\.csv:1: column '_row_hash' is reserved"),
        ("Store ID", r"stores\.csv:1: columns 'store_id' and 'Store ID' are both stored as 'store_id'"),
    ],
    ids=["dlt-load-id", "dlt-id-mixed-case", "row-hash", "same-stored-name"],
)
def test_a_reserved_or_colliding_column_name_stops_the_run_before_any_write(settings, column, message):
    first = run_ingest(settings)
    rows = _customer_changed()  # a change in a file loaded before the broken one: it must not land either
    write_source(settings.data_dir, rows)
    _with_extra_column(settings.data_dir / "stores.csv", column, "x")
    with pytest.raises(SourceFileError, match=message) as refused:
        run_ingest(settings)
    assert str(refused.value).endswith("(nothing was written)")
    assert snapshot_ids("bronze", settings) == first.snapshots

    write_source(settings.data_dir, rows)  # repaired: the next run loads the change, nothing is pending
    again = run_ingest(settings)
    assert again.rows_loaded == {**dict.fromkeys(COLUMNS, 0), "customers": 1}


def test_a_load_that_fails_half_way_says_what_it_committed_and_never_blocks_the_next_run(settings):
    """A table refuses the write, maybe after another table committed: the error names the table and exactly
    what the run committed; the next run is free and stores the rest once.

    dlt loads the jobs in the order its folder lists them, so the customer change lands before or after the
    failing store table: both orders are checked against what the catalog holds.
    """
    from pyiceberg.types import LongType

    from components.core.catalog import get_catalog
    from components.ingestion.ingest import IngestError

    run_ingest(settings)
    with get_catalog(settings).load_table("bronze.stores").update_schema() as update:
        update.add_column("floor", LongType())  # changed in the catalog by hand: the file's text cannot go in
    rows = _customer_changed()
    write_source(settings.data_dir, rows)
    _with_extra_column(settings.data_dir / "stores.csv", "floor", "ground")
    before = snapshot_ids("bronze", settings)
    with pytest.raises(IngestError) as failed:
        run_ingest(settings)
    after = snapshot_ids("bronze", settings)
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed in ([], ["bronze.customers"])
    message = str(failed.value)
    reason = "Mismatch in fields: table 11: floor: optional long vs data 11: floor: optional string"
    assert message.startswith(f"writing bronze.stores failed: {reason} (")
    if changed:
        assert "(committed: bronze.customers; nothing else was written)" in message
    else:
        assert "(nothing was written)" in message

    write_source(settings.data_dir, rows)  # without the column: the failed run does not block this one
    again = run_ingest(settings)
    loaded = 0 if changed else 1  # the customer change, exactly once whichever run stored it
    assert again.rows_loaded == {**dict.fromkeys(COLUMNS, 0), "customers": loaded}
    assert read_table("bronze.customers", settings).num_rows == 4


@pytest.mark.parametrize(
    ("ordered_at", "problem"),
    [
        ("2024-02-30 10:00:00", "is not a real date and time (day is out of range for month)"),
        ("2023-02-29 10:00:00", "is not a real date and time (day is out of range for month)"),
        ("2024-04-31 00:00:00", "is not a real date and time (day is out of range for month)"),
        ("2024-01-01 23:59:60", "is not a real date and time (second must be in 0..59)"),
        ("2024-1-1 1:2:3", "is not a timestamp like 2024-01-31 09:30:00"),
        ("2024-01-01T10:00:00", "is not a timestamp like 2024-01-31 09:30:00"),
        ("2024-01-01", "is not a timestamp like 2024-01-31 09:30:00"),
    ],
    ids=["feb-30", "feb-29-not-leap", "apr-31", "second-60", "unpadded", "iso-t", "date-only"],
)
def test_an_impossible_or_misshapen_timestamp_is_refused_with_its_line_never_shifted(
    settings, ordered_at, problem
):
    from components.sources.ecommerce import read_source_file

    rows = {table: list(lines) for table, lines in ROWS.items()}
    rows["orders"].append(f"1002,1,100,{ordered_at},placed,2024-05-01 00:00:00")
    write_source(settings.data_dir, rows)
    with pytest.raises(SourceFileError) as refused:
        read_source_file(settings.data_dir / "orders.csv", "orders")
    assert (
        str(refused.value)
        == f"{settings.data_dir / 'orders.csv'}:4: column 'ordered_at': {ordered_at!r} {problem}"
    )


def test_real_dates_load_as_written_leap_day_and_empty_values_included(settings):
    rows = {table: list(lines) for table, lines in ROWS.items()}
    rows["orders"].append("1002,1,100,2024-02-29 23:59:59,placed,")
    write_source(settings.data_dir, rows)
    run_ingest(settings)
    orders = read_table("bronze.orders", settings).sort_by("order_id").to_pydict()
    assert str(orders["ordered_at"][2]) == "2024-02-29 23:59:59"
    assert orders["updated_at"][2] is None
    assert [str(t) for t in orders["ordered_at"][:2]] == ["2024-02-01 12:00:00", "2024-02-02 12:00:00"]


def test_an_integer_out_of_range_is_refused_with_its_line(settings):
    from components.sources.ecommerce import read_source_file

    rows = {table: list(lines) for table, lines in ROWS.items()}
    rows["order_items"].append(f"5002,1001,11,{2**70},100,0,2024-02-05 12:00:00")
    write_source(settings.data_dir, rows)
    with pytest.raises(SourceFileError) as refused:
        read_source_file(settings.data_dir / "order_items.csv", "order_items")
    where = f"{settings.data_dir / 'order_items.csv'}:4"
    assert str(refused.value).startswith(
        f"{where}: column 'quantity': '{2**70}' is out of the range of a 64-bit"
    )


def test_an_update_from_the_future_is_refused_before_it_wins_every_merge(settings):
    """An `updated_at` years ahead would replace every later, real change of its key."""
    rows = {table: list(lines) for table, lines in ROWS.items()}
    rows["orders"].append("1002,1,100,2024-02-03 12:00:00,placed,2099-01-01 00:00:00")
    write_source(settings.data_dir, rows)
    with pytest.raises(SourceFileError) as refused:
        run_ingest(settings)
    message = str(refused.value)
    assert message.startswith(
        f"{settings.data_dir / 'orders.csv'}:4: column 'updated_at': '2099-01-01 00:00:00'"
    )
    assert "lies in the future" in message
    from components.core.catalog import get_catalog

    assert "bronze" not in {ns[0] for ns in get_catalog(settings).list_namespaces()}, "nothing was written"


def test_rows_that_differ_but_share_their_latest_updated_at_are_reported(settings, caplog):
    """Two versions of customer 1 stamped alike: the last in file order wins, and the log says so."""
    from components.sources.ecommerce import read_source_file

    rows = {table: list(lines) for table, lines in ROWS.items()}
    rows["customers"].append(
        "1,ann@example.com,Ann,Lee,Munich,DE,gold,2024-01-01 09:00:00,2024-03-01 10:00:00"
    )
    write_source(settings.data_dir, rows)
    with caplog.at_level("WARNING"):
        kept = read_source_file(settings.data_dir / "customers.csv", "customers")
    city = dict(zip(kept["customer_id"].to_pylist(), kept["city"].to_pylist(), strict=True))
    assert city[1] == "Munich", "the last in file order"
    assert "1 key(s) have rows that differ but share their latest updated_at" in caplog.text
    assert "(lines 3, 6)" in caplog.text
    result = run_ingest(settings)
    assert result.tied_keys == {"customers": 1}, "the step's result counts them too"


def test_identical_repeats_are_not_reported(settings, caplog):
    from components.sources.ecommerce import read_source_file

    write_source(settings.data_dir, ROWS)  # customer 2 twice, identical
    with caplog.at_level("WARNING"):
        read_source_file(settings.data_dir / "customers.csv", "customers")
    assert "share their latest" not in caplog.text
    assert run_ingest(settings).tied_keys == {}
