"""The feature contract against what is not derived from it: the dbt model that computes the features."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.core.feature_contract import (
    ACTIVITY,
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    FEATURES,
    PROFILE,
    view_features,
)
from components.core.model.pipeline import CATEGORICAL_FEATURES as MODEL_CATEGORICAL
from components.core.model.pipeline import FEATURES as MODEL_FEATURES

DBT_MODEL = Path(__file__).resolve().parents[2] / "dbt" / "models" / "gold" / "customer_features.yml"
KEYS = {"customer_id", "as_of_ts"}


def test_the_dbt_model_documents_exactly_the_contracts_features() -> None:
    (model,) = [
        m for m in yaml.safe_load(DBT_MODEL.read_text())["models"] if m["name"] == "customer_features"
    ]
    columns = [column["name"] for column in model["columns"]]
    assert set(columns) - KEYS == set(FEATURE_COLUMNS), "dbt's customer_features and the contract differ"


def test_the_contract_is_whole_and_each_feature_served_once() -> None:
    assert len(FEATURE_COLUMNS) == len(set(FEATURE_COLUMNS)) == 13
    assert {f.view for f in FEATURES} == {ACTIVITY, PROFILE}
    assert sorted(view_features(ACTIVITY) + view_features(PROFILE), key=FEATURES.index) == list(FEATURES)
    assert all(f.dtype == "string" for f in FEATURES if f.categorical)
    assert (list(FEATURE_COLUMNS), list(CATEGORICAL_FEATURES)) == (MODEL_FEATURES, MODEL_CATEGORICAL)
