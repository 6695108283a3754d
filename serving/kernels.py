"""NumPy kernels for common fitted sklearn steps: the same arithmetic as their `transform`, minus validation.

sklearn spends most of a 1-row prediction validating its input. For the steps a churn pipeline is made
of (SimpleImputer, StandardScaler, OneHotEncoder, then a binary LogisticRegression or
HistGradientBoostingClassifier) a kernel applies the fitted parameters directly. A step with options a
kernel does not reproduce gets no kernel, and `serving.scoring.PipelineScorer` calls its own `transform`
or `predict_proba` instead; every result is checked against the pipeline when the model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Kernel = Callable[[np.ndarray], np.ndarray]


def _is_missing(values: np.ndarray) -> np.ndarray:
    """True where an object or float array holds None or NaN."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.frompyfunc(lambda v: v is None or v != v, 1, 1)(values).astype(bool)


def _imputer(step: Any) -> Kernel | None:
    stats = step.statistics_
    if step.add_indicator or not (isinstance(step.missing_values, float) and np.isnan(step.missing_values)):
        return None
    if stats.dtype.kind == "f" and np.isnan(stats).any():
        return None  # sklearn drops (or keeps) all-missing columns; not reproduced here
    if stats.dtype.kind == "O" and _is_missing(stats).any():
        return None
    numeric = stats.dtype.kind in "fiu"

    def impute(values: np.ndarray) -> np.ndarray:
        out = values.astype(np.float64 if numeric else object, copy=True)
        rows, columns = np.nonzero(_is_missing(out))
        out[rows, columns] = stats[columns]
        return out

    return impute


def _scaler(step: Any) -> Kernel | None:
    mean, scale = step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None

    def standardize(values: np.ndarray) -> np.ndarray:
        out = values.astype(np.float64, copy=True)
        if mean is not None:
            out -= mean
        if scale is not None:
            out /= scale
        return out

    return standardize


def _one_hot(step: Any) -> Kernel | None:
    if step.drop_idx_ is not None or getattr(step, "_infrequent_enabled", False):
        return None
    if step.handle_unknown not in ("ignore", "infrequent_if_exist"):
        return None
    if not all(all(isinstance(c, str) for c in cats.tolist()) for cats in step.categories_):
        return None
    offsets = np.cumsum([0] + [len(cats) for cats in step.categories_])
    lookups = [
        {c: offsets[j] + i for i, c in enumerate(cats.tolist())} for j, cats in enumerate(step.categories_)
    ]
    dtype = step.dtype

    def encode(values: np.ndarray) -> np.ndarray:
        out = np.zeros((values.shape[0], offsets[-1]), dtype=dtype)
        for j, lookup in enumerate(lookups):
            for i, value in enumerate(values[:, j].tolist()):
                position = lookup.get(value)
                if position is not None:
                    out[i, position] = 1
        return out

    return encode


def transform_kernel(step: Any) -> Kernel | None:
    """A kernel for a fitted transformer (or a Pipeline of them), or None if there is none for it."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if isinstance(step, Pipeline):
        kernels = [transform_kernel(s) for _, s in step.steps if s is not None and not isinstance(s, str)]
        if any(k is None for k in kernels):
            return None

        def chain(values: np.ndarray) -> np.ndarray:
            for kernel in kernels:
                values = kernel(values)
            return values

        return chain
    builders = {SimpleImputer: _imputer, StandardScaler: _scaler, OneHotEncoder: _one_hot}
    builder = builders.get(type(step))
    return builder(step) if builder is not None else None


def _logistic(step: Any) -> Kernel | None:
    from scipy.special import expit

    coef, intercept = step.coef_.ravel(), step.intercept_[0]

    def probability(values: np.ndarray) -> np.ndarray:
        return expit(values @ coef + intercept)

    return probability


#: Up to this many rows, every split is decided at once; beyond, trees are walked level by level.
ALL_SPLITS_MAX_ROWS = 4


def _gradient_boosting(step: Any) -> Kernel | None:
    """All trees walked at once, as sklearn's predictor walks each (numeric splits only).

    Leaves point at themselves, so following the chosen child `depth` times lands every tree on its
    leaf. For a few rows (online requests) every split of every tree is decided in one vectorized
    comparison and each step is one gather; for more rows only the nodes reached are compared, level by
    level. Both ways are checked against each other on random rows when the kernel is built.
    """
    from scipy.special import expit

    if step.n_trees_per_iteration_ != 1 or getattr(step, "_preprocessor", None) is not None:
        return None
    if type(step._loss).__name__ != "HalfBinomialLoss":
        return None
    trees = [predictors[0].nodes for predictors in step._predictors]
    if not trees or any(tree["is_categorical"].any() for tree in trees):
        return None
    starts = np.cumsum([0] + [len(tree) for tree in trees])
    nodes = np.concatenate(trees)
    offset = np.repeat(starts[:-1], [len(tree) for tree in trees])
    index = np.arange(len(nodes))
    is_leaf = nodes["is_leaf"].astype(bool)
    feature, threshold = nodes["feature_idx"].astype(np.intp), nodes["num_threshold"]
    missing_left, value = nodes["missing_go_to_left"].astype(bool), nodes["value"]
    left = np.where(is_leaf, index, nodes["left"].astype(np.intp) + offset)
    right = np.where(is_leaf, index, nodes["right"].astype(np.intp) + offset)
    depth = _forest_depth(left, right, is_leaf, starts[:-1])
    roots, baseline = starts[:-1], float(np.ravel(step._baseline_prediction)[0])

    def all_splits(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        data = values[:, feature]  # every node's feature value, per row
        child = np.where(np.where(np.isnan(data), missing_left, data <= threshold), left, right)
        at = np.broadcast_to(roots, (values.shape[0], len(roots)))
        for _ in range(depth):
            at = child[rows, at]
        return at

    def by_level(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        at = np.tile(roots, (values.shape[0], 1))
        for _ in range(depth):
            data = values[rows, feature[at]]
            go_left = np.where(np.isnan(data), missing_left[at], data <= threshold[at])
            at = np.where(go_left, left[at], right[at])
        return at

    def leaves(values: np.ndarray, walk: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            at = walk(values, np.arange(values.shape[0])[:, None])
        # sequential sum from the baseline, in tree order, as sklearn adds each tree's prediction
        raw = np.cumsum(np.column_stack([np.full(values.shape[0], baseline), value[at]]), axis=1)[:, -1]
        return expit(raw)

    def probability(values: np.ndarray) -> np.ndarray:
        return leaves(values, all_splits if len(values) <= ALL_SPLITS_MAX_ROWS else by_level)

    finite = np.abs(threshold[np.isfinite(threshold)])
    scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    sample = np.random.default_rng(0).normal(0, 1, (64, step.n_features_in_)) * scale
    sample[np.random.default_rng(1).random(sample.shape) < 0.2] = np.nan
    if not np.array_equal(leaves(sample, all_splits), leaves(sample, by_level)):
        return None
    return probability


def _forest_depth(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray, roots: np.ndarray) -> int:
    """Edges on the longest root-to-leaf path of any tree (leaves point at themselves)."""
    depth, level = 0, roots
    while not is_leaf[level].all():
        level = np.unique(np.concatenate([left[level], right[level]]))
        depth += 1
    return depth


def probability_kernel(step: Any) -> Kernel | None:
    """Positive-class probability of a fitted binary classifier with a kernel, or None for another one."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    if len(getattr(step, "classes_", ())) != 2:
        return None
    if type(step) is LogisticRegression:
        return _logistic(step)
    if type(step) is HistGradientBoostingClassifier:
        return _gradient_boosting(step)
    return None
