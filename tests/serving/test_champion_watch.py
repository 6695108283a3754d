"""`ChampionWatcher` polling a real MLflow registry: a promoted version is served, a missing alias is not."""

from __future__ import annotations

import asyncio
import time

import pytest

from components.core.model.registry import CHAMPION, tracking_client
from serving.champion_watch import ChampionWatcher
from serving.model import ChurnModel


@pytest.fixture
def registry(served_lakehouse):
    """The MLflow client of the served lakehouse; the alias is set back to its champion afterwards."""
    settings = served_lakehouse.settings
    client = tracking_client(settings)
    yield client
    client.set_registered_model_alias(settings.model_name, CHAMPION, str(served_lakehouse.champion_version))


def _until(condition, timeout: float = 60.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


def test_the_watcher_polls_the_alias_and_serves_the_promoted_version(served_lakehouse, registry):
    settings = served_lakehouse.settings
    model = ChurnModel(settings)
    model.load()
    assert model.model_version == "1"
    watcher = ChampionWatcher([model], interval=0.2)
    watcher.start()
    try:
        registry.set_registered_model_alias(settings.model_name, CHAMPION, "2")
        _until(lambda: model.model_version == "2")
        response, _ = asyncio.run(model({"instances": [1]}))
        registry.set_registered_model_alias(settings.model_name, CHAMPION, "1")
        _until(lambda: model.model_version == "1")
    finally:
        watcher.stop()
    assert response["model_version"] == "2"
    expected = served_lakehouse.pipelines[2].predict_proba(_frame(model, 1))[0, 1]
    assert response["predictions"][0]["churn_probability"] == pytest.approx(expected, abs=1e-9)


def test_a_missing_alias_keeps_the_served_version(served_lakehouse, registry):
    settings = served_lakehouse.settings
    model = ChurnModel(settings)
    model.load()
    registry.delete_registered_model_alias(settings.model_name, CHAMPION)
    assert model.refresh_champion() is False
    assert model.model_version == "1"


def _frame(model: ChurnModel, customer_id: int):
    import pandas as pd

    rows, _ = model.features.read([customer_id])
    return pd.DataFrame(rows)[list(model.pipeline.feature_names_in_)]
