"""Hand-made gold tables (three customers, four weekly as-of dates) written to a real Iceberg catalog."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from components.core.catalog import get_catalog
from components.core.settings import GOLD, Settings, get_settings

#: Weekly as-of dates (Mondays, midnight UTC), oldest first.
AS_OF_DATES = tuple(datetime(2025, 1, 6) + timedelta(weeks=week) for week in range(4))
LATEST_AS_OF = AS_OF_DATES[-1]
#: Customer 3 signs up after the first as-of date, so it has no row then.
SIGNUP = {1: datetime(2024, 6, 1), 2: datetime(2024, 11, 20), 3: datetime(2025, 1, 10)}
TIERS = ("bronze", "silver", "gold", "platinum")

CUSTOMER_FEATURES_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("as_of_ts", pa.timestamp("us")),
        ("recency_days", pa.float64()),
        ("orders_7d", pa.int64()),
        ("orders_30d", pa.int64()),
        ("orders_90d", pa.int64()),
        ("spend_7d_amount", pa.float64()),
        ("spend_30d_amount", pa.float64()),
        ("spend_90d_amount", pa.float64()),
        ("avg_order_amount", pa.float64()),
        ("tenure_days", pa.int64()),
        ("distinct_categories_90d", pa.int64()),
        ("top_category_share_90d", pa.float64()),
        ("loyalty_tier", pa.string()),
        ("loyalty_tier_rank", pa.int64()),
    ]
)
CHURN_LABELS_SCHEMA = pa.schema(
    [("customer_id", pa.int64()), ("as_of_ts", pa.timestamp("us")), ("is_churned", pa.bool_())]
)


@contextmanager
def local_lakehouse(home: Path) -> Iterator[Settings]:
    """Local-profile settings whose every path lives under `home` (set in the environment meanwhile)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("LAKEHOUSE_"):
                patch.delenv(name)
        patch.setenv("LAKEHOUSE_PROFILE", "local")
        patch.setenv("LAKEHOUSE_HOME", str(home))
        patch.setenv("LAKEHOUSE_DATA_DIR", str(home / "data"))
        yield get_settings()


def feature_row(customer_id: int, week: int) -> dict:
    """The gold row of `customer_id` at as-of week `week`: every value encodes both, so a join is traceable.

    Customer 3 has never ordered before its second week (NULL recency, averages and shares).
    """
    as_of = AS_OF_DATES[week]
    has_orders = not (customer_id == 3 and week < 2)
    rank = min(customer_id + (1 if week >= 2 else 0), 4)
    return {
        "customer_id": customer_id,
        "as_of_ts": as_of,
        "recency_days": float(10 * customer_id + week) if has_orders else None,
        "orders_7d": week,
        "orders_30d": 100 * customer_id + week,
        "orders_90d": 1000 * customer_id + week,
        "spend_7d_amount": 1.5 * week,
        "spend_30d_amount": 100.0 * customer_id + week + 0.25,
        "spend_90d_amount": 1000.0 * customer_id + week + 0.5,
        "avg_order_amount": 20.0 * customer_id + week if has_orders else None,
        "tenure_days": (as_of - SIGNUP[customer_id]).days,
        "distinct_categories_90d": customer_id + week,
        "top_category_share_90d": round(0.1 * customer_id + 0.01 * week, 4) if has_orders else None,
        "loyalty_tier": TIERS[rank - 1],
        "loyalty_tier_rank": rank,
    }


def feature_rows() -> list[dict]:
    """Every gold.customer_features row: each customer at each as-of date on or after its signup."""
    return [
        feature_row(customer_id, week)
        for week, as_of in enumerate(AS_OF_DATES)
        for customer_id in sorted(SIGNUP)
        if SIGNUP[customer_id] <= as_of
    ]


def label_rows() -> list[dict]:
    """gold.churn_labels: as-of dates with a full 30-day window after them (the first two weeks)."""
    churned = {(1, 0): False, (2, 0): True, (1, 1): False, (2, 1): False, (3, 1): True}
    return [
        {"customer_id": customer_id, "as_of_ts": AS_OF_DATES[week], "is_churned": value}
        for (customer_id, week), value in churned.items()
    ]


def write_gold_tables(settings: Settings, *, labels: bool = True) -> dict[str, int]:
    """Create `gold.customer_features` (and `gold.churn_labels`) in the settings' catalog.

    Returns:
        The snapshot id of each table written.
    """
    catalog = get_catalog(settings)
    catalog.create_namespace_if_not_exists(GOLD)
    written = {"customer_features": (feature_rows(), CUSTOMER_FEATURES_SCHEMA)}
    if labels:
        written["churn_labels"] = (label_rows(), CHURN_LABELS_SCHEMA)
    snapshots = {}
    for name, (rows, schema) in written.items():
        data = pa.Table.from_pylist(rows, schema=schema)
        table = catalog.create_table(f"{GOLD}.{name}", schema=schema)
        table.append(data)
        snapshots[f"{GOLD}.{name}"] = table.current_snapshot().snapshot_id
    return snapshots
