"""What a served prediction must be, worked out independently of the model server."""

from __future__ import annotations

import mlflow
import pandas as pd

from components.core.catalog import read_table
from components.core.feature_store import FEATURE_COLUMNS
from components.core.model.registry import load_pipeline
from components.core.settings import GOLD, Settings


def latest_features(settings: Settings) -> pd.DataFrame:
    """Each customer's newest row of gold `customer_features` (what materialisation puts online)."""
    features = read_table(f"{GOLD}.customer_features", settings).to_pandas()
    return features.sort_values("as_of_ts").groupby("customer_id").tail(1)


def champion_probability(settings: Settings, latest: pd.DataFrame, customer: int) -> float:
    """The churn probability the registry's `champion` gives `customer`'s row of `latest`."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    model = load_pipeline(f"models:/{settings.model_name}@champion")
    row = latest[latest.customer_id == customer][list(FEATURE_COLUMNS)]
    return float(model.predict_proba(row)[:, 1][0])
