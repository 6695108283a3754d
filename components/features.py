"""Features step: apply the Feast repository, materialize the online store, point-in-time training sets."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.lakehouse import get_catalog
from components.rest_catalog import catalog_token_environ
from components.settings import FEATURE_SERVICE, GOLD, Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

CUSTOMER_FEATURES = f"{GOLD}.customer_features"
CHURN_LABELS = f"{GOLD}.churn_labels"
#: The 13 features of `churn_v1`, in training-set order.
FEATURE_COLUMNS = (
    "recency_days",
    "orders_7d",
    "orders_30d",
    "orders_90d",
    "spend_7d_amount",
    "spend_30d_amount",
    "spend_90d_amount",
    "avg_order_amount",
    "tenure_days",
    "distinct_categories_90d",
    "top_category_share_90d",
    "loyalty_tier_rank",
    "loyalty_tier",
)
TRAINING_SET_COLUMNS = ("customer_id", "as_of_ts", "is_churned", *FEATURE_COLUMNS)

_VAR = re.compile(r"\$\{(\w+)\}")


class FeaturesError(RuntimeError):
    """Raised when the gold tables or the Feast registry the features step needs are missing."""


def get_store(settings: Settings | None = None) -> FeatureStore:
    """The Feast store of `feature_repo/` for the profile's online store, its `${VAR}`s from `settings.env()`.

    The configuration file is `settings.feature_store_yaml` (SQLite or Redis online store). Variables the
    settings do not carry fall back to the process environment; an unset one is an error rather than a
    literal `${VAR}` path.
    """
    import yaml
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    settings = settings or get_settings()
    settings.ensure_dirs()
    yaml_path = settings.feature_store_yaml
    values = {**os.environ, **settings.env()}
    missing = sorted({name for name in _VAR.findall(yaml_path.read_text()) if name not in values})
    if missing:
        raise FeaturesError(f"{yaml_path} needs environment variables that are not set: {', '.join(missing)}")
    raw = yaml.safe_load(_VAR.sub(lambda m: values[m.group(1)], yaml_path.read_text()))
    config = RepoConfig(**raw)
    config.repo_path = settings.feature_repo_dir
    return FeatureStore(repo_path=str(settings.feature_repo_dir), config=config)


def gold_table(identifier: str, settings: Settings) -> Any:
    """Load a gold table that must exist and hold a snapshot, or say which step to run."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        table = get_catalog(settings).load_table(identifier)
    except (NoSuchTableError, NoSuchNamespaceError) as exc:
        raise FeaturesError(
            f"{identifier} is not in the {settings.catalog_name!r} catalog at {settings.catalog_uri}: "
            "run the transform step first"
        ) from exc
    if table.current_snapshot() is None:
        raise FeaturesError(f"{identifier} has no snapshot yet: run the transform step first")
    return table


def _online_customer_count(settings: Settings, store: FeatureStore) -> int | None:
    """Customers with `customer_activity` features in the online store (SQLite or Redis)."""
    kind = store.config.online_store.type
    if kind == "redis":
        return _redis_customer_count(settings, store.config.project)
    if kind != "sqlite" or not Path(settings.feast_online_path).exists():
        return None
    table = f"{store.config.project}_customer_activity"
    with sqlite3.connect(settings.feast_online_path) as conn:
        return conn.execute(f'SELECT COUNT(DISTINCT entity_key) FROM "{table}"').fetchone()[0]


def _redis_customer_count(settings: Settings, project: str) -> int:
    """Redis keys of `project`'s customers that hold a `customer_activity` row (Feast's key layout)."""
    import redis
    from feast.infra.online_stores.helpers import _redis_key_prefix

    client = redis.Redis.from_url(settings.redis_url)
    try:
        pattern = _redis_key_prefix(["customer_id"]) + b"*" + project.encode()
        keys = list(client.scan_iter(match=pattern, count=1000))
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hexists(key, "_ts:customer_activity")
            return sum(pipe.execute()) if keys else 0
    finally:
        client.close()


def apply_and_materialize(settings: Settings | None = None) -> dict[str, Any]:
    """Register the feature repository and load each customer's latest gold row into the online store.

    The window ends at the latest as-of date in `gold.customer_features` and starts one feature-view ttl
    before it, so the online store holds exactly the rows a point-in-time join at that date would use.
    Re-running on the same gold snapshot rewrites the same rows.

    Returns:
        feature_service, feature_views, gold_snapshot_id (of gold.customer_features), materialized_start,
        materialized_end (ISO timestamps) and online_customers (None when not cheap to count).
    """
    import pyarrow.compute as pc

    settings = settings or get_settings()
    table = gold_table(CUSTOMER_FEATURES, settings)
    snapshot_id = table.current_snapshot().snapshot_id
    as_of = table.scan(selected_fields=("as_of_ts",), snapshot_id=snapshot_id).to_arrow()["as_of_ts"]
    if len(as_of) == 0:
        raise FeaturesError(
            f"{CUSTOMER_FEATURES} is empty: run the transform step on loaded bronze data first"
        )
    latest = pc.max(as_of).as_py().replace(tzinfo=UTC)

    from feast import FeatureView

    from feature_repo.definitions import repo_objects

    store = get_store(settings)
    objects = repo_objects(settings)
    views = [obj for obj in objects if isinstance(obj, FeatureView)]
    start = latest - max(view.ttl for view in views)
    with catalog_token_environ(settings):  # Feast reads the gold table through the catalog
        store.apply(objects)
        store.materialize(start_date=start, end_date=latest, feature_views=[view.name for view in views])
    return {
        "feature_service": FEATURE_SERVICE,
        "feature_views": [view.name for view in views],
        "gold_snapshot_id": snapshot_id,
        "materialized_start": start.isoformat(),
        "materialized_end": latest.isoformat(),
        "online_customers": _online_customer_count(settings, store),
    }


def get_training_set(settings: Settings | None = None) -> pd.DataFrame:
    """Point-in-time training set: each churn label joined with the `churn_v1` features valid at its as-of.

    Returns:
        customer_id, as_of_ts (UTC), is_churned and the 13 feature columns, sorted by (as_of_ts, customer_id).
    """
    import pandas as pd
    from feast.errors import FeatureServiceNotFoundException

    settings = settings or get_settings()
    gold_table(CUSTOMER_FEATURES, settings)
    labels = gold_table(CHURN_LABELS, settings).scan().to_arrow()
    for column in ("customer_id", "as_of_ts", "is_churned"):
        if column not in labels.column_names:
            raise FeaturesError(
                f"{CHURN_LABELS} has no column {column!r}: expected customer_id, as_of_ts, is_churned"
            )
        if labels[column].null_count:
            raise FeaturesError(f"{CHURN_LABELS}.{column} has {labels[column].null_count} NULL value(s)")
    entity_df = pd.DataFrame(
        {
            "customer_id": labels["customer_id"].to_numpy().astype("int64"),
            "event_timestamp": pd.to_datetime(labels["as_of_ts"].to_pandas(), utc=True),
            "is_churned": labels["is_churned"].to_numpy(zero_copy_only=False).astype(bool),
        }
    )
    store = get_store(settings)
    try:
        service = store.get_feature_service(FEATURE_SERVICE)
    except FeatureServiceNotFoundException as exc:
        raise FeaturesError(
            f"feature service {FEATURE_SERVICE!r} is not in the Feast registry {settings.feast_registry}: "
            "run the features step (apply_and_materialize) first"
        ) from exc
    with catalog_token_environ(settings):
        frame = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    frame = frame.rename(columns={"event_timestamp": "as_of_ts"})
    frame["as_of_ts"] = pd.to_datetime(frame["as_of_ts"], utc=True)
    frame = frame.loc[:, list(TRAINING_SET_COLUMNS)]
    return frame.sort_values(["as_of_ts", "customer_id"], kind="stable").reset_index(drop=True)


def main() -> None:
    """`python -m components.features`: apply and materialize, then print the summary as JSON."""
    print(json.dumps(apply_and_materialize(), indent=2))


if __name__ == "__main__":
    main()
