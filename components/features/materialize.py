"""Features step: apply the Feast repository, materialize the online store, point-in-time training sets."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.core.feature_store import (
    CHURN_LABELS,
    CUSTOMER_FEATURES,
    TRAINING_SET_COLUMNS,
    FeaturesError,
    get_store,
    gold_table,
)
from components.core.rest_catalog import catalog_token_environ
from components.core.results import FeatureMaterialization
from components.core.settings import FEATURE_SERVICE, Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore


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


def apply_and_materialize(
    settings: Settings | None = None, as_of: datetime | None = None
) -> FeatureMaterialization:
    """Register the feature repository and load each customer's latest gold row into the online store.

    The window ends at the latest as-of date in `gold.customer_features` and starts one feature-view ttl
    before it, so the online store holds exactly the rows a point-in-time join at that date would use.
    Re-running on the same gold snapshot rewrites the same rows.

    Args:
        settings: the profile's settings.
        as_of: end the window at this earlier as-of date instead, to serve a past day again (a replay of
            traffic whose outcome is known); the customers without a row in its window keep theirs.

    Returns:
        a `FeatureMaterialization` (fields documented in `core/results.py`).
    """
    import pyarrow.compute as pc

    settings = settings or get_settings()
    table = gold_table(CUSTOMER_FEATURES, settings)
    snapshot_id = table.current_snapshot().snapshot_id
    as_of_dates = table.scan(selected_fields=("as_of_ts",), snapshot_id=snapshot_id).to_arrow()["as_of_ts"]
    if len(as_of_dates) == 0:
        raise FeaturesError(
            f"{CUSTOMER_FEATURES} is empty: run the transform step on loaded bronze data first"
        )
    latest = pc.max(as_of_dates).as_py().replace(tzinfo=UTC)
    if as_of is not None:
        latest = min(latest, as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC))

    from feast import FeatureView

    from feature_repo.definitions import repo_objects

    store = get_store(settings)
    objects = repo_objects(settings)
    views = [obj for obj in objects if isinstance(obj, FeatureView)]
    start = latest - max(view.ttl for view in views)
    with catalog_token_environ(settings):  # Feast reads the gold table through the catalog
        store.apply(objects)
        store.materialize(start_date=start, end_date=latest, feature_views=[view.name for view in views])
    return FeatureMaterialization(
        feature_service=FEATURE_SERVICE,
        feature_views=[view.name for view in views],
        gold_snapshot_id=snapshot_id,
        materialized_start=start.isoformat(),
        materialized_end=latest.isoformat(),
        online_customers=_online_customer_count(settings, store),
    )


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


def rebuild_training_set(settings: Settings, lineage: dict[str, Any], workdir: Path) -> pd.DataFrame:
    """The training set a model version was trained on, rebuilt from the gold snapshots it recorded.

    `gold.customer_features` and `gold.churn_labels` are read as of the recorded snapshot ids (Iceberg
    time travel), copied into a scratch local lakehouse under `workdir`, and joined point in time by the
    same Feast feature service, exactly as the features step does; the live tables are not touched.

    Returns:
        the training set, validated as the train step validates it (`training_set_hash` of it is the one
        the run recorded when the rows are the same).
    """
    import dataclasses

    from components.core.catalog import get_catalog
    from components.core.model.split import validate_training_frame
    from feature_repo.definitions import repo_objects

    gold = lineage["gold"]["snapshot_ids"] or {}
    pinned = {
        CUSTOMER_FEATURES: lineage["gold"]["features_snapshot_id"] or gold.get(CUSTOMER_FEATURES),
        CHURN_LABELS: gold.get(CHURN_LABELS),
    }
    missing = [table for table, snapshot in pinned.items() if snapshot is None]
    if missing:
        raise LookupError(f"the model's run recorded no snapshot of {', '.join(missing)}: cannot rebuild")
    scratch = dataclasses.replace(
        settings,
        profile="local",
        home=workdir,
        catalog_type="sql",
        catalog_uri=f"sqlite:///{workdir}/catalog.db",
        warehouse=f"file://{workdir}/warehouse",
        feast_registry=str(workdir / "feast" / "registry.db"),
        feast_online_path=str(workdir / "feast" / "online.db"),
        feast_online_store="sqlite",
        redis_url="",
        s3_endpoint="",
    )
    source, target = get_catalog(settings), get_catalog(scratch)
    for identifier, snapshot_id in pinned.items():
        rows = source.load_table(identifier).scan(snapshot_id=int(snapshot_id)).to_arrow()
        target.create_namespace_if_not_exists(identifier.split(".")[0])
        target.create_table(identifier, schema=rows.schema).append(rows)
    get_store(scratch).apply(repo_objects(scratch))
    return validate_training_frame(get_training_set(scratch))


def main() -> None:
    """`python -m components.features.materialize`: apply and materialize, then print the summary as JSON."""
    print(json.dumps(apply_and_materialize(), indent=2))


if __name__ == "__main__":
    main()
