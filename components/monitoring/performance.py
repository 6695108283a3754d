"""Quality step: how good past predictions were, once the 30-day churn window after them has closed.

For every as-of date that `gold.churn_labels` has labels for, the predictions made for that date are
compared with what then happened: the batch scores of `gold.churn_scores` and the online answers of
`bronze.prediction_log` (keyed by the as-of date of the features they were scored on), per model version,
source and role. Online, a customer asked for many times on one as-of date by one version counts once (the
same features give the same answer), so frequent callers do not outweigh the rest. Each group's realised
ROC AUC, PR AUC, Brier score and calibration error go to `gold.model_performance` beside the holdout figures
the version was promoted on; a group whose ROC AUC fell more than `policy.quality_max_roc_auc_drop` below
its holdout figure, on at least `MIN_JUDGED` predictions of both outcomes, is degraded and alerts once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from components.core.alerts import AlertKind, notify
from components.core.catalog import get_catalog, read_columns
from components.core.model.metrics import classification_metrics
from components.core.model.registry import registered_version, tracking_client
from components.core.results import Performance
from components.core.settings import BRONZE, GOLD, Settings, get_settings
from components.core.tables import ensure_table, replace_rows

log = logging.getLogger(__name__)

MODEL_PERFORMANCE = f"{GOLD}.model_performance"
LABELS, SCORES, PREDICTION_LOG = f"{GOLD}.churn_labels", f"{GOLD}.churn_scores", f"{BRONZE}.prediction_log"
#: Fewest labelled predictions, of both outcomes, on which a group can be called degraded.
MIN_JUDGED = 30
#: The holdout metrics a version's training run logged, and their columns here.
HOLDOUT = {"roc_auc": "holdout_roc_auc", "pr_auc": "holdout_pr_auc", "brier_score": "holdout_brier_score"}
MODEL_PERFORMANCE_SCHEMA = pa.schema(
    [
        ("as_of_ts", pa.timestamp("us")),
        ("model_name", pa.string()),
        ("model_version", pa.int64()),
        ("source", pa.string()),
        ("role", pa.string()),
        ("predictions", pa.int64()),
        ("churned", pa.int64()),
        ("mean_probability", pa.float64()),
        ("churn_rate", pa.float64()),
        ("roc_auc", pa.float64()),
        ("pr_auc", pa.float64()),
        ("brier_score", pa.float64()),
        ("calibration_error", pa.float64()),
        ("holdout_roc_auc", pa.float64()),
        ("holdout_pr_auc", pa.float64()),
        ("holdout_brier_score", pa.float64()),
        ("roc_auc_drop", pa.float64()),
        ("is_degraded", pa.bool_()),
        ("measured_at", pa.timestamp("us", tz="UTC")),
    ]
)
#: What makes two writes the same: everything but `measured_at`.
PERFORMANCE_IDENTITY = [name for name in MODEL_PERFORMANCE_SCHEMA.names if name != "measured_at"]
_GROUP = ["as_of_ts", "model_name", "model_version", "source", "role"]


def _batch(settings: Settings) -> pd.DataFrame:
    columns = ["customer_id", "as_of_ts", "churn_probability", "model_name", "model_version"]
    scores = read_columns(SCORES, columns, settings)
    if scores is None:
        return pd.DataFrame(columns=[*_GROUP, "customer_id", "probability"])
    frame = scores.to_pandas().rename(columns={"churn_probability": "probability"})
    return frame.assign(source="batch", role="champion")


#: The prediction log's columns the quality step, the shadow comparison and promotion read (once, for both
#: of the step's uses).
_LOGGED = ["request_id", "logged_at", "customer_id", "features_as_of", "probability", "known"]
_LOGGED += ["model_name", "model_version", "role"]


def logged_answers(settings: Settings) -> pd.DataFrame | None:
    """The prediction log's columns the monitoring reads, or None when there is no log."""
    logged = read_columns(PREDICTION_LOG, _LOGGED, settings)
    return None if logged is None else logged.to_pandas()


@dataclass(frozen=True)
class Observations:
    """What a monitoring check compares, read once for the quality step and promotion on the shadow."""

    #: the prediction log's answers (`logged_answers`), None when there is no log
    logged: pd.DataFrame | None
    #: `gold.churn_labels`: customer, as-of date, whether they churned; None before the first labels
    labels: pd.DataFrame | None


def observe(settings: Settings) -> Observations:
    """Read the prediction log's answers and the labels known now."""
    labels = read_columns(LABELS, ["customer_id", "as_of_ts", "is_churned"], settings)
    return Observations(logged_answers(settings), None if labels is None else labels.to_pandas())


def shadow_pairs(logged: pd.DataFrame) -> pd.DataFrame:
    """The champion's and the challenger's answers to the same request and customer (both known), one row
    per pair: the champion's columns, and the challenger's suffixed `_challenger`."""
    frame = logged[logged["known"]]
    champion, challenger = (frame[frame["role"] == role] for role in ("champion", "challenger"))
    return champion.merge(challenger, on=["request_id", "customer_id"], suffixes=("", "_challenger"))


def _online(logged: pd.DataFrame | None) -> pd.DataFrame:
    columns = ["customer_id", "features_as_of", "probability", "model_name", "model_version", "role"]
    if logged is None:
        return pd.DataFrame(columns=[*_GROUP, "customer_id", "probability"])
    frame = logged[logged["known"] & logged["features_as_of"].notna() & logged["model_version"].notna()]
    frame = frame.sort_values("logged_at").drop_duplicates(
        ["customer_id", "features_as_of", "model_name", "model_version", "role"], keep="last"
    )
    frame = frame.rename(columns={"features_as_of": "as_of_ts"})[columns[:1] + ["as_of_ts", *columns[2:]]]
    return frame.assign(model_version=frame["model_version"].astype("int64"), source="online")


def shadow_comparison(settings: Settings, logged: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """The challenger's logged answers beside the champion's on the same requests and customers (both
    known), or None when the log holds no challenger answer.

    Args:
        settings: where the prediction log is.
        logged: the log as `logged_answers` read it already (read here when not given).
    """
    logged = logged_answers(settings) if logged is None else logged
    if logged is None:
        return None
    pairs = shadow_pairs(logged)
    if pairs.empty:
        return None
    ours, theirs = pairs["probability"].to_numpy(), pairs["probability_challenger"].to_numpy()

    def spread(values: np.ndarray, versions: pd.Series) -> dict[str, Any]:
        p10, p50, p90 = np.quantile(values, [0.1, 0.5, 0.9]).tolist()
        versions_seen = sorted(versions.unique().tolist())
        return {"versions": versions_seen, "mean": float(values.mean()), "p10": p10, "p50": p50, "p90": p90}

    return {
        "pairs": len(pairs),
        "agreement": float(np.mean((ours >= 0.5) == (theirs >= 0.5))),
        "mean_abs_difference": float(np.mean(np.abs(ours - theirs))),
        "champion": spread(ours, pairs["model_version"]),
        "challenger": spread(theirs, pairs["model_version_challenger"]),
    }


def _holdout(settings: Settings, versions: list[int]) -> dict[int, dict[str, float]]:
    """The holdout metrics each version's training run logged ({} for a version without a run)."""
    client = tracking_client(settings)
    figures: dict[int, dict[str, float]] = {}
    for version in versions:
        try:
            metrics = client.get_run(
                registered_version(client, settings.model_name, version).run_id
            ).data.metrics
        except Exception:  # noqa: BLE001 - a version deleted from the registry has no holdout figures
            log.warning("no holdout metrics for %s version %s", settings.model_name, version)
            metrics = {}
        figures[version] = {column: metrics.get(name) for name, column in HOLDOUT.items()}
    return figures


def _measure(group: pd.DataFrame) -> dict[str, Any]:
    y = group["is_churned"].astype(int).to_numpy()
    p = group["probability"].astype("float64").to_numpy()
    both = len(set(y.tolist())) == 2
    metrics = classification_metrics(y, p) if both else {}
    return {
        "predictions": len(group),
        "churned": int(y.sum()),
        "mean_probability": float(p.mean()),
        "churn_rate": float(y.mean()),
        "roc_auc": metrics.get("roc_auc"),
        "pr_auc": metrics.get("pr_auc"),
        "brier_score": float(np.mean((p - y) ** 2)),
        "calibration_error": metrics.get("ece"),
    }


def measure_performance(
    settings: Settings | None = None, observed: Observations | None = None
) -> Performance:
    """Compare past predictions with the labels known now; write `gold.model_performance` (all of it,
    one commit; none when the figures are the same as stored) and alert on a newly degraded group.

    Args:
        settings: the profile's settings; the default profile's when None.
        observed: the log and the labels as `observe` read them already (read here when not given).

    Returns:
        a `Performance` (fields documented in `core/results.py`).
    """
    settings = settings or get_settings()
    observed = observed or observe(settings)
    labels, logged = observed.labels, observed.logged
    threshold = settings.policy.quality_max_roc_auc_drop
    sources = [frame for frame in (_batch(settings), _online(logged)) if not frame.empty]
    predictions = pd.concat(sources, ignore_index=True) if sources else pd.DataFrame()
    records: list[dict[str, Any]] = []
    if labels is not None and not predictions.empty:
        joined = predictions.merge(labels, on=["customer_id", "as_of_ts"], how="inner")
        joined = joined[joined["model_name"] == settings.model_name]
        holdout = _holdout(settings, sorted({int(v) for v in joined["model_version"].unique()}))
        now = datetime.now(UTC)
        for key, group in joined.groupby(_GROUP, sort=True):
            record = dict(zip(_GROUP, key, strict=True)) | _measure(group) | holdout[int(key[2])]
            record["as_of_ts"] = pd.Timestamp(record["as_of_ts"]).to_pydatetime()
            drop = None
            if record["roc_auc"] is not None and record["holdout_roc_auc"] is not None:
                drop = record["holdout_roc_auc"] - record["roc_auc"]
            judged = min(record["churned"], record["predictions"] - record["churned"]) > 0
            record["roc_auc_drop"] = drop
            record["is_degraded"] = bool(
                drop is not None and drop > threshold and record["predictions"] >= MIN_JUDGED and judged
            )
            record["measured_at"] = now
            records.append(record)
    data = pa.Table.from_pylist(records, schema=MODEL_PERFORMANCE_SCHEMA)
    table = ensure_table(get_catalog(settings), MODEL_PERFORMANCE, MODEL_PERFORMANCE_SCHEMA)
    previous = {_key(r) for r in table.scan(row_filter=_degraded()).to_arrow().to_pylist()}
    committed = replace_rows(table, data, _everything(), same_on=PERFORMANCE_IDENTITY)
    degraded = [r for r in records if r["is_degraded"]]
    warning = None
    if degraded:
        worst = max(degraded, key=lambda r: r["roc_auc_drop"])
        warning = (
            f"quality drop: realised ROC AUC more than {threshold:g} below the holdout figure for "
            f"{len(degraded)} group(s); worst: version {worst['model_version']} {worst['source']} at "
            f"{worst['as_of_ts']:%Y-%m-%d}, {worst['roc_auc']:.3f} against {worst['holdout_roc_auc']:.3f} "
            f"on {worst['predictions']} predictions"
        )
        log.warning(warning)
        new = [r for r in degraded if _key(r) not in previous]
        if committed and new:  # newly degraded groups; the same figures again do not alert twice
            notify(
                settings,
                AlertKind.QUALITY,
                warning,
                groups=[
                    {
                        "model_version": r["model_version"],
                        "source": r["source"],
                        "role": r["role"],
                        "as_of": r["as_of_ts"].date().isoformat(),
                        "roc_auc": round(r["roc_auc"], 4),
                        "holdout_roc_auc": round(r["holdout_roc_auc"], 4),
                    }
                    for r in new
                ],
            )
    return Performance(
        table=MODEL_PERFORMANCE,
        snapshot_id=table.refresh().current_snapshot().snapshot_id,
        committed=committed,
        max_roc_auc_drop=threshold,
        groups=[{k: _plain(v) for k, v in r.items() if k != "measured_at"} for r in records],
        degraded=[_label(r) for r in degraded],
        warning=warning,
        shadow=shadow_comparison(settings, logged),
    )


def _key(record: dict[str, Any]) -> tuple:
    return tuple(_plain(record[name]) for name in _GROUP)


def _label(record: dict[str, Any]) -> str:
    return (
        f"version {record['model_version']} {record['source']} {record['role']} {record['as_of_ts']:%Y-%m-%d}"
    )


def _plain(value: Any) -> Any:
    """Timestamps as ISO text (a step result is JSON)."""
    return value.isoformat() if isinstance(value, datetime) else value


def _degraded() -> Any:
    from pyiceberg.expressions import EqualTo

    return EqualTo("is_degraded", True)


def _everything() -> Any:
    from pyiceberg.expressions import AlwaysTrue

    return AlwaysTrue()
