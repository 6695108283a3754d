"""Fixtures of the step tests.

`settings`: the `local` profile in a temporary state folder, over the tiny source of `tiny_source.py`.
`champion_lakehouse`: gold tables that hold the synthetic customers, with a champion trained on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pytest

from components.core.settings import GOLD, Settings, get_settings
from testing.tiny_source import ROWS, write_source


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    write_source(tmp_path / "data", ROWS)
    return get_settings("local")


@dataclass(frozen=True)
class ChampionLakehouse:
    """Gold tables written from the synthetic training frame, and a champion trained on that frame."""

    settings: Settings
    frame: pd.DataFrame
    trained: dict


def write_synthetic_gold(settings: Settings, frame: pd.DataFrame) -> None:
    """`gold.customer_features` and `gold.churn_labels` from a training frame (naive UTC as-of dates)."""
    from components.core.catalog import get_catalog
    from testing.tiny_lakehouse import CHURN_LABELS_SCHEMA, CUSTOMER_FEATURES_SCHEMA

    rows = frame.assign(as_of_ts=frame["as_of_ts"].dt.tz_convert(None))
    catalog = get_catalog(settings)
    catalog.create_namespace_if_not_exists(GOLD)
    for name, schema in (
        ("customer_features", CUSTOMER_FEATURES_SCHEMA),
        ("churn_labels", CHURN_LABELS_SCHEMA),
    ):
        data = pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False)
        catalog.create_table(f"{GOLD}.{name}", schema=schema).append(data)


@pytest.fixture(scope="package")
def champion_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChampionLakehouse]:
    """The synthetic customers in gold, the default model trained on them and promoted to champion."""
    from components.evaluation.evaluate import evaluate_and_promote
    from components.training.train import train_model
    from tests.components.test_train import local_mlflow_settings, synthetic_training_frame

    with pytest.MonkeyPatch.context() as patch:
        settings = local_mlflow_settings(tmp_path_factory, patch, "churn_propensity_scored")
        frame = synthetic_training_frame()
        write_synthetic_gold(settings, frame)
        trained = train_model(frame, settings)
        evaluate_and_promote(frame, trained.model_version, settings)
        yield ChampionLakehouse(settings, frame, trained)
