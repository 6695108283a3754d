"""The quality step on a real champion: past batch scores and logged online answers against the labels known
now, per as-of date, version and source, beside the holdout figures; a quality drop alerts once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from components.core.settings import Settings

MODEL_NAME = "churn_propensity_quality"


@dataclass(frozen=True)
class Labelled:
    settings: Settings
    frame: pd.DataFrame
    pipeline: object
    version: int
    holdout: dict[str, float]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Labelled]:
    """The synthetic customers in gold with their labels, and a champion trained and promoted on them."""
    from components.core.model.registry import load_champion
    from components.evaluation.evaluate import evaluate_and_promote
    from components.training.train import train_model
    from tests.components.conftest import write_synthetic_gold
    from tests.components.test_train import local_mlflow_settings, synthetic_training_frame

    with pytest.MonkeyPatch.context() as patch:
        settings = local_mlflow_settings(tmp_path_factory, patch, MODEL_NAME)
        frame = synthetic_training_frame()
        write_synthetic_gold(settings, frame)
        trained = train_model(frame, settings)
        evaluate_and_promote(frame, trained.model_version, settings)
        pipeline, version = load_champion(settings)
        yield Labelled(settings, frame, pipeline, int(version), trained.metrics)


def _rows_of(labelled: Labelled, as_of: pd.Timestamp) -> pd.DataFrame:
    return labelled.frame[labelled.frame["as_of_ts"] == as_of]


def _probabilities(labelled: Labelled, rows: pd.DataFrame) -> np.ndarray:
    from components.core.model.pipeline import churn_probability

    return np.asarray(churn_probability(labelled.pipeline, rows))


def _write_scores(labelled: Labelled, as_of: pd.Timestamp) -> pd.DataFrame:
    """Batch scores of every customer at `as_of`, as the score step writes them."""
    from components.core.catalog import get_catalog
    from components.core.tables import ensure_table
    from components.scoring.score import CHURN_SCORES, CHURN_SCORES_SCHEMA

    rows = _rows_of(labelled, as_of)
    scores = pd.DataFrame(
        {
            "customer_id": rows["customer_id"].to_numpy(),
            "as_of_ts": as_of.tz_convert(None),
            "churn_probability": _probabilities(labelled, rows),
            "model_name": MODEL_NAME,
            "model_version": labelled.version,
            "scored_at": pd.Timestamp.now(tz="UTC"),
        }
    )
    table = ensure_table(get_catalog(labelled.settings), CHURN_SCORES, CHURN_SCORES_SCHEMA)
    table.append(pa.Table.from_pandas(scores, schema=CHURN_SCORES_SCHEMA, preserve_index=False))
    return scores.merge(rows[["customer_id", "is_churned"]], on="customer_id")


def _log_online(
    labelled: Labelled,
    as_of: pd.Timestamp,
    customers: pd.DataFrame,
    probabilities,
    role: str = "champion",
    version: int | None = None,
) -> None:
    """Online answers for `customers` at `as_of`, each asked twice, loaded into the prediction log."""
    from components.core.prediction_log import SEALED_SUFFIX
    from components.ingestion.prediction_log import load_prediction_log
    from testing.predictions import answered

    ids = customers["customer_id"].astype(int).tolist()
    stamp = as_of.tz_convert(None).isoformat()
    lines = b"".join(
        answered(
            f"{as_of:%Y%m%d}-{attempt}",
            ids,
            model_name=MODEL_NAME,
            model_version=str(version or labelled.version),
            role=role,
            probabilities=[float(p) for p in probabilities],
            features_as_of=[stamp] * len(ids),
        ).lines()
        for attempt in range(2)
    )
    sealed = Path(labelled.settings.prediction_log_uri)
    sealed.mkdir(parents=True, exist_ok=True)
    (sealed / f"online-{as_of:%Y%m%d}-{role}{SEALED_SUFFIX}").write_bytes(lines)
    assert load_prediction_log(labelled.settings).rows == 2 * len(ids)


def _groups(result) -> dict[tuple, dict]:
    return {(g["as_of_ts"][:10], g["source"], g["role"]): g for g in result.groups}


def test_realised_quality_per_as_of_date_version_and_source(labelled: Labelled) -> None:
    from components.monitoring.performance import measure_performance

    dates = sorted(labelled.frame["as_of_ts"].unique())
    first, second = pd.Timestamp(dates[-3]), pd.Timestamp(dates[-2])
    batch = _write_scores(labelled, first)
    online_rows = _rows_of(labelled, second).head(50)
    online_p = _probabilities(labelled, online_rows)
    _log_online(labelled, second, online_rows, online_p)

    result = measure_performance(labelled.settings)

    groups = _groups(result)
    assert set(groups) == {
        (f"{first:%Y-%m-%d}", "batch", "champion"),
        (f"{second:%Y-%m-%d}", "online", "champion"),
    }
    on_batch = groups[(f"{first:%Y-%m-%d}", "batch", "champion")]
    y, p = batch["is_churned"].astype(int), batch["churn_probability"]
    assert on_batch["predictions"] == len(batch) and on_batch["churned"] == int(y.sum())
    assert on_batch["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert on_batch["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert on_batch["brier_score"] == pytest.approx(float(np.mean((p - y) ** 2)))
    assert on_batch["holdout_roc_auc"] == pytest.approx(labelled.holdout["roc_auc"])
    assert on_batch["roc_auc_drop"] == pytest.approx(labelled.holdout["roc_auc"] - on_batch["roc_auc"])
    online = groups[(f"{second:%Y-%m-%d}", "online", "champion")]
    assert online["predictions"] == 50, "a customer asked twice for one as-of date counts once"
    assert online["roc_auc"] == pytest.approx(roc_auc_score(online_rows["is_churned"].astype(int), online_p))
    assert not result.degraded and result.committed
    assert not measure_performance(labelled.settings).committed, "the same figures commit nothing"


def test_a_quality_drop_is_flagged_and_alerts_once(labelled: Labelled) -> None:
    from components.monitoring.performance import measure_performance

    dates = sorted(labelled.frame["as_of_ts"].unique())
    late = pd.Timestamp(dates[-1])
    rows = _rows_of(labelled, late)
    _log_online(labelled, late, rows, 1.0 - _probabilities(labelled, rows))  # answers that rank backwards
    alerts = Path(labelled.settings.alert_file)
    before = alerts.read_text().splitlines() if alerts.exists() else []

    result = measure_performance(labelled.settings)

    group = _groups(result)[(f"{late:%Y-%m-%d}", "online", "champion")]
    assert group["is_degraded"] and group["roc_auc"] < 0.5 < labelled.holdout["roc_auc"]
    assert result.degraded == [f"version {labelled.version} online champion {late:%Y-%m-%d}"]
    new = [json.loads(line) for line in alerts.read_text().splitlines()[len(before) :]]
    assert [alert["kind"] for alert in new] == ["quality"]
    assert new[0]["details"]["groups"][0]["as_of"] == f"{late:%Y-%m-%d}"
    measure_performance(labelled.settings)
    assert len(alerts.read_text().splitlines()) == len(before) + 1, "the same drop does not alert again"


def test_the_shadow_challenger_beside_the_champion_on_the_same_requests(labelled: Labelled) -> None:
    from components.monitoring.performance import shadow_comparison

    dates = sorted(labelled.frame["as_of_ts"].unique())
    as_of = pd.Timestamp(dates[-4])
    rows = _rows_of(labelled, as_of).head(40)
    champion = _probabilities(labelled, rows)
    challenger = np.clip(champion + np.where(np.arange(len(champion)) % 4 == 0, 0.5, 0.0), 0, 1)
    _log_online(labelled, as_of, rows, champion)
    _log_online(labelled, as_of, rows, challenger, role="challenger", version=labelled.version + 1)

    shadow = shadow_comparison(labelled.settings)

    assert shadow["pairs"] == 2 * len(rows), "each request's answers pair up (every customer asked twice)"
    same_side = np.mean((champion >= 0.5) == (challenger >= 0.5))
    assert shadow["agreement"] == pytest.approx(same_side)
    assert shadow["mean_abs_difference"] == pytest.approx(np.mean(np.abs(champion - challenger)))
    assert shadow["challenger"]["versions"] == [str(labelled.version + 1)]
    assert shadow["champion"]["p50"] == pytest.approx(np.quantile(np.tile(champion, 2), 0.5))
