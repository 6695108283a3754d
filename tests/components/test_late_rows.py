"""Rows no updated_at cursor would see flow through bronze into silver/gold like any other row."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from components.core.catalog import read_table
from components.core.settings import GOLD, SILVER, get_settings
from components.ingestion.ingest import run_ingest
from components.sources.ecommerce.generator import generate
from components.transformation.transform import published_snapshots, run_transform
from testing.changes import append_late_rows
from testing.fingerprints import content_fingerprint, differences


def _settings(mp: pytest.MonkeyPatch, root, name: str, data_dir):
    mp.setenv("LAKEHOUSE_HOME", str(root / name))
    mp.setenv("LAKEHOUSE_DATA_DIR", str(data_dir))
    return get_settings("local")


@pytest.fixture(scope="module")
def histories(tmp_path_factory):
    """One lakehouse built, fed late rows and built again incrementally; one built once from the end state."""
    root = tmp_path_factory.mktemp("late_rows")
    data_dir = root / "data"
    with pytest.MonkeyPatch.context() as mp:
        incremental = _settings(mp, root, "incremental", data_dir)
        generate(data_dir, scale=0.1, seed=11)
        run_ingest(incremental)
        run_transform(incremental)
        late = append_late_rows(data_dir)
        loaded = run_ingest(incremental)
        run_transform(incremental)
        once = _settings(mp, root, "once", data_dir)
        run_ingest(once)
        run_transform(once)
    return incremental, once, late, loaded


def test_each_late_row_is_loaded_once(histories):
    *_, loaded = histories
    assert loaded.rows_loaded == {
        "customers": 1,
        "products": 1,
        "stores": 0,
        "orders": 2,  # the backfilled order and the corrected one
        "order_items": 1,
    }


def test_incremental_build_equals_a_build_from_scratch(histories):
    incremental, once, *_ = histories
    tables = sorted(published_snapshots(incremental))
    assert tables == sorted(published_snapshots(once))
    for identifier in tables:
        left, right = (content_fingerprint(read_table(identifier, s)) for s in (incremental, once))
        assert differences(left, right) == {}, identifier


def test_late_customer_version_takes_its_place_in_the_history(histories):
    incremental, _, late, _ = histories
    rows = read_table(f"{SILVER}.dim_customer", incremental)
    history = rows.filter(pc.equal(rows["customer_id"], late.late_version_customer)).sort_by("valid_from")
    versions = history.to_pylist()
    assert [v["version_number"] for v in versions] == list(range(1, len(versions) + 1))
    assert versions[1]["city"] == "Late City"
    for earlier, later in zip(versions, versions[1:], strict=False):
        assert earlier["valid_to"] == later["valid_from"]
    assert [v["is_current"] for v in versions][-1] is True


def test_old_product_and_backfilled_order_reach_the_facts(histories):
    incremental, _, late, _ = histories
    items = read_table(f"{GOLD}.fct_order_items", incremental)
    line = items.filter(pc.equal(items["order_item_id"], late.old_new_line)).to_pylist()
    assert len(line) == 1 and line[0]["product_sk"] is not None
    orders = read_table(f"{GOLD}.fct_orders", incremental)
    status = dict(zip(orders["order_id"].to_pylist(), orders["status"].to_pylist(), strict=True))
    assert status[late.backfilled_order] == "delivered"
    assert status[late.corrected_order] == "returned"
