"""Churn probabilities from a fitted sklearn Pipeline, without pandas or sklearn validation per request.

A Pipeline that starts with a ColumnTransformer selecting columns by name needs a DataFrame, and on a
1-row DataFrame sklearn spends milliseconds on column handling and input validation. `PipelineScorer`
instead hands each fitted column transformer its columns as NumPy arrays, through the kernels of
`serving.kernels` where one exists (the step's own `transform` otherwise), and runs the rest of the
pipeline the same way. At construction it checks this against the pipeline's own `predict_proba` on
probe rows, and scores through the DataFrame path if the pipeline has another shape or the check fails.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from serving.kernels import probability_kernel, transform_kernel

logger = logging.getLogger(__name__)
Step = Callable[[np.ndarray], Any]


def _column_names(columns: Any, feature_names: Sequence[str]) -> list[str] | None:
    """Column names a ColumnTransformer entry selects, or None if selected otherwise (callable, mask...)."""
    if isinstance(columns, str):
        return [columns]
    if not isinstance(columns, (list, tuple, np.ndarray)):
        return None
    if all(isinstance(c, str) for c in columns):
        return [str(c) for c in columns]
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in columns):
        return [feature_names[int(c)] for c in columns]
    return None


def _without_feature_names(estimator: Any) -> Any:
    """A copy of a fitted estimator (or Pipeline) that takes arrays without a feature-names warning."""
    estimator = copy.deepcopy(estimator)
    for step in [s for _, s in getattr(estimator, "steps", [])] + [estimator]:
        if not isinstance(step, str) and step is not None and "feature_names_in_" in vars(step):
            del step.feature_names_in_
    return estimator


def _transform_step(estimator: Any) -> tuple[Step, bool]:
    """The step's kernel (True) or its own `transform` on arrays (False)."""
    kernel = transform_kernel(estimator)
    return (kernel, True) if kernel is not None else (_without_feature_names(estimator).transform, False)


def _probability_step(estimator: Any) -> tuple[Step, bool]:
    """The estimator's probability kernel (True) or its own `predict_proba` on arrays (False)."""
    kernel = probability_kernel(estimator)
    if kernel is not None:
        return kernel, True
    estimator = _without_feature_names(estimator)
    return (lambda values: estimator.predict_proba(values)[:, 1]), False


class PipelineScorer:
    """Positive-class probability of a fitted Pipeline for rows of feature values.

    Args:
        pipeline: A fitted sklearn estimator with `predict_proba` (usually a Pipeline).
        feature_names: The input columns, in the order the pipeline was fitted with.
        string_features: Columns holding strings; every other column is numeric.
    """

    def __init__(self, pipeline: Any, feature_names: Sequence[str], string_features: frozenset[str]):
        self.pipeline = pipeline
        self.feature_names = tuple(feature_names)
        self.string_features = string_features
        self._columns: list[tuple[Step | None, list[str]]] | None = None
        self._tail: list[Step] = []
        self._sparse = False
        #: Name of each pipeline step run by a `serving.kernels` kernel rather than by sklearn.
        self.kernel_steps: list[str] = []
        self._plan()
        if self._columns is not None and not self._agrees_with_pipeline():
            logger.warning(
                "NumPy scoring path does not match the pipeline on probe rows; scoring through pandas"
            )
            self._columns, self.kernel_steps = None, []

    @property
    def uses_numpy_path(self) -> bool:
        """True when requests are scored without building a DataFrame."""
        return self._columns is not None

    def _plan(self) -> None:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        if not isinstance(self.pipeline, Pipeline) or len(self.pipeline.steps) < 2:
            return
        column_transformer = self.pipeline.steps[0][1]
        if not isinstance(column_transformer, ColumnTransformer) or not hasattr(
            column_transformer, "transformers_"
        ):
            return
        tail = [step for _, step in self.pipeline.steps[1:] if step is not None and not isinstance(step, str)]
        if not tail or not hasattr(tail[-1], "predict_proba"):
            return
        columns: list[tuple[Step | None, list[str]]] = []
        kernels = []
        for name, transformer, selected in column_transformer.transformers_:
            names = _column_names(selected, self.feature_names)
            if names is None or (isinstance(transformer, str) and transformer not in ("drop", "passthrough")):
                return
            if isinstance(transformer, str) and transformer == "drop" or not names:
                continue
            if isinstance(transformer, str):
                columns.append((None, names))
                continue
            step, is_kernel = _transform_step(transformer)
            columns.append((step, names))
            kernels += [name] if is_kernel else []
        tail_names = [
            name for name, step in self.pipeline.steps[1:] if step is not None and not isinstance(step, str)
        ]
        steps = [_transform_step(step) for step in tail[:-1]] + [_probability_step(tail[-1])]
        self._sparse = bool(getattr(column_transformer, "sparse_output_", False))
        self._tail = [step for step, _ in steps]
        self.kernel_steps = kernels + [
            name for name, (_, is_kernel) in zip(tail_names, steps, strict=True) if is_kernel
        ]
        self._columns = columns

    def _column(self, rows: list[dict[str, Any]], name: str) -> np.ndarray:
        values = [np.nan if row[name] is None else row[name] for row in rows]
        return np.array(values, dtype=object if name in self.string_features else np.float64)

    def _block(self, rows: list[dict[str, Any]], names: list[str]) -> np.ndarray:
        """The rows' values of `names` as one 2-D array: float64 with NaN, or object for string columns."""
        if any(name in self.string_features for name in names):
            return np.column_stack([self._column(rows, name) for name in names])
        # NumPy reads None as NaN in a float array
        return np.array([[row[name] for name in names] for row in rows], dtype=np.float64)

    def frame(self, rows: list[dict[str, Any]]) -> Any:
        """The rows as the DataFrame the pipeline was fitted on (missing values as NaN)."""
        import pandas as pd

        return pd.DataFrame({name: self._column(rows, name) for name in self.feature_names}, copy=False)

    def _predict_numpy(self, rows: list[dict[str, Any]]) -> np.ndarray:
        import scipy.sparse as sp

        blocks = []
        for step, names in self._columns:
            block = self._block(rows, names)
            blocks.append(block if step is None else step(block))
        if self._sparse:
            values = sp.hstack([b if sp.issparse(b) else sp.csr_matrix(b) for b in blocks]).tocsr()
        else:
            values = np.hstack([b.toarray() if sp.issparse(b) else np.asarray(b) for b in blocks])
        for step in self._tail:
            values = step(values)
        return np.asarray(values, dtype=np.float64).ravel()

    def predict(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """Churn probability of each row (a dict of feature name -> value or None)."""
        if self._columns is not None:
            return self._predict_numpy(rows)
        return self.pipeline.predict_proba(self.frame(rows))[:, 1]

    def _probe_rows(self) -> list[dict[str, Any]]:
        """A row of missing values, then rows cycling through known categories and spread numbers."""
        categories: dict[str, list[str]] = {}
        for _, transformer, selected in self.pipeline.steps[0][1].transformers_:
            names = _column_names(selected, self.feature_names) or []
            for _, step in getattr(transformer, "steps", [(None, transformer)]):
                for name, values in zip(names, getattr(step, "categories_", []), strict=False):
                    known = [v for v in values.tolist() if isinstance(v, str)]
                    if known:
                        categories[name] = known
        width = max((len(values) for values in categories.values()), default=1)
        rows = [dict.fromkeys(self.feature_names)]
        for index in range(width + 2):
            row = {}
            for position, name in enumerate(self.feature_names):
                if name in self.string_features:
                    options = categories.get(name, ["unknown"])
                    row[name] = options[index % len(options)]
                else:
                    row[name] = float((index * 7 + position * 3) % 11) - 2.5
            rows.append(row)
        return rows

    def _agrees_with_pipeline(self) -> bool:
        rows = self._probe_rows()
        try:
            try:
                reference = self.pipeline.predict_proba(self.frame(rows))[:, 1]
            except ValueError:
                rows = rows[1:]  # a pipeline that does not impute cannot score the row of missing values
                reference = self.pipeline.predict_proba(self.frame(rows))[:, 1]
            fast = self._predict_numpy(rows)
        except Exception:  # noqa: BLE001 - any failure means the NumPy path cannot be checked or used
            logger.warning("NumPy scoring path could not be checked on probe rows", exc_info=True)
            return False
        return bool(np.allclose(fast, reference, rtol=1e-9, atol=1e-12, equal_nan=True))
