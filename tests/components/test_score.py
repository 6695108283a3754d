"""Tests of the score step: the champion's probabilities for the latest customers, in gold.churn_scores."""

from __future__ import annotations

import dataclasses

import mlflow
import numpy as np
import pytest

from components.core.catalog import get_catalog, read_table
from components.core.model.pipeline import FEATURES
from components.core.model.registry import NoChampionError
from components.scoring.score import CHURN_SCORES, CHURN_SCORES_SCHEMA, score_customers


@pytest.fixture(scope="module")
def scored(champion_lakehouse):
    return score_customers(champion_lakehouse.settings)


def test_every_customer_of_the_latest_as_of_date_is_scored_by_the_champion(champion_lakehouse, scored):
    settings, frame = champion_lakehouse.settings, champion_lakehouse.frame
    latest = frame[frame["as_of_ts"] == frame["as_of_ts"].max()].sort_values("customer_id")
    assert scored.committed and scored.customers == len(latest) > 50
    assert scored.model_version == champion_lakehouse.trained.model_version
    assert scored.as_of == latest["as_of_ts"].iloc[0].tz_convert(None).isoformat()

    table = read_table(CHURN_SCORES, settings)
    assert table.schema.names == CHURN_SCORES_SCHEMA.names
    rows = table.to_pandas().sort_values("customer_id")
    assert rows["customer_id"].tolist() == latest["customer_id"].tolist()
    assert set(rows["model_name"]) == {settings.model_name} and set(rows["model_version"]) == {1}
    model = mlflow.sklearn.load_model(champion_lakehouse.trained.model_uri)
    expected = model.predict_proba(latest[FEATURES].astype({"loyalty_tier": object}))[:, 1]
    np.testing.assert_allclose(rows["churn_probability"].to_numpy(), expected, rtol=0, atol=1e-12)


def test_scoring_again_changes_nothing(champion_lakehouse, scored):
    again = score_customers(champion_lakehouse.settings)
    assert not again.committed and again.snapshot_id == scored.snapshot_id
    assert read_table(CHURN_SCORES, champion_lakehouse.settings).num_rows == scored.customers


def test_without_a_champion_nothing_is_written(champion_lakehouse, scored):
    settings = dataclasses.replace(champion_lakehouse.settings, model_name="churn_without_champion")
    with pytest.raises(NoChampionError, match="no version of 'churn_without_champion' carries the alias"):
        score_customers(settings)
    table = get_catalog(settings).load_table(CHURN_SCORES)
    assert table.current_snapshot().snapshot_id == scored.snapshot_id
