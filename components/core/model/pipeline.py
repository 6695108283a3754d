"""The churn model: its 13 input features, the scikit-learn pipeline and its hyper-parameters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from components.core import feature_contract

#: Model input, in order: the features of the `churn_v1` feature service (the feature contract).
FEATURES: list[str] = list(feature_contract.FEATURE_COLUMNS)
CATEGORICAL_FEATURES: list[str] = list(feature_contract.CATEGORICAL_FEATURES)
NUMERIC_FEATURES: list[str] = list(feature_contract.NUMERIC_FEATURES)
LABEL = "is_churned"
KEYS: list[str] = ["customer_id", "as_of_ts"]

RANDOM_STATE = 42
#: OpenMP threads for fit and predict. On a shared 2-core machine two OpenMP threads made the
#: gradient-boosting fit 10-25x slower (spin-waiting); one thread fits 100k rows in seconds.
MODEL_THREADS = 1

HIST_GRADIENT_BOOSTING = "hist_gradient_boosting"
LOGISTIC_REGRESSION = "logistic_regression"
#: Predicts the training churn rate for everyone: the reference any real model must beat.
PRIOR_BASELINE = "prior_baseline"
DEFAULT_MODEL_TYPE = HIST_GRADIENT_BOOSTING

HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    HIST_GRADIENT_BOOSTING: {
        "max_iter": 100,
        "learning_rate": 0.1,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 100,
        "l2_regularization": 1.0,
        "early_stopping": False,
        "random_state": RANDOM_STATE,
    },
    LOGISTIC_REGRESSION: {"C": 1.0, "max_iter": 1000},
    PRIOR_BASELINE: {"strategy": "prior"},
}
MODEL_TYPES = tuple(HYPERPARAMETERS)

#: Types beyond scikit-learn's defaults that the skops-serialized pipeline holds.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]


def build_pipeline(model_type: str = DEFAULT_MODEL_TYPE) -> Pipeline:
    """An unfitted pipeline: median-imputed numeric features, one-hot `loyalty_tier`, a classifier.

    Numeric features are scaled only for the linear model. A missing tier is a category of its own; a tier
    never seen in training encodes as all zeros.
    """
    if model_type not in HYPERPARAMETERS:
        raise ValueError(f"unknown model_type {model_type!r}: expected one of {', '.join(MODEL_TYPES)}")
    params = HYPERPARAMETERS[model_type]
    numeric: Any = SimpleImputer(strategy="median")
    if model_type == HIST_GRADIENT_BOOSTING:
        classifier: Any = HistGradientBoostingClassifier(**params)
    elif model_type == LOGISTIC_REGRESSION:
        numeric = Pipeline([("impute", numeric), ("scale", StandardScaler())])
        classifier = LogisticRegression(**params)
    else:
        classifier = DummyClassifier(**params)
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    prepare = ColumnTransformer(
        [("numeric", numeric, NUMERIC_FEATURES), ("categorical", categorical, CATEGORICAL_FEATURES)]
    )
    return Pipeline([("prepare", prepare), ("classifier", classifier)])


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """Exactly the 13 feature columns, numeric ones as float64 and `loyalty_tier` as object (NaN if null).

    This is the shape the logged signature describes; nullable pandas types (`Int64`, `string`) become
    plain NumPy ones so the imputers see NaN.
    """
    missing = [c for c in FEATURES if c not in frame.columns]
    if missing:
        raise ValueError(f"model input is missing feature column(s): {', '.join(missing)}")
    out = pd.DataFrame(index=frame.index)
    for column in NUMERIC_FEATURES:
        try:
            out[column] = pd.to_numeric(frame[column]).astype("float64")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"feature column {column!r} must be numeric: {exc}") from exc
    for column in CATEGORICAL_FEATURES:
        values = frame[column].astype(object)
        out[column] = values.where(values.notna(), np.nan)
    return out


@contextmanager
def model_threads() -> Iterator[None]:
    """Limit OpenMP and BLAS threads to `MODEL_THREADS` while fitting or scoring."""
    with threadpool_limits(limits=MODEL_THREADS):
        yield


def churn_probability(pipeline: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """`predict_proba(X)[:, 1]` of a fitted pipeline, as float64."""
    with model_threads():
        return pipeline.predict_proba(model_input(features))[:, 1].astype("float64")
