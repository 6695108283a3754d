"""Transformation: a real dbt build over generated, ingested bronze, published to Iceberg silver/gold."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from components.core.catalog import get_catalog, read_table, snapshot_ids
from components.core.settings import BRONZE, GOLD, SILVER, get_settings
from components.ingestion.ingest import run_ingest
from components.sources.ecommerce.generator import generate
from components.transformation.transform import (
    CONTENT_HASH_PROPERTY,
    TransformError,
    dbt_paths,
    run_transform,
)
from testing.changes import INVALID_ROW_TESTS, append_invalid_rows

#: The gold contract Feast and training read, as Iceberg column types.
CUSTOMER_FEATURES = {
    "customer_id": "long",
    "as_of_ts": "timestamp",
    "recency_days": "double",
    "orders_7d": "long",
    "orders_30d": "long",
    "orders_90d": "long",
    "spend_7d_amount": "double",
    "spend_30d_amount": "double",
    "spend_90d_amount": "double",
    "avg_order_amount": "double",
    "tenure_days": "long",
    "distinct_categories_90d": "long",
    "top_category_share_90d": "double",
    "loyalty_tier": "string",
    "loyalty_tier_rank": "long",
}
CHURN_LABELS = {"customer_id": "long", "as_of_ts": "timestamp", "is_churned": "boolean"}
TS_FORMAT = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Generate a small business, ingest it into bronze and run the transformation once."""
    root = tmp_path_factory.mktemp("transform")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAKEHOUSE_HOME", str(root / "home"))
        mp.setenv("LAKEHOUSE_DATA_DIR", str(root / "data"))
        settings = get_settings("local")
        generate(settings.data_dir, scale=0.1, seed=11)
        run_ingest(settings)
        yield settings, run_transform(settings)


def model_names(settings, layer: str) -> set[str]:
    return {path.stem for path in (settings.dbt_project_dir / "models" / layer).glob("*.sql")}


def iceberg_columns(settings, identifier: str) -> dict[str, str]:
    return {f.name: str(f.field_type) for f in get_catalog(settings).load_table(identifier).schema().fields}


def test_every_model_is_built_and_published(built):
    settings, result = built
    assert result.target == "local"
    assert result.dbt_invocation_id
    layers = {layer: model_names(settings, layer) for layer in (BRONZE, SILVER, GOLD)}
    assert result.models == sum(len(names) for names in layers.values())
    assert result.tests > 0
    expected = {f"{layer}.{name}" for layer in (SILVER, GOLD) for name in layers[layer]}
    assert set(result.published) == expected
    assert result.published == {**snapshot_ids(SILVER, settings), **snapshot_ids(GOLD, settings)}
    assert result.bronze_snapshots == snapshot_ids(BRONZE, settings)
    assert (dbt_paths(settings)["target"] / "run_results.json").is_file()
    assert (dbt_paths(settings)["logs"] / "dbt.log").is_file()


def test_dim_customer_is_a_valid_scd2_history(built):
    settings, _ = built
    rows = read_table("silver.dim_customer", settings).sort_by(
        [("customer_id", "ascending"), ("valid_from", "ascending")]
    )
    assert rows.num_rows > 0
    assert pc.count_distinct(rows["customer_sk"]).as_py() == rows.num_rows
    history: dict[int, list[dict]] = {}
    for row in rows.select(["customer_id", "valid_from", "valid_to", "is_current"]).to_pylist():
        history.setdefault(row["customer_id"], []).append(row)
    versions = sum(len(v) for v in history.values())
    assert versions > len(history), "the generated change log should hold customers with several versions"
    for customer_id, versions in history.items():
        assert [v["is_current"] for v in versions] == [False] * (len(versions) - 1) + [True], customer_id
        assert versions[-1]["valid_to"] is None
        for earlier, later in zip(versions, versions[1:], strict=False):
            assert earlier["valid_from"] < earlier["valid_to"] == later["valid_from"], customer_id


def test_facts_have_unique_keys_and_point_at_dimensions(built):
    settings, _ = built
    orders = read_table("gold.fct_orders", settings)
    items = read_table("gold.fct_order_items", settings)
    assert orders.num_rows > 0 and items.num_rows > 0
    for table, key in ((orders, "order_sk"), (orders, "order_id"), (items, "order_item_sk")):
        assert pc.count_distinct(table[key]).as_py() == table.num_rows, key
    customers = set(read_table("silver.dim_customer", settings)["customer_sk"].to_pylist())
    assert set(orders["customer_sk"].to_pylist()) <= customers
    assert set(items["order_sk"].to_pylist()) <= set(orders["order_sk"].to_pylist())
    assert pc.min(items["quantity"]).as_py() > 0


def test_feature_mart_and_labels_follow_the_gold_contract(built):
    settings, _ = built
    assert iceberg_columns(settings, "gold.customer_features") == CUSTOMER_FEATURES
    assert iceberg_columns(settings, "gold.churn_labels") == CHURN_LABELS
    features = read_table("gold.customer_features", settings)
    labels = read_table("gold.churn_labels", settings)
    assert features.schema.field("as_of_ts").type == pa.timestamp("us")
    keys = features.group_by(["customer_id", "as_of_ts"]).aggregate([])
    assert keys.num_rows == features.num_rows > 0

    ordered_at = read_table("gold.fct_orders", settings)["ordered_at"]
    first_order = pc.min(ordered_at).as_py().date()
    last_order = pc.max(ordered_at).as_py().date()
    as_of_dates = sorted({ts.date() for ts in features["as_of_ts"].to_pylist()})
    assert as_of_dates[0] == first_order + timedelta(days=90)
    assert all((b - a).days == 7 for a, b in zip(as_of_dates, as_of_dates[1:], strict=False))
    assert as_of_dates[-1] <= last_order < as_of_dates[-1] + timedelta(days=7)
    assert all(ts.time() == datetime.min.time() for ts in features["as_of_ts"].to_pylist())

    assert pc.min(features["tenure_days"]).as_py() >= 0
    assert pc.min(features["recency_days"]).as_py() > 0
    share = features["top_category_share_90d"]
    assert pc.min(share).as_py() > 0 and pc.max(share).as_py() <= 1
    assert set(features["loyalty_tier_rank"].to_pylist()) <= {1, 2, 3, 4}

    label_dates = {ts.date() for ts in labels["as_of_ts"].to_pylist()}
    assert label_dates and max(label_dates) + timedelta(days=30) <= last_order
    assert label_dates <= set(as_of_dates)
    churned = labels["is_churned"].to_pylist()
    assert True in churned and False in churned


def test_rerun_on_unchanged_bronze_publishes_nothing(built):
    settings, first = built
    catalog = get_catalog(settings)
    history = {name: len(catalog.load_table(name).snapshots()) for name in first.published}
    again = run_transform(settings)
    assert again.published == first.published
    assert again.dbt_invocation_id != first.dbt_invocation_id
    for name, count in history.items():
        table = catalog.load_table(name)
        assert len(table.snapshots()) == count, name
        assert (
            table.properties[CONTENT_HASH_PROPERTY] == table.current_snapshot().summary[CONTENT_HASH_PROPERTY]
        )


def test_failing_dbt_tests_are_named_and_published_tables_kept(built):
    settings, first = built
    append_invalid_rows(settings.data_dir)
    run_ingest(settings)

    with pytest.raises(TransformError) as failure:
        run_transform(settings)
    for name in INVALID_ROW_TESTS:
        assert name in str(failure.value)
    assert {**snapshot_ids(SILVER, settings), **snapshot_ids(GOLD, settings)} == first.published
