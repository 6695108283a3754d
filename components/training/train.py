"""Train step: fit the churn model on early as-of dates, score the holdout, log and register it in MLflow."""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from components.core.model.figures import log_holdout_figures
from components.core.model.metrics import classification_metrics, confusion_at, roc_points
from components.core.model.pipeline import (
    DEFAULT_MODEL_TYPE,
    FEATURES,
    HYPERPARAMETERS,
    LABEL,
    RANDOM_STATE,
    SKOPS_TRUSTED_TYPES,
    build_pipeline,
    churn_probability,
    model_input,
    model_threads,
)
from components.core.model.registry import ensure_experiment, model_requirements, tracking_client
from components.core.model.split import (
    HOLDOUT_WEEKS,
    LABEL_HORIZON_DAYS,
    HoldoutWindow,
    time_split,
    training_set_hash,
    validate_training_frame,
)
from components.core.results import TrainedModel
from components.core.settings import FEATURE_SERVICE, Settings, get_settings

MODEL_ARTIFACT_NAME = "model"
SIGNATURE_ROWS = 5


@dataclass(frozen=True)
class FittedModel:
    """A fitted pipeline with the split it was fitted on and its holdout metrics."""

    pipeline: Pipeline
    model_type: str
    window: HoldoutWindow
    train: pd.DataFrame
    holdout: pd.DataFrame
    metrics: dict[str, float]
    fit_seconds: float
    training_set_hash: str
    holdout_proba: np.ndarray
    training_set_rows: int


def fit_churn_model(
    training_df: pd.DataFrame, model_type: str = DEFAULT_MODEL_TYPE, holdout_weeks: int = HOLDOUT_WEEKS
) -> FittedModel:
    """Validate and split a training set, fit the pipeline on the train side, score the holdout.

    Deterministic: the same rows (in any order) give the same model and metrics.
    """
    pipeline = build_pipeline(model_type)
    frame = validate_training_frame(training_df)
    train, holdout, window = time_split(frame, holdout_weeks, LABEL_HORIZON_DAYS)
    started = time.perf_counter()
    with model_threads():
        pipeline.fit(model_input(train), train[LABEL].to_numpy())
    fit_seconds = time.perf_counter() - started
    proba = churn_probability(pipeline, holdout)
    metrics = classification_metrics(holdout[LABEL].to_numpy(), proba)
    return FittedModel(
        pipeline,
        model_type,
        window,
        train,
        holdout,
        metrics,
        fit_seconds,
        training_set_hash(frame),
        proba,
        len(frame),
    )


#: Permutation importance scores this many held-out rows at most (a seeded sample): enough for a stable
#: ranking, and the cost stays flat as the data grows (13 features x `repeats` predictions of the sample).
IMPORTANCE_ROWS = 50_000


def permutation_importances(fitted: FittedModel, repeats: int = 3) -> dict[str, float]:
    """Mean holdout ROC AUC lost when each feature is shuffled (`repeats` shuffles, seeded), on at most
    `IMPORTANCE_ROWS` held-out rows."""
    from sklearn.inspection import permutation_importance

    rows = fitted.holdout
    if len(rows) > IMPORTANCE_ROWS:
        rows = rows.sample(n=IMPORTANCE_ROWS, random_state=RANDOM_STATE)
    with model_threads():
        found = permutation_importance(
            fitted.pipeline,
            model_input(rows),
            rows[LABEL].to_numpy(),
            scoring="roc_auc",
            n_repeats=repeats,
            random_state=RANDOM_STATE,
        )
    return {
        name: round(float(value), 6) for name, value in zip(FEATURES, found.importances_mean, strict=True)
    }


def _log_datasets(fitted: FittedModel) -> None:
    """The training and held-out rows as MLflow dataset inputs of the active run (schema, digest, counts)."""
    import mlflow

    splits = ((fitted.train, "training", "training"), (fitted.holdout, "holdout", "evaluation"))
    for frame, name, context in splits:
        with warnings.catch_warnings():  # the schema is a description here, not an input contract
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column")
            dataset = mlflow.data.from_pandas(frame, targets=LABEL, name=f"{FEATURE_SERVICE}-{name}")
            mlflow.log_input(dataset, context=context)


def _run_params(fitted: FittedModel, holdout_weeks: int) -> dict[str, Any]:
    train, holdout = fitted.train, fitted.holdout
    return {
        "model_type": fitted.model_type,
        **{f"clf_{k}": v for k, v in HYPERPARAMETERS[fitted.model_type].items()},
        "features": ",".join(FEATURES),
        "holdout_weeks": holdout_weeks,
        "training_set_rows": fitted.training_set_rows,
        "label_horizon_days": LABEL_HORIZON_DAYS,
        **fitted.window.to_params(),
        "train_start": train["as_of_ts"].min().isoformat(),
        "train_end": train["as_of_ts"].max().isoformat(),
        "train_rows": len(train),
        "train_as_of_dates": train["as_of_ts"].nunique(),
        "train_churn_rate": round(float(train[LABEL].mean()), 6),
        "holdout_rows": len(holdout),
        "holdout_as_of_dates": holdout["as_of_ts"].nunique(),
        "holdout_churn_rate": round(float(holdout[LABEL].mean()), 6),
    }


def _model_signature(sample: pd.DataFrame, sample_proba) -> Any:
    """The signature inferred from a sample, with all 13 columns required (present; values may be null).

    Inference marks a column optional when the sample happens to hold a null, which would make the
    signature depend on the rows sampled.
    """
    from mlflow.models import infer_signature
    from mlflow.types.schema import ColSpec, Schema

    signature = infer_signature(sample, sample_proba)
    signature.inputs = Schema([ColSpec(c.type, c.name, required=True) for c in signature.inputs.inputs])
    return signature


def _lineage_tags(lineage: dict[str, Any], frame_hash: str) -> dict[str, str]:
    tags = {"feature_service": FEATURE_SERVICE, "training_set_hash": frame_hash}
    for key, value in lineage.items():
        if value is None:
            continue
        tags[key] = (
            json.dumps(value, sort_keys=True) if isinstance(value, dict | list | tuple) else str(value)
        )
    return tags


def train_model(
    training_df: pd.DataFrame,
    settings: Settings | None = None,
    lineage: dict[str, Any] | None = None,
    model_type: str = DEFAULT_MODEL_TYPE,
    holdout_weeks: int = HOLDOUT_WEEKS,
) -> TrainedModel:
    """Fit the churn model, log an MLflow run in `churn-propensity` and register it as `settings.model_name`.

    Args:
        training_df: customer_id, as_of_ts, is_churned and the 13 features (the Feast training set).
        settings: the profile's settings (default: `get_settings()`).
        lineage: run tags, e.g. `data_hash`, `gold_snapshot_ids` (dict, stored as JSON),
            `dbt_invocation_id`, `feature_service` (default `churn_v1`).
        model_type: one of `model.pipeline.MODEL_TYPES`; `prior_baseline` is a deliberately weak reference.
        holdout_weeks: weeks of the latest as-of dates held out for evaluation.

    Returns:
        a `TrainedModel` (fields documented in `core/results.py`). The MLflow run also holds both
        datasets (MLflow inputs) and the figures (`figures/`).

    Raises:
        TrainingDataError: the training set is malformed or too small to split (the message says why).
    """
    import mlflow

    settings = settings or get_settings()
    fitted = fit_churn_model(training_df, model_type, holdout_weeks)
    client = tracking_client(settings)
    experiment_id = ensure_experiment(client, settings)
    sample = model_input(fitted.holdout.head(SIGNATURE_ROWS))
    with model_threads():
        sample_proba = fitted.pipeline.predict_proba(sample)
    tags = _lineage_tags(lineage or {}, fitted.training_set_hash)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{model_type}", tags=tags) as run:
        mlflow.log_params(_run_params(fitted, holdout_weeks))
        mlflow.log_metrics({**fitted.metrics, "fit_seconds": fitted.fit_seconds})
        _log_datasets(fitted)
        importances = permutation_importances(fitted)
        log_holdout_figures(
            client, run.info.run_id, fitted.holdout[LABEL].to_numpy(), fitted.holdout_proba, importances
        )
        info = mlflow.sklearn.log_model(
            fitted.pipeline,
            name=MODEL_ARTIFACT_NAME,
            signature=_model_signature(sample, sample_proba),
            input_example=sample,
            pip_requirements=model_requirements(),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            registered_model_name=settings.model_name,
        )
    version = int(info.registered_model_version)
    return TrainedModel(
        run_id=run.info.run_id,
        model_version=version,
        model_uri=f"models:/{settings.model_name}/{version}",
        model_type=model_type,
        metrics=dict(fitted.metrics),
        holdout=fitted.window.to_params(),
        train_rows=len(fitted.train),
        holdout_rows=len(fitted.holdout),
        fit_seconds=round(fitted.fit_seconds, 3),
        training_set_hash=fitted.training_set_hash,
        feature_importance=importances,
        holdout_roc=roc_points(fitted.holdout[LABEL].to_numpy(), fitted.holdout_proba),
        holdout_confusion_matrix=confusion_at(fitted.holdout[LABEL].to_numpy(), fitted.holdout_proba),
    )
