"""Figures of a churn model on its held-out window: ROC, precision-recall, calibration, feature importance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from components.core.model.metrics import CALIBRATION_BINS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Metrics drawn side by side when a candidate meets the champion (all in [0, 1]).
COMPARED_METRICS = ("roc_auc", "pr_auc", "brier_score", "ece")


def _figure(width: float = 5.0, height: float = 4.0) -> Figure:
    """A matplotlib figure that needs no display (no pyplot state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def roc_figure(y_true: np.ndarray, curves: Mapping[str, np.ndarray]) -> Figure:
    """ROC curves of one or more models' probabilities on the same labels, AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = _figure()
    axes = figure.add_subplot()
    for label, proba in curves.items():
        fpr, tpr, _ = roc_curve(y_true, proba)
        axes.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(y_true, proba):.4f})")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, held-out window")
    axes.legend(loc="lower right")
    return figure


def precision_recall_figure(y_true: np.ndarray, proba: np.ndarray) -> Figure:
    """Precision against recall, with the churn rate as the no-skill line."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y_true, proba)
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot(recall, precision, label=f"model (AP {average_precision_score(y_true, proba):.4f})")
    axes.axhline(float(np.mean(y_true)), linestyle=":", color="grey", label="churn rate")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall, held-out window", ylim=(0, 1.02))
    axes.legend(loc="upper right")
    return figure


def calibration_figure(y_true: np.ndarray, proba: np.ndarray, n_bins: int = CALIBRATION_BINS) -> Figure:
    """Observed churn rate against mean predicted probability per equal-width bin, with bin sizes."""
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y_true, proba, n_bins=n_bins, strategy="uniform")
    figure = _figure(5.0, 5.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    top.plot(predicted, observed, marker="o", label="model")
    top.set(ylabel="observed churn rate", title="Calibration, held-out window")
    top.legend(loc="upper left")
    bottom.hist(proba, bins=n_bins, range=(0, 1))
    bottom.set(xlabel="predicted churn probability", ylabel="rows")
    return figure


def importance_figure(importances: Mapping[str, float]) -> Figure:
    """Horizontal bars of permutation importance (ROC AUC lost when a feature is shuffled)."""
    names = sorted(importances, key=importances.get)
    figure = _figure(6.0, 0.3 * len(names) + 1.2)
    axes = figure.add_subplot()
    axes.barh(names, [importances[name] for name in names])
    axes.set(xlabel="ROC AUC lost when shuffled", title="Permutation importance, held-out window")
    return figure


def comparison_figure(
    y_true: np.ndarray,
    candidate: tuple[str, np.ndarray, Mapping[str, float]],
    champion: tuple[str, np.ndarray, Mapping[str, float]],
) -> Figure:
    """Champion and candidate side by side on one window: ROC curves, and their metrics as bars.

    Args:
        y_true: the window's labels.
        candidate: (label, probabilities, metrics) of the candidate.
        champion: the same for the champion.
    """
    from sklearn.metrics import roc_curve

    figure = _figure(10.0, 4.0)
    curves, bars = figure.subplots(1, 2)
    width = 0.38
    positions = np.arange(len(COMPARED_METRICS))
    for offset, (label, proba, metrics) in zip((-width / 2, width / 2), (champion, candidate), strict=True):
        fpr, tpr, _ = roc_curve(y_true, proba)
        curves.plot(fpr, tpr, label=f"{label} (AUC {metrics['roc_auc']:.4f})")
        bars.bar(positions + offset, [metrics[name] for name in COMPARED_METRICS], width, label=label)
    curves.plot([0, 1], [0, 1], linestyle=":", color="grey")
    curves.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, same held-out window")
    curves.legend(loc="lower right")
    bars.set_xticks(positions, COMPARED_METRICS)
    bars.set(title="Held-out metrics (AUCs: higher is better; Brier, ECE: lower)", ylim=(0, 1))
    bars.legend(loc="upper right")
    return figure


def log_holdout_figures(
    client: Any, run_id: str, y_true: np.ndarray, proba: np.ndarray, importances: Mapping[str, float]
) -> list[str]:
    """Log ROC, precision-recall, calibration and importance figures (and the importances) to a run.

    Args:
        client: an `MlflowClient` of the run's tracking server.
        run_id: the run to log to.
        y_true: the held-out labels.
        proba: the model's churn probabilities for them.
        importances: feature -> permutation importance.

    Returns:
        the artifact paths written, under `figures/`.
    """
    figures = {
        "figures/roc.png": roc_figure(y_true, {"model": proba}),
        "figures/precision_recall.png": precision_recall_figure(y_true, proba),
        "figures/calibration.png": calibration_figure(y_true, proba),
        "figures/feature_importance.png": importance_figure(importances),
    }
    for path, figure in figures.items():
        client.log_figure(run_id, figure, path)
    client.log_dict(run_id, dict(importances), "figures/feature_importance.json")
    return list(figures)
