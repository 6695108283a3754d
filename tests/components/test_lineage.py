"""Lineage: the recorded chain, `lakehouse lineage`, the training set rebuilt by Iceberg time travel."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from components.core.catalog import get_catalog
from components.core.feature_store import get_store
from components.core.lineage import model_lineage
from components.core.model.split import training_set_hash, validate_training_frame
from components.features.materialize import get_training_set, rebuild_training_set
from components.training.train import train_model
from feature_repo.definitions import repo_objects
from pipelines.cli import main

GOLD_TABLES = ("gold.customer_features", "gold.churn_labels")


@pytest.fixture(scope="module")
def traced(champion_lakehouse):
    """A version trained on the Feast training set of the gold snapshots it records, as the pipeline does."""
    settings = champion_lakehouse.settings
    catalog = get_catalog(settings)
    snapshots = {name: catalog.load_table(name).current_snapshot().snapshot_id for name in GOLD_TABLES}
    get_store(settings).apply(repo_objects(settings))
    frame = get_training_set(settings)
    lineage = {
        "data_sha256": "f" * 64,
        "data_dvc_md5": "0123456789abcdef.dir",
        "bronze_load_id": "1732000000.5",
        "bronze_snapshot_ids": {"bronze.orders": 11, "bronze.customers": 12},
        "dbt_invocation_id": "6f1c7a2e-0000",
        "gold_snapshot_ids": snapshots,
        "feature_service": "churn_v1",
        "feature_snapshot_id": snapshots["gold.customer_features"],
    }
    return frame, lineage, train_model(frame, settings, lineage=lineage)


def _move_gold_on(settings, frame: pd.DataFrame) -> dict[str, int]:
    """Append a later week to both gold tables; returns their former snapshots."""
    catalog = get_catalog(settings)
    week = frame[frame["as_of_ts"] == frame["as_of_ts"].max()].copy()
    week["as_of_ts"] = (week["as_of_ts"] + pd.Timedelta(weeks=1)).dt.tz_convert(None)
    week["orders_90d"] += 1
    before = {}
    for name in GOLD_TABLES:
        table = catalog.load_table(name)
        before[name] = table.current_snapshot().snapshot_id
        schema = table.schema().as_arrow()
        table.append(pa.Table.from_pandas(week[schema.names], schema=schema, preserve_index=False))
    return before


def test_the_training_set_is_rebuilt_from_the_recorded_snapshots(champion_lakehouse, traced, tmp_path):
    settings = champion_lakehouse.settings
    frame, _, trained = traced
    recorded = model_lineage(settings, trained.model_version)
    assert recorded["training_set"]["sha256"] == trained.training_set_hash
    assert recorded["training_set"]["training_set_rows"] == len(frame)
    before = _move_gold_on(settings, frame)
    try:
        live = validate_training_frame(get_training_set(settings))
        assert training_set_hash(live) != trained.training_set_hash, "gold has moved on"
        rebuilt = rebuild_training_set(settings, recorded, tmp_path)
    finally:
        for name, snapshot_id in before.items():
            get_catalog(settings).load_table(name).manage_snapshots().set_current_snapshot(
                snapshot_id=snapshot_id
            ).commit()
    assert training_set_hash(rebuilt) == trained.training_set_hash
    pd.testing.assert_frame_equal(rebuilt, validate_training_frame(frame), check_dtype=False)


def test_lineage_command_prints_the_chain(traced, capsys):
    _, lineage, trained = traced
    version = str(trained.model_version)
    assert main(["lineage", version]) == 0
    text = capsys.readouterr().out
    for recorded in ("6f1c7a2e-0000", "0123456789abcdef.dir", "1732000000.5", "churn_v1", trained.run_id):
        assert recorded in text
    assert str(lineage["gold_snapshot_ids"]["gold.churn_labels"]) in text

    assert main(["lineage", version, "--json"]) == 0
    chain = json.loads(capsys.readouterr().out)
    assert chain["model"]["version"] == trained.model_version
    assert chain["gold"]["snapshot_ids"] == lineage["gold_snapshot_ids"]
    assert chain["bronze"] == {"snapshot_ids": lineage["bronze_snapshot_ids"], "dlt_load_id": "1732000000.5"}
    assert chain["training_set"]["train_rows"] == trained.train_rows
    assert chain["training_set"]["holdout_start"] == trained.holdout["holdout_start"]


def test_lineage_of_a_missing_version_names_the_versions_that_exist(traced, capsys):
    _, _, trained = traced
    assert main(["lineage", "999"]) == 2
    err = capsys.readouterr().err
    assert "has no version 999" in err
    assert f"registered versions: 1, {trained.model_version}" in err
    assert main(["lineage"]) == 0, "the champion by default"
    assert capsys.readouterr().out.startswith("model churn_propensity_scored version 1 (alias champion)")
