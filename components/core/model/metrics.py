"""Holdout metrics of a churn model: ROC AUC, PR AUC, log loss, Brier score, expected calibration error."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

CALIBRATION_BINS = 10


def expected_calibration_error(
    y_true: np.ndarray, proba: np.ndarray, n_bins: int = CALIBRATION_BINS
) -> float:
    """Row-weighted mean gap between churn rate and mean predicted probability over equal-width bins.

    Bins split [0, 1] into `n_bins` intervals `[k/n, (k+1)/n)`, the last one closed; empty bins count zero.
    """
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(proba, dtype="float64")
    if y.shape != p.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(
            f"labels and probabilities must be non-empty 1-D arrays of one length: {y.shape}, {p.shape}"
        )
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    label_sums = np.bincount(bins, weights=y, minlength=n_bins)
    proba_sums = np.bincount(bins, weights=p, minlength=n_bins)
    return float(np.abs(label_sums - proba_sums).sum() / y.size)


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), log loss, Brier score and 10-bin ECE of churn probabilities.

    Args:
        y_true: 0/1 churn labels; both classes must be present.
        proba: predicted churn probabilities, one per label.

    Returns:
        `{"roc_auc", "pr_auc", "log_loss", "brier_score", "ece"}` as floats.
    """
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype="float64")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError("metrics need both churned and retained rows")
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier_score": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
    }


def roc_points(y_true: np.ndarray, proba: np.ndarray, max_points: int = 101) -> dict[str, list[float]]:
    """At most `max_points` points of the ROC curve, first and last kept, thresholds clipped to [0, 1].

    Small enough for a KFP `ClassificationMetrics` artifact, whose metadata holds every point.
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(np.asarray(y_true).astype(int), np.asarray(proba, dtype="float64"))
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).round().astype(int))
    return {
        "fpr": fpr[keep].tolist(),
        "tpr": tpr[keep].tolist(),
        "thresholds": np.clip(thresholds[keep], 0.0, 1.0).tolist(),
    }


def confusion_at(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> list[list[int]]:
    """`[[retained kept, retained flagged], [churned missed, churned flagged]]` at `proba >= threshold`."""
    y = np.asarray(y_true).astype(int)
    flagged = np.asarray(proba, dtype="float64") >= threshold
    return [
        [int(((y == 0) & ~flagged).sum()), int(((y == 0) & flagged).sum())],
        [int(((y == 1) & ~flagged).sum()), int(((y == 1) & flagged).sum())],
    ]
