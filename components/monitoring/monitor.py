"""Monitor step: the latest as-of date's features and scores against the champion's training window."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from components.core.alerts import AlertKind, notify
from components.core.catalog import get_catalog
from components.core.feature_contract import EXPECTED_DRIFT
from components.core.feature_store import customer_features, latest_rows
from components.core.model.drift import ColumnDrift, column_drift
from components.core.model.pipeline import CATEGORICAL_FEATURES, FEATURES, churn_probability
from components.core.model.registry import load_champion, registered_version, tracking_client
from components.core.results import Drift
from components.core.settings import GOLD, Settings, get_settings
from components.core.tables import ensure_table, model_rows, replace_rows

log = logging.getLogger(__name__)

FEATURE_DRIFT = f"{GOLD}.feature_drift"
#: The column name the score's own drift is recorded under (kind `score`).
SCORE_COLUMN = "churn_probability"
FEATURE_DRIFT_SCHEMA = pa.schema(
    [
        ("as_of_ts", pa.timestamp("us")),
        ("model_name", pa.string()),
        ("model_version", pa.int64()),
        ("column_name", pa.string()),
        ("kind", pa.string()),
        ("psi", pa.float64()),
        ("ks_statistic", pa.float64()),
        ("null_share_reference", pa.float64()),
        ("null_share_current", pa.float64()),
        ("mean_reference", pa.float64()),
        ("mean_current", pa.float64()),
        ("reference_rows", pa.int64()),
        ("current_rows", pa.int64()),
        ("reference_start", pa.timestamp("us")),
        ("reference_end", pa.timestamp("us")),
        ("psi_threshold", pa.float64()),
        ("is_drifted", pa.bool_()),
        ("monitored_at", pa.timestamp("us", tz="UTC")),
        ("drift_expected", pa.bool_()),
    ]
)
#: What makes two writes of one (model version, as-of date) the same: everything but `monitored_at`.
DRIFT_IDENTITY = [name for name in FEATURE_DRIFT_SCHEMA.names if name != "monitored_at"]


def _training_window(settings: Settings, version: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last training as-of date of a model version, from its MLflow run (naive UTC)."""
    client = tracking_client(settings)
    params = client.get_run(registered_version(client, settings.model_name, version).run_id).data.params
    missing = [key for key in ("train_start", "train_end") if key not in params]
    if missing:
        raise ValueError(
            f"the run of {settings.model_name} version {version} has no training window "
            f"(missing params {', '.join(missing)}): it was not trained by the train step"
        )
    return tuple(pd.Timestamp(params[key]).tz_convert(None) for key in ("train_start", "train_end"))


def drift_table(
    reference: pd.DataFrame, current: pd.DataFrame, reference_scores: Any, current_scores: Any
) -> list[tuple[str, ColumnDrift]]:
    """(kind, drift) of every feature of the model and of its score, reference window against current."""
    drifts = [
        (
            "categorical" if name in CATEGORICAL_FEATURES else "numeric",
            column_drift(name, reference[name], current[name], name in CATEGORICAL_FEATURES),
        )
        for name in FEATURES
    ]
    score = column_drift(SCORE_COLUMN, pd.Series(reference_scores), pd.Series(current_scores), False)
    return [*drifts, ("score", score)]


def monitor_drift(settings: Settings | None = None) -> Drift:
    """Compare the latest as-of date with the champion's training window; write `gold.feature_drift`.

    Per feature and for the champion's score: PSI, the KS statistic, NULL shares and means (see
    `components.core.model.drift`). A column whose PSI exceeds `settings.policy.drift_psi_threshold` is
    drifted: the step logs a warning naming it and still finishes. A feature that drifts by construction
    (`drifts_by_construction` in the feature contract: tenure grows every day) has its figures recorded with
    `drift_expected` and is never counted as drifted. One Iceberg commit replaces the rows of
    this model version and as-of date; the same figures again commit nothing.

    Returns:
        a `Drift` (fields documented in `core/results.py`).

    Raises:
        NoChampionError: no version carries alias `champion`.
    """
    settings = settings or get_settings()
    pipeline, version = load_champion(settings)
    start, end = _training_window(settings, version)
    rows, _ = customer_features(settings)
    frame = rows.to_pandas()
    reference = frame[(frame["as_of_ts"] >= start) & (frame["as_of_ts"] <= end)]
    if reference.empty:
        raise ValueError(
            f"gold.customer_features has no rows in the training window {start:%Y-%m-%d}..{end:%Y-%m-%d} "
            f"of {settings.model_name} version {version}"
        )
    current = latest_rows(rows)
    as_of = current["as_of_ts"].iloc[0].to_pydatetime()
    drifts = drift_table(
        reference, current, churn_probability(pipeline, reference), churn_probability(pipeline, current)
    )
    threshold = settings.policy.drift_psi_threshold
    now = datetime.now(UTC)
    records = [
        {
            **{k: v for k, v in drift.as_dict().items() if k not in ("column", "kind")},
            "as_of_ts": as_of,
            "model_name": settings.model_name,
            "model_version": int(version),
            "column_name": drift.column,
            "kind": kind,
            "reference_start": start.to_pydatetime(),
            "reference_end": end.to_pydatetime(),
            "psi_threshold": threshold,
            "is_drifted": drift.psi > threshold and drift.column not in EXPECTED_DRIFT,
            "drift_expected": drift.column in EXPECTED_DRIFT,
            "monitored_at": now,
        }
        for kind, drift in drifts
    ]
    data = pa.Table.from_pylist(records, schema=FEATURE_DRIFT_SCHEMA)
    table = ensure_table(get_catalog(settings), FEATURE_DRIFT, FEATURE_DRIFT_SCHEMA)
    committed = replace_rows(
        table, data, model_rows(settings.model_name, version, as_of), same_on=DRIFT_IDENTITY
    )
    drifted = [r["column_name"] for r in records if r["is_drifted"]]
    warning = None
    if drifted:
        worst = max(records, key=lambda r: r["psi"])
        warning = (
            f"drift at {as_of:%Y-%m-%d} against the training window {start:%Y-%m-%d}..{end:%Y-%m-%d}: "
            f"PSI above {threshold:g} for {', '.join(drifted)} (largest {worst['column_name']} "
            f"{worst['psi']:.3f})"
        )
        log.warning(warning)
        if committed:  # new figures; the same ones again (a re-run) do not alert twice
            psi = {r["column_name"]: round(r["psi"], 4) for r in records if r["is_drifted"]}
            notify(settings, AlertKind.DRIFT, warning, model_version=int(version), as_of=as_of, psi=psi)
    return Drift(
        table=FEATURE_DRIFT,
        snapshot_id=table.refresh().current_snapshot().snapshot_id,
        committed=committed,
        model_version=int(version),
        as_of=as_of.isoformat(),
        reference_start=start.isoformat(),
        reference_end=end.isoformat(),
        psi_threshold=threshold,
        drifted=drifted,
        max_feature_psi=max(r["psi"] for r in records if r["kind"] != "score"),
        score_psi=next(r["psi"] for r in records if r["kind"] == "score"),
        columns=[{k: v for k, v in r.items() if k != "monitored_at"} for r in records],
        warning=warning,
    )
