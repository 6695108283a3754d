"""Tests of the features step: the Feast repository, materialization and point-in-time training sets."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest

from components.core.catalog import get_catalog
from components.core.feature_contract import view_features
from components.core.feature_store import FEATURE_COLUMNS, TRAINING_SET_COLUMNS, FeaturesError, get_store
from components.core.settings import FEATURE_SERVICE
from components.features.materialize import apply_and_materialize, get_training_set
from testing.tiny_lakehouse import (
    AS_OF_DATES,
    CHURN_LABELS_SCHEMA,
    LATEST_AS_OF,
    SIGNUP,
    feature_row,
    label_rows,
    local_lakehouse,
    write_gold_tables,
)

UTC = "UTC"
#: Feast's value type of each contract type.
FEAST_TYPE_NAMES = {"INT64": "int64", "DOUBLE": "float64", "STRING": "string"}


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory):
    """Hand-made gold tables, applied and materialized once (then a second time, to check idempotence)."""
    with local_lakehouse(tmp_path_factory.mktemp("features")) as settings:
        snapshots = write_gold_tables(settings)
        first = apply_and_materialize(settings)
        yield settings, snapshots, first


def _expected(customer_id: int, week: int) -> dict:
    return {name: feature_row(customer_id, week)[name] for name in FEATURE_COLUMNS}


def _same(actual, expected) -> bool:
    if expected is None:
        return actual is None or pd.isna(actual)
    return actual == pytest.approx(expected) if isinstance(expected, float) else actual == expected


def test_feature_repo_objects_follow_the_contract(lakehouse):
    settings, _, _ = lakehouse
    store = get_store(settings)
    assert store.config.project == "lakehouse"
    assert store.config.registry.path == settings.feast_registry
    assert store.config.online_store.path == settings.feast_online_path
    assert store.config.entity_key_serialization_version == 3

    entity = store.get_entity("customer")
    assert entity.join_key == "customer_id" and entity.value_type.name == "INT64"
    (source,) = store.list_data_sources()
    assert source.name == "customer_features_source"
    assert (source.catalog_type, source.catalog_name) == ("sql", "lakehouse")
    assert (source.endpoint, source.warehouse) == (settings.catalog_uri, settings.warehouse)
    assert (source.namespace, source.iceberg_table, source.timestamp_field) == (
        "gold",
        "customer_features",
        "as_of_ts",
    )

    views = {view.name: view for view in store.list_feature_views()}
    # each view serves its part of the feature contract, in contract order and with the contract's types
    for name, view in views.items():
        expected = [(f.name, f.dtype) for f in view_features(name)]
        assert [(f.name, FEAST_TYPE_NAMES[f.dtype.to_value_type().name]) for f in view.features] == expected
    assert sorted(f.name for view in views.values() for f in view.features) == sorted(FEATURE_COLUMNS)
    for view in views.values():
        assert view.ttl == timedelta(days=14) and view.online and view.description and view.tags
        assert view.entities == ["customer"]
    service = store.get_feature_service(FEATURE_SERVICE)
    assert sorted(p.name for p in service.feature_view_projections) == sorted(views)
    assert service.description and service.tags


def test_materialize_summary_and_online_features_hold_each_customers_latest_row(lakehouse):
    settings, snapshots, summary = lakehouse
    assert summary.feature_service == FEATURE_SERVICE
    assert summary.gold_snapshot_id == snapshots["gold.customer_features"]
    assert pd.Timestamp(summary.materialized_end) == pd.Timestamp(LATEST_AS_OF, tz=UTC)
    assert pd.Timestamp(summary.materialized_start) == pd.Timestamp(LATEST_AS_OF - timedelta(days=14), tz=UTC)
    assert summary.online_customers == len(SIGNUP)

    store = get_store(settings)
    ids = [*sorted(SIGNUP), 999]
    online = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE), entity_rows=[{"customer_id": i} for i in ids]
    ).to_dict()
    latest_week = len(AS_OF_DATES) - 1
    for position, customer_id in enumerate(ids[:-1]):
        for name, value in _expected(customer_id, latest_week).items():
            assert _same(online[name][position], value), (customer_id, name)
    assert all(online[name][-1] is None for name in FEATURE_COLUMNS)


def test_apply_and_materialize_is_idempotent(lakehouse):
    settings, _, first = lakehouse
    store = get_store(settings)
    before = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE), entity_rows=[{"customer_id": 2}]
    ).to_dict()
    again = apply_and_materialize(settings)
    assert again == first
    store = get_store(settings)
    assert len(store.list_feature_views()) == 2 and len(store.list_feature_services()) == 1
    after = store.get_online_features(
        features=store.get_feature_service(FEATURE_SERVICE), entity_rows=[{"customer_id": 2}]
    ).to_dict()
    assert after == before


def test_training_set_joins_each_label_with_the_row_of_its_own_as_of_date(lakehouse):
    settings, _, _ = lakehouse
    frame = get_training_set(settings)
    assert list(frame.columns) == list(TRAINING_SET_COLUMNS)
    assert len(frame) == len(label_rows())
    assert str(frame["as_of_ts"].dt.tz) == UTC
    assert frame["is_churned"].dtype == bool
    assert list(frame.index) == list(range(len(frame)))
    keys = list(zip(frame["as_of_ts"], frame["customer_id"], strict=True))
    assert keys == sorted(keys)

    week_of = {pd.Timestamp(as_of, tz=UTC): week for week, as_of in enumerate(AS_OF_DATES)}
    labels = {
        (row["customer_id"], pd.Timestamp(row["as_of_ts"], tz=UTC)): row["is_churned"] for row in label_rows()
    }
    for row in frame.to_dict("records"):
        week = week_of[row["as_of_ts"]]
        assert row["is_churned"] == labels[(row["customer_id"], row["as_of_ts"])]
        # every value encodes its customer and week: equality proves the row of this as-of date was used,
        # never the following week's row
        for name, value in _expected(row["customer_id"], week).items():
            assert _same(row[name], value), (row["customer_id"], week, name)
    # customer 3 had not ordered yet at its first as-of date: NULLs stay NULL
    first_of_3 = frame[(frame.customer_id == 3)].iloc[0]
    assert pd.isna(first_of_3["recency_days"]) and pd.isna(first_of_3["avg_order_amount"])


def test_point_in_time_join_between_as_of_dates_and_beyond_the_ttl(lakehouse):
    settings, _, _ = lakehouse
    store = get_store(settings)
    mid_week = pd.Timestamp(AS_OF_DATES[1], tz=UTC) + pd.Timedelta(days=6, hours=23)
    entity_df = pd.DataFrame(
        {
            "customer_id": [1, 3, 2, 2],
            "event_timestamp": [
                mid_week,  # one hour before week 2: still week 1's row
                pd.Timestamp(AS_OF_DATES[1], tz=UTC) - pd.Timedelta(microseconds=1),  # before 3's first row
                pd.Timestamp(LATEST_AS_OF, tz=UTC) + pd.Timedelta(days=13),  # within the 14-day ttl
                pd.Timestamp(LATEST_AS_OF, tz=UTC) + pd.Timedelta(days=15),  # beyond it
            ],
        }
    )
    joined = store.get_historical_features(
        entity_df=entity_df, features=store.get_feature_service(FEATURE_SERVICE)
    ).to_df()
    by_key = {(r["customer_id"], r["event_timestamp"]): r for r in joined.to_dict("records")}
    rows = [
        by_key[(c, t)] for c, t in zip(entity_df["customer_id"], entity_df["event_timestamp"], strict=True)
    ]
    assert rows[0]["orders_30d"] == feature_row(1, 1)["orders_30d"]
    assert rows[2]["orders_30d"] == feature_row(2, len(AS_OF_DATES) - 1)["orders_30d"]
    for row in (rows[1], rows[3]):
        assert all(pd.isna(row[name]) for name in FEATURE_COLUMNS)


def test_missing_gold_tables_ask_for_the_transform_step(tmp_path):
    with local_lakehouse(tmp_path) as settings:
        with pytest.raises(FeaturesError, match="gold.customer_features .*run the transform step first"):
            apply_and_materialize(settings)
        with pytest.raises(FeaturesError, match="run the transform step first"):
            get_training_set(settings)


def test_training_set_before_apply_asks_for_the_features_step(tmp_path):
    with local_lakehouse(tmp_path) as settings:
        write_gold_tables(settings)
        with pytest.raises(FeaturesError, match=f"{FEATURE_SERVICE}.*run the features step"):
            get_training_set(settings)


def test_missing_labels_table_is_named(tmp_path):
    with local_lakehouse(tmp_path) as settings:
        write_gold_tables(settings, labels=False)
        with pytest.raises(FeaturesError, match="gold.churn_labels"):
            get_training_set(settings)


def test_null_labels_are_refused_not_read_as_false(tmp_path):
    with local_lakehouse(tmp_path) as settings:
        write_gold_tables(settings, labels=False)
        rows = [*label_rows(), {"customer_id": 1, "as_of_ts": AS_OF_DATES[2], "is_churned": None}]
        table = get_catalog(settings).create_table("gold.churn_labels", schema=CHURN_LABELS_SCHEMA)
        table.append(pa.Table.from_pylist(rows, schema=CHURN_LABELS_SCHEMA))
        with pytest.raises(FeaturesError, match=r"gold.churn_labels.is_churned has 1 NULL"):
            get_training_set(settings)
