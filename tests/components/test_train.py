"""Tests of the train step: time split, metrics, and a model logged and registered in a real MLflow."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.core.model.metrics import classification_metrics, expected_calibration_error
from components.core.model.pipeline import FEATURES, LABEL, NUMERIC_FEATURES, PRIOR_BASELINE
from components.core.model.split import (
    LABEL_HORIZON_DAYS,
    TrainingDataError,
    time_split,
    validate_training_frame,
)
from components.core.settings import Settings, get_settings
from components.training.train import fit_churn_model, train_model

TIERS = ("bronze", "silver", "gold", "platinum")
CATEGORIES = 6


def _customer_rows(rng: np.random.Generator, customer_id: int, n_weeks: int) -> list[tuple]:
    """Weekly as-of rows of one simulated customer: orders arrive at a personal rate until they lapse."""
    horizon = (n_weeks - 1) * 7 + LABEL_HORIZON_DAYS
    signup = rng.uniform(-365.0, horizon * 0.6)
    rate = rng.gamma(1.5, 1 / 20)
    lapse_at = signup + rng.exponential(300.0)
    times, t = [], signup
    while t <= horizon:
        t += rng.exponential(1 / rate if t < lapse_at else 1 / (rate * 0.05))
        times.append(t)
    times = np.array(times[:-1])
    amounts = rng.lognormal(3.5, 0.6, size=times.size)
    categories = rng.choice(CATEGORIES, size=times.size, p=rng.dirichlet(np.full(CATEGORIES, 0.6)))
    base_tier = int(rng.integers(0, len(TIERS)))
    rows = []
    for week in range(n_weeks):
        day = week * 7.0
        if signup > day:
            continue
        past = times < day
        last_90d = past & (times >= day - 90)
        spend_90d = np.bincount(categories[last_90d], weights=amounts[last_90d], minlength=CATEGORIES)
        tier = min(len(TIERS) - 1, base_tier + int(amounts[past].sum() > 1500))
        rows.append(
            {
                "customer_id": customer_id,
                "week": week,
                LABEL: not ((times > day) & (times <= day + LABEL_HORIZON_DAYS)).any(),
                "recency_days": day - times[past].max() if past.any() else np.nan,
                **{f"orders_{w}d": int((past & (times >= day - w)).sum()) for w in (7, 30, 90)},
                **{f"spend_{w}d_amount": amounts[past & (times >= day - w)].sum() for w in (7, 30, 90)},
                "avg_order_amount": amounts[past].mean() if past.any() else np.nan,
                "tenure_days": int(day - signup),
                "distinct_categories_90d": int((spend_90d > 0).sum()),
                "top_category_share_90d": spend_90d.max() / spend_90d.sum() if last_90d.any() else np.nan,
                "loyalty_tier": TIERS[tier],
                "loyalty_tier_rank": tier + 1,
            }
        )
    return rows


def synthetic_training_frame(n_customers: int = 80, n_weeks: int = 30, seed: int = 7) -> pd.DataFrame:
    """A training set shaped like the Feast one: weekly as-of dates, a label driven by recency/frequency.

    Each customer orders at a personal rate until an exponential lapse time, so churn follows from
    the same order history the features summarise; 80 customers x 30 weeks give about 2,000 rows.
    """
    rng = np.random.default_rng(seed)
    rows = [row for cid in range(1, n_customers + 1) for row in _customer_rows(rng, cid, n_weeks)]
    frame = pd.DataFrame(rows)
    frame.insert(
        1, "as_of_ts", pd.Timestamp("2024-03-04", tz="UTC") + pd.to_timedelta(frame.pop("week") * 7, "D")
    )
    frame.loc[frame.sample(frac=0.02, random_state=seed).index, "loyalty_tier"] = None
    return frame.sort_values(["as_of_ts", "customer_id"], ignore_index=True)


@pytest.fixture(scope="module")
def training_frame() -> pd.DataFrame:
    return synthetic_training_frame()


def local_mlflow_settings(
    tmp_path_factory: pytest.TempPathFactory, mp: pytest.MonkeyPatch, model_name: str
) -> Settings:
    """Local-profile settings with a temporary home and registered model `model_name`.

    The MLflow store (SQLite backend, file artifacts) is one per test session: migrating a new SQLite
    database takes seconds, so test modules share it and keep apart by model name.
    """
    for key in [k for k in os.environ if k.startswith("LAKEHOUSE_")]:
        mp.delenv(key)
    shared = tmp_path_factory.getbasetemp() / "mlflow"
    mp.setenv("LAKEHOUSE_HOME", str(tmp_path_factory.mktemp(model_name)))
    mp.setenv("LAKEHOUSE_MLFLOW_TRACKING_URI", f"sqlite:///{shared}/mlflow.db")
    mp.setenv("LAKEHOUSE_MLFLOW_ARTIFACT_ROOT", str(shared / "mlartifacts"))
    mp.setenv("LAKEHOUSE_MODEL_NAME", model_name)
    return get_settings("local")


@pytest.fixture(scope="module")
def mlflow_settings(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        yield local_mlflow_settings(tmp_path_factory, mp, "churn_propensity_train_test")


LINEAGE = {
    "data_hash": "md5:0123abcd",
    "gold_snapshot_ids": {"gold.customer_features": 11, "gold.churn_labels": 12},
    "dbt_invocation_id": "6f1c7a2e",
}


@pytest.fixture(scope="module")
def trained(training_frame, mlflow_settings) -> dict:
    """The default model trained on the synthetic frame and registered in the test MLflow."""
    return train_model(training_frame, mlflow_settings, lineage=LINEAGE)


def test_time_split_leaves_a_label_horizon_gap_before_the_holdout(training_frame):
    frame = validate_training_frame(training_frame)
    train, holdout, window = time_split(frame, holdout_weeks=8)

    as_of_dates = sorted(frame["as_of_ts"].unique())
    assert holdout["as_of_ts"].nunique() == 8
    assert window.holdout_start == as_of_dates[-8] and window.holdout_end == as_of_dates[-1]
    assert train["as_of_ts"].max() + pd.Timedelta(days=LABEL_HORIZON_DAYS) <= window.holdout_start
    assert train["as_of_ts"].max() <= window.train_cutoff
    # The four weekly as-of dates whose labels reach into the holdout window belong to neither side.
    dropped = frame[(frame["as_of_ts"] > window.train_cutoff) & (frame["as_of_ts"] < window.holdout_start)]
    assert dropped["as_of_ts"].nunique() == 4
    assert len(train) + len(holdout) + len(dropped) == len(frame)


def test_metrics_on_a_hand_computed_example():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    metrics = classification_metrics(y, p)
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert metrics["brier_score"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    # One row per bin: |0-0.1| + |0-0.4| + |1-0.35| + |1-0.8| over 4 rows.
    assert metrics["ece"] == pytest.approx(1.35 / 4)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0
    with pytest.raises(ValueError, match="both churned and retained"):
        classification_metrics(np.array([1, 1]), np.array([0.2, 0.9]))


def test_train_model_logs_and_registers_a_version(training_frame, trained, mlflow_settings):
    import mlflow
    from mlflow import MlflowClient

    result = trained
    assert result.model_version >= 1
    metrics = result.metrics
    assert 0.7 < metrics["roc_auc"] <= 1.0, metrics
    assert 0.0 < metrics["pr_auc"] <= 1.0 and 0.0 < metrics["log_loss"] < 0.69
    assert 0.0 <= metrics["brier_score"] < 0.25 and 0.0 <= metrics["ece"] < 0.2

    client = MlflowClient(mlflow_settings.mlflow_tracking_uri)
    version = client.get_model_version(mlflow_settings.model_name, str(result.model_version))
    assert version.run_id == result.run_id
    run = client.get_run(result.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "churn-propensity"
    assert run.info.artifact_uri.startswith(Path(mlflow_settings.mlflow_artifact_root).as_uri())
    for key in ("train_cutoff", "holdout_start", "holdout_end"):
        assert run.data.params[key] == result.holdout[key]
    assert run.data.params["model_type"] == "hist_gradient_boosting"
    assert int(run.data.params["train_rows"]) == result.train_rows
    assert run.data.metrics["roc_auc"] == pytest.approx(metrics["roc_auc"])
    assert run.data.tags["feature_service"] == "churn_v1"
    assert run.data.tags["dbt_invocation_id"] == "6f1c7a2e"
    assert json.loads(run.data.tags["gold_snapshot_ids"]) == LINEAGE["gold_snapshot_ids"]

    # Figures, importances and the two datasets are on the run.
    figures = {artifact.path for artifact in client.list_artifacts(result.run_id, "figures")}
    assert {f"figures/{name}.png" for name in ("roc", "precision_recall", "calibration")} <= figures
    assert {"figures/feature_importance.png", "figures/feature_importance.json"} <= figures
    assert set(result.feature_importance) == set(FEATURES)
    assert max(result.feature_importance.values()) > 0.01
    contexts = {d.tags[0].value: d.dataset.profile for d in run.inputs.dataset_inputs if d.tags}
    assert set(contexts) == {"training", "evaluation"}
    assert json.loads(contexts["evaluation"])["num_rows"] == result.holdout_rows
    roc = result.holdout_roc
    assert roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0 and len(roc["fpr"]) <= 101
    assert sum(map(sum, result.holdout_confusion_matrix)) == result.holdout_rows

    model_uri = result.model_uri
    signature = mlflow.models.get_model_info(model_uri).signature
    inputs = {spec.name: spec.type.name for spec in signature.inputs.inputs}
    assert list(inputs) == FEATURES
    assert all(spec.required for spec in signature.inputs.inputs)
    assert {inputs[c] for c in NUMERIC_FEATURES} == {"double"} and inputs["loyalty_tier"] == "string"
    requirements = Path(mlflow.artifacts.download_artifacts(f"{model_uri}/requirements.txt")).read_text()
    assert "scikit-learn==" in requirements and "numpy==" in requirements and "pandas==" in requirements

    # The registered model scores a frame of the 13 features, NULLs included.
    model = mlflow.sklearn.load_model(model_uri)
    request = training_frame[FEATURES].head(3).copy()
    request.loc[request.index[0], ["recency_days", "loyalty_tier"]] = [None, None]
    proba = model.predict_proba(request)[:, 1]
    assert proba.shape == (3,) and ((proba > 0) & (proba < 1)).all()


def test_training_is_deterministic_and_ignores_row_order(training_frame, trained):
    import mlflow

    refit = fit_churn_model(training_frame.sample(frac=1.0, random_state=3))
    assert refit.metrics == trained.metrics
    registered = mlflow.sklearn.load_model(trained.model_uri)
    X = refit.holdout[FEATURES]
    np.testing.assert_array_equal(refit.pipeline.predict_proba(X), registered.predict_proba(X))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda df: df.drop(columns=["orders_30d", "loyalty_tier"]),
            "missing column.*orders_30d, loyalty_tier",
        ),
        (lambda df: df.assign(is_churned=True), "only one class"),
        (lambda df: df.assign(is_churned="yes"), "must be boolean"),
        (lambda df: df[df["as_of_ts"] >= df["as_of_ts"].max() - pd.Timedelta(weeks=12)], "as-of date"),
        (lambda df: df.iloc[0:0], "no rows"),
        (lambda df: pd.concat([df, df.head(2)]), "duplicate"),
        (lambda df: df.assign(as_of_ts=df["as_of_ts"].astype(str)), "datetime"),
    ],
    ids=[
        "missing-columns",
        "single-class",
        "non-boolean-label",
        "too-few-dates",
        "empty",
        "duplicates",
        "as-of-text",
    ],
)
def test_bad_training_sets_fail_before_anything_is_logged(training_frame, mlflow_settings, change, message):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_settings.mlflow_tracking_uri)

    def logged() -> tuple[int, int]:
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(experiments) if experiments else []
        return len(runs), len(client.search_model_versions(f"name='{mlflow_settings.model_name}'"))

    before = logged()
    with pytest.raises(TrainingDataError, match=message):
        train_model(change(training_frame), mlflow_settings)
    assert logged() == before


def test_unknown_model_type_is_refused(training_frame):
    with pytest.raises(ValueError, match="unknown model_type 'xgboost'"):
        fit_churn_model(training_frame, model_type="xgboost")
    assert fit_churn_model(training_frame, model_type=PRIOR_BASELINE).metrics["roc_auc"] == 0.5
