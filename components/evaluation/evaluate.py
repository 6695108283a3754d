"""Evaluate step: score a candidate and the champion on one holdout window, move `champion` to the better.

The promotion rule (`core/model/promotion.py`) compares their ROC AUC on the same held-out rows; a candidate
that does not win becomes the `challenger`, which the model servers score in the shadow. Re-running on the
same inputs changes no alias.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from components.core.alerts import AlertKind, notify
from components.core.model.figures import comparison_figure
from components.core.model.metrics import classification_metrics
from components.core.model.pipeline import LABEL, churn_probability
from components.core.model.promotion import PROMOTION_METRIC, move_aliases, promotion_decision
from components.core.model.registry import (
    CHAMPION,
    alias_version,
    load_pipeline,
    registered_version,
    tracking_client,
)
from components.core.model.split import (
    MIN_HOLDOUT_ROWS,
    HoldoutWindow,
    check_scorable,
    rows_in,
    validate_training_frame,
)
from components.core.results import Evaluation, Promotion
from components.core.settings import Settings, get_settings

DECISION_ARTIFACT = "promotion/decision.json"
COMPARISON_FIGURE = "promotion/champion_vs_candidate.png"
COMPARISON_TABLE = "promotion/champion_vs_candidate.json"


def _holdout_scores(model_uri: str, holdout: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """The model's churn probabilities on the holdout rows and its metrics there."""
    proba = churn_probability(load_pipeline(model_uri), holdout)
    return proba, classification_metrics(holdout[LABEL].to_numpy(), proba)


def evaluate_and_promote(
    training_df: pd.DataFrame, model_version: int | str, settings: Settings | None = None
) -> Evaluation:
    """Score candidate `model_version` and the champion on the candidate's holdout window and decide.

    Args:
        training_df: a training set covering the holdout window recorded on the candidate's run.
        model_version: the registered version of `settings.model_name` to evaluate.
        settings: the profile's settings (default: `get_settings()`).

    Returns:
        the decision (an `Evaluation`), also recorded on the candidate's run and model version.

    Raises:
        LookupError: the candidate version does not exist.
        TrainingDataError: the training set is malformed or lacks scorable rows in the window.
    """
    settings = settings or get_settings()
    client = tracking_client(settings)
    name = settings.model_name
    candidate = registered_version(client, name, model_version)
    candidate_version = str(candidate.version)
    run = client.get_run(candidate.run_id)
    window = HoldoutWindow.from_params(run.data.params)
    holdout = rows_in(validate_training_frame(training_df), window.holdout_start, window.holdout_end)
    check_scorable(
        holdout,
        f"holdout window {window.holdout_start:%Y-%m-%d}..{window.holdout_end:%Y-%m-%d}",
        MIN_HOLDOUT_ROWS,
    )

    candidate_proba, candidate_metrics = _holdout_scores(f"models:/{name}/{candidate_version}", holdout)
    champion = alias_version(client, name, CHAMPION)
    champion_proba, champion_metrics, champion_saw_window = None, None, False
    if champion == candidate_version:
        champion_metrics = candidate_metrics
    elif champion is not None:
        champion_proba, champion_metrics = _holdout_scores(f"models:/{name}/{champion}", holdout)
        champion_run = client.get_run(registered_version(client, name, champion).run_id)
        champion_saw_window = (
            HoldoutWindow.from_params(champion_run.data.params).train_cutoff > window.train_cutoff
        )
    candidate_score = candidate_metrics[PROMOTION_METRIC]
    champion_score = None if champion_metrics is None else champion_metrics[PROMOTION_METRIC]
    margin = settings.policy.promotion_min_margin
    decision, reason = promotion_decision(
        candidate_version, champion, candidate_score, champion_score, margin
    )

    move_aliases(client, name, candidate_version, decision)
    champion_version = int(candidate_version) if decision.candidate_is_champion else int(champion)
    result = Evaluation(
        model_version=int(candidate_version),
        decision=decision,
        promoted=decision.candidate_is_champion,
        reason=reason,
        champion_version=champion_version,
        model_uri=f"models:/{name}/{champion_version}",
        previous_champion_version=None if champion is None else int(champion),
        promotion_metric=PROMOTION_METRIC,
        candidate_roc_auc=candidate_score,
        champion_roc_auc=champion_score,
        roc_auc_gain=None if champion_score is None else candidate_score - champion_score,
        min_margin=margin,
        candidate_metrics=candidate_metrics,
        champion_metrics=champion_metrics,
        holdout=window.to_params(),
        holdout_rows=len(holdout),
        champion_trained_on_window=champion_saw_window,
    )
    if decision in (Promotion.FIRST_CHAMPION, Promotion.PROMOTED):
        notify(
            settings,
            AlertKind.PROMOTION,
            f"{name} version {candidate_version} is the champion: {reason}",
            model_version=int(candidate_version),
            previous_champion_version=result.previous_champion_version,
            candidate_roc_auc=candidate_score,
            champion_roc_auc=champion_score,
        )
    if decision is not Promotion.ALREADY_CHAMPION or "promotion_decision" not in run.data.tags:
        _log_decision(client, run.info.run_id, name, candidate_version, result)
        if champion_proba is not None:
            _log_comparison(client, run.info.run_id, holdout, result, candidate_proba, champion_proba)
    return result


def _log_decision(client: Any, run_id: str, name: str, version: str, result: Evaluation) -> None:
    """Record the decision on the candidate's run (metrics, tags, JSON artifact) and model version."""
    client.log_metric(run_id, "promotion_candidate_roc_auc", result.candidate_roc_auc)
    if result.champion_roc_auc is not None:
        client.log_metric(run_id, "promotion_champion_roc_auc", result.champion_roc_auc)
        client.log_metric(run_id, "promotion_roc_auc_gain", result.roc_auc_gain)
    for key in ("decision", "reason", "champion_version", "previous_champion_version"):
        client.set_tag(run_id, f"promotion_{key}", str(getattr(result, key)))
    client.log_dict(run_id, result.to_dict(), DECISION_ARTIFACT)
    client.set_model_version_tag(name, version, "promotion_decision", result.decision.value)
    client.set_model_version_tag(name, version, "holdout_roc_auc", f"{result.candidate_roc_auc:.6f}")


def _log_comparison(
    client: Any,
    run_id: str,
    holdout: pd.DataFrame,
    result: Evaluation,
    candidate_proba: np.ndarray,
    champion_proba: np.ndarray,
) -> None:
    """Champion and candidate side by side on the candidate's run: one figure, one metrics table."""
    champion = f"champion v{result.previous_champion_version}"
    candidate = f"candidate v{result.model_version}"
    figure = comparison_figure(
        holdout[LABEL].to_numpy(),
        (candidate, candidate_proba, result.candidate_metrics),
        (champion, champion_proba, result.champion_metrics),
    )
    client.log_figure(run_id, figure, COMPARISON_FIGURE)
    table = {
        "metric": list(result.candidate_metrics),
        champion: [result.champion_metrics[k] for k in result.candidate_metrics],
        candidate: list(result.candidate_metrics.values()),
    }
    client.log_dict(run_id, table, COMPARISON_TABLE)
