"""A second, incremental `dbt build` after new source rows: SCD2 rows closed on Trino, as on DuckDB."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest

from testing.changes import SourceChanges, append_changes
from testing.engines import MODELS, Engines
from testing.fingerprints import content_fingerprint, differences

pytestmark = pytest.mark.stack


#: Scratch tables of a build stopped mid-way (a deleted pod): a unit test's and an incremental model's.
LEFTOVER_SCRATCH = (
    'bronze."stg_customers_cleans_and_deduplicates_versions__dbt_tmp"',
    'silver."dim_customer__dbt_tmp"',
)


@dataclass(frozen=True)
class Increment:
    changes: SourceChanges
    customers_before: list[dict]
    snapshots_before: dict[str, int | None]


@pytest.fixture(scope="module")
def increment(engines: Engines) -> Increment:
    """Append changed customer versions and new orders, re-ingest, and build again on both engines."""
    before = engines.read("trino", "silver.dim_customer").to_pylist()
    snapshots = dict(engines.builds["trino"][-1].published)
    changes = append_changes(engines.data_dir)
    engines.ingest()
    for scratch in LEFTOVER_SCRATCH:
        engines.stack.trino(f"CREATE TABLE {scratch} AS SELECT 1 AS leftover")
    engines.build_both()
    return Increment(changes=changes, customers_before=before, snapshots_before=snapshots)


def histories(rows: list[dict]) -> dict[int, list[dict]]:
    by_customer: dict[int, list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["customer_id"], r["valid_from"])):
        by_customer[row["customer_id"]].append(row)
    return by_customer


def test_scd2_rows_are_closed_by_the_new_versions(engines: Engines, increment: Increment) -> None:
    after = histories(engines.read("trino", "silver.dim_customer").to_pylist())
    before = histories(increment.customers_before)
    changes = increment.changes
    assert set(after) == set(before) | {changes.new_customer}
    for customer_id, versions in after.items():
        assert [v["is_current"] for v in versions] == [False] * (len(versions) - 1) + [True], customer_id
        assert versions[-1]["valid_to"] is None, customer_id
        for earlier, later in zip(versions, versions[1:], strict=False):
            assert earlier["valid_from"] < earlier["valid_to"] == later["valid_from"], customer_id
    for customer_id in changes.changed_customers:
        old, new = before[customer_id], after[customer_id]
        assert len(new) == len(old) + 1, customer_id
        assert new[-2]["customer_sk"] == old[-1]["customer_sk"], "the open row is closed under its own key"
        assert new[-2]["valid_to"] == new[-1]["valid_from"] == changes.changed_at
        assert (new[-1]["city"], new[-1]["version_number"]) == ("Utrecht", len(new))
    unchanged = set(before) - set(changes.changed_customers)
    assert all(after[c] == before[c] for c in unchanged)
    assert [v["loyalty_tier"] for v in after[changes.new_customer]] == ["bronze"]


def test_incremental_models_were_merged_not_rebuilt(engines: Engines, increment: Increment) -> None:
    for identifier in ("silver.dim_customer", "gold.fct_orders", "gold.fct_order_items", "silver.dim_date"):
        namespace, name = identifier.split(".")
        history = engines.stack.trino(
            f'SELECT snapshot_id FROM {namespace}."{name}$history" '
            "WHERE is_current_ancestor ORDER BY made_current_at"
        )
        ids = [row[0] for row in history]
        assert increment.snapshots_before[identifier] in ids[:-1], f"{identifier} was rebuilt, not merged"
        assert ids[-1] == engines.builds["trino"][-1].published[identifier]
    unchanged = engines.builds["trino"][-1].published
    assert unchanged["silver.dim_store"] == increment.snapshots_before["silver.dim_store"]
    assert unchanged["silver.dim_product"] == increment.snapshots_before["silver.dim_product"]


def test_table_models_are_replaced_keeping_their_history(engines: Engines, increment: Increment) -> None:
    """customer_features and churn_labels are rebuilt by CREATE OR REPLACE: same table, history kept."""
    for identifier in ("gold.customer_features", "gold.churn_labels"):
        namespace, name = identifier.split(".")
        snapshots = [
            row[0] for row in engines.stack.trino(f'SELECT snapshot_id FROM {namespace}."{name}$snapshots"')
        ]
        current = engines.builds["trino"][-1].published[identifier]
        assert current != increment.snapshots_before[identifier]
        assert {current, increment.snapshots_before[identifier]} <= set(snapshots), identifier


def test_new_and_late_orders_reach_the_facts(engines: Engines, increment: Increment) -> None:
    changes = increment.changes
    current = {
        row["customer_id"]: row["customer_sk"]
        for row in engines.read("trino", "silver.dim_customer").to_pylist()
        if row["is_current"]
    }
    orders = {row["order_id"]: row for row in engines.read("trino", "gold.fct_orders").to_pylist()}
    for order_id in changes.new_orders:
        order = orders[order_id]
        assert order["customer_sk"] == current[order["customer_id"]], order_id
        assert order["item_count"] == 2 and order["status"] == "placed"
    assert orders[changes.late_order]["status"] == "returned"
    items = engines.read("trino", "gold.fct_order_items").to_pylist()
    late_lines = [row for row in items if row["order_id"] == changes.late_order]
    assert late_lines and all(
        row["updated_at"] == orders[changes.late_order]["updated_at"] for row in late_lines
    )


def test_scratch_tables_a_stopped_build_left_are_dropped(engines: Engines, increment: Increment) -> None:
    """The build after a stopped one ran its unit tests (the fixture's build passed) and left no scratch."""
    tables = engines.stack.trino("SELECT table_schema, table_name FROM information_schema.tables")
    left = [f"{schema}.{name}" for schema, name in tables if name.endswith("__dbt_tmp")]
    assert left == []


@pytest.mark.parametrize("identifier", MODELS)
def test_incremental_results_equal_duckdb(engines: Engines, increment: Increment, identifier: str) -> None:
    duckdb, trino = engines.read("duckdb", identifier), engines.read("trino", identifier)
    assert differences(content_fingerprint(duckdb), content_fingerprint(trino)) == {}
