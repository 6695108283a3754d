"""Tests of the NumPy scoring path: same probabilities as the pipeline's own `predict_proba`, any shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from threadpoolctl import threadpool_limits

from components.core.feature_contract import STRING_FEATURES
from components.core.feature_store import FEATURE_COLUMNS
from serving.kernels import probability_kernel
from serving.scoring import PipelineScorer
from testing.champion import NUMERIC_COLUMNS, churn_pipeline

TIERS = ["bronze", "silver", "gold", "platinum"]


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(10, 5, n) for name in NUMERIC_COLUMNS})
    frame["loyalty_tier"] = rng.choice(TIERS, n).astype(object)
    frame.loc[rng.random(n) < 0.2, "recency_days"] = np.nan
    frame.loc[rng.random(n) < 0.1, "loyalty_tier"] = np.nan
    return frame.loc[:, list(FEATURE_COLUMNS)]


def _rows(frame: pd.DataFrame) -> list[dict]:
    """Rows as the online store returns them: None for missing values."""
    return [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


@pytest.fixture(autouse=True)
def one_thread():
    """Gradient boosting fits spin-wait on a shared 2-core machine with more than one OpenMP thread."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    train = _frame(400, seed=1)
    labels = (train["orders_7d"] + np.random.default_rng(2).normal(0, 3, len(train))) > 10
    return train, labels.to_numpy(), _frame(60, seed=3)


def _pipelines():
    numeric_only = ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), NUMERIC_COLUMNS),
            (
                "tier",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                [12],
            ),
        ]
    )
    yield "impute-scale-onehot-logistic", churn_pipeline()
    yield (
        "sparse-onehot-forest",
        Pipeline(
            [("features", numeric_only), ("forest", RandomForestClassifier(n_estimators=5, random_state=0))]
        ),
    )
    try:
        from components.core.model.pipeline import MODEL_TYPES, build_pipeline
    except ImportError:
        return
    for model_type in MODEL_TYPES:
        yield f"training-step-{model_type}", build_pipeline(model_type)


@pytest.mark.parametrize(
    ("name", "pipeline"), list(_pipelines()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_numpy_path_matches_predict_proba(data, name, pipeline):
    train, labels, new = data
    pipeline.fit(train, labels)
    scorer = PipelineScorer(pipeline, pipeline.feature_names_in_, STRING_FEATURES)
    assert scorer.uses_numpy_path, name
    if name == "impute-scale-onehot-logistic":
        assert scorer.kernel_steps == ["numeric", "tier", "classifier"]
    expected = pipeline.predict_proba(new)[:, 1]
    np.testing.assert_allclose(scorer.predict(_rows(new)), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(scorer.predict(_rows(new.head(1))), expected[:1], rtol=1e-9, atol=1e-12)
    unseen = _rows(new.head(1))[0] | {"loyalty_tier": "diamond", "orders_7d": None}
    reference = pipeline.predict_proba(scorer.frame([unseen]))[:, 1]
    np.testing.assert_allclose(scorer.predict([unseen]), reference, rtol=1e-9, atol=1e-12)


def test_a_pipeline_without_a_column_transformer_is_scored_through_pandas(data):
    train, labels, new = data
    numeric = Pipeline([("impute", SimpleImputer()), ("classifier", LogisticRegression())])
    numeric.fit(train[NUMERIC_COLUMNS], labels)
    scorer = PipelineScorer(numeric, NUMERIC_COLUMNS, STRING_FEATURES)
    assert not scorer.uses_numpy_path
    rows = [{k: v for k, v in row.items() if k != "loyalty_tier"} for row in _rows(new)]
    np.testing.assert_allclose(scorer.predict(rows), numeric.predict_proba(new[NUMERIC_COLUMNS])[:, 1])


def test_a_pipeline_that_needs_column_names_inside_falls_back_to_pandas(data):
    train, labels, new = data
    by_name = ColumnTransformer(
        [("orders", FunctionTransformer(lambda frame: frame[["orders_7d"]] * 2), NUMERIC_COLUMNS)]
    )
    pipeline = Pipeline([("features", by_name), ("classifier", LogisticRegression())]).fit(train, labels)
    scorer = PipelineScorer(pipeline, pipeline.feature_names_in_, STRING_FEATURES)
    assert not scorer.uses_numpy_path
    np.testing.assert_allclose(scorer.predict(_rows(new)), pipeline.predict_proba(new)[:, 1])


def test_gradient_boosting_kernel_walks_trees_as_sklearn_does():
    rng = np.random.default_rng(7)
    train = rng.normal(0, 1, (1500, 5))
    train[rng.random(train.shape) < 0.15] = np.nan
    labels = (np.nan_to_num(train[:, 0]) + np.nan_to_num(train[:, 1]) ** 2 + rng.normal(0, 0.5, 1500)) > 0.5
    model = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, random_state=0).fit(train, labels)
    kernel = probability_kernel(model)
    assert kernel is not None
    thresholds = np.concatenate(
        [p[0].nodes["num_threshold"][p[0].nodes["is_leaf"] == 0] for p in model._predictors]
    )
    rows = rng.normal(0, 1, (2000, 5))
    rows[:500] = rng.choice(thresholds, (500, 5))  # values exactly on split thresholds
    rows[rng.random(rows.shape) < 0.2] = np.nan
    np.testing.assert_allclose(kernel(rows), model.predict_proba(rows)[:, 1], rtol=1e-12, atol=0)
    np.testing.assert_allclose(kernel(rows[:1]), model.predict_proba(rows[:1])[:, 1], rtol=1e-12, atol=0)


def test_no_kernel_for_multiclass_or_native_categorical_models():
    rng = np.random.default_rng(8)
    values = rng.normal(0, 1, (300, 3))
    assert probability_kernel(LogisticRegression().fit(values, rng.integers(0, 3, 300))) is None
    categorical = values.copy()
    categorical[:, 2] = rng.integers(0, 4, 300)
    label = np.isin(categorical[:, 2], [1, 3])  # only a categorical split can learn this
    native = HistGradientBoostingClassifier(max_iter=5, categorical_features=[2]).fit(categorical, label)
    assert probability_kernel(native) is None
