"""Score step: the champion's churn probability for every current customer, into `gold.churn_scores`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from components.core.catalog import get_catalog
from components.core.feature_store import customer_features, latest_rows
from components.core.model.pipeline import churn_probability
from components.core.model.registry import load_champion
from components.core.results import Scores
from components.core.settings import GOLD, Settings, get_settings
from components.core.tables import ensure_table, model_rows, replace_rows

if TYPE_CHECKING:
    pass

CHURN_SCORES = f"{GOLD}.churn_scores"
CHURN_SCORES_SCHEMA = pa.schema(
    [
        ("customer_id", pa.int64()),
        ("as_of_ts", pa.timestamp("us")),
        ("churn_probability", pa.float64()),
        ("model_name", pa.string()),
        ("model_version", pa.int64()),
        ("scored_at", pa.timestamp("us", tz="UTC")),
    ]
)
#: What makes two writes of one (model version, as-of date) the same: everything but `scored_at`.
SCORE_IDENTITY = [name for name in CHURN_SCORES_SCHEMA.names if name != "scored_at"]


def score_customers(settings: Settings | None = None) -> Scores:
    """Score every customer of the latest as-of date with the champion; write them to `gold.churn_scores`.

    One Iceberg commit replaces the rows of this model version and as-of date; when they hold the same
    probabilities already, nothing is committed (re-running changes nothing).

    Returns:
        a `Scores` (fields documented in `core/results.py`).

    Raises:
        NoChampionError: no version carries alias `champion`; nothing is written.
    """
    settings = settings or get_settings()
    pipeline, version = load_champion(settings)
    rows, features_snapshot = customer_features(settings)
    features = latest_rows(rows)
    probabilities = churn_probability(pipeline, features)
    as_of = features["as_of_ts"].iloc[0].to_pydatetime()
    scores = pa.table(
        {
            "customer_id": pa.array(features["customer_id"].to_numpy(), pa.int64()),
            "as_of_ts": pa.array([as_of] * len(features), pa.timestamp("us")),
            "churn_probability": pa.array(probabilities, pa.float64()),
            "model_name": pa.array([settings.model_name] * len(features), pa.string()),
            "model_version": pa.array([int(version)] * len(features), pa.int64()),
            "scored_at": pa.array([datetime.now(UTC)] * len(features), pa.timestamp("us", tz="UTC")),
        },
        schema=CHURN_SCORES_SCHEMA,
    )
    table = ensure_table(get_catalog(settings), CHURN_SCORES, CHURN_SCORES_SCHEMA)
    committed = replace_rows(
        table, scores, model_rows(settings.model_name, version, as_of), same_on=SCORE_IDENTITY
    )
    table = table.refresh()
    return Scores(
        table=CHURN_SCORES,
        snapshot_id=table.current_snapshot().snapshot_id,
        committed=committed,
        model_name=settings.model_name,
        model_version=int(version),
        as_of=as_of.isoformat(),
        customers=len(features),
        mean_probability=float(probabilities.mean()),
        features_snapshot_id=features_snapshot,
    )
