"""Tests of the monitor step and its statistics: PSI, NULL shares and KS against the training window."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from components.core.catalog import get_catalog, read_table
from components.core.model.drift import (
    column_drift,
    numeric_shares,
    population_stability_index,
)
from components.core.model.pipeline import FEATURES
from components.monitoring.monitor import FEATURE_DRIFT, SCORE_COLUMN, monitor_drift


def test_psi_of_known_shares():
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert population_stability_index([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert population_stability_index([0.2, 0.8], [0.2, 0.8]) == 0.0
    assert population_stability_index([1.0, 0.0], [0.0, 1.0]) == pytest.approx(2 * 0.9999 * math.log(1e4))


def test_numeric_bins_are_reference_deciles_and_null_is_a_bin():
    reference = pd.Series(np.arange(100, dtype=float))
    ref, cur = numeric_shares(reference, pd.Series([5.0, 15.0, 95.0, None]))
    np.testing.assert_allclose(ref, [0.1] * 10 + [0.0])
    np.testing.assert_allclose(cur, [0.25, 0.25] + [0.0] * 7 + [0.25, 0.25])


def test_a_column_arriving_empty_drifts_and_a_stable_one_does_not():
    rng = np.random.default_rng(1)
    reference = pd.Series(rng.normal(size=5000))
    stable = column_drift("x", reference, pd.Series(rng.normal(size=1000)), categorical=False)
    assert stable.psi < 0.05 and stable.ks_statistic < 0.1 and stable.null_share_current == 0.0
    emptied = column_drift("x", reference, pd.Series([None] * 500 + list(rng.normal(size=500))), False)
    assert emptied.psi > 1.0 and emptied.null_share_current == 0.5
    tiers = column_drift("tier", pd.Series(["a", "b"] * 50), pd.Series(["a"] * 90 + ["c"] * 10), True)
    assert tiers.kind == "categorical" and tiers.ks_statistic is None and tiers.psi > 0.2


@pytest.fixture(scope="module")
def monitored(champion_lakehouse):
    return monitor_drift(champion_lakehouse.settings)


def test_one_row_per_feature_and_one_for_the_score(champion_lakehouse, monitored):
    settings, frame = champion_lakehouse.settings, champion_lakehouse.frame
    rows = read_table(FEATURE_DRIFT, settings).to_pandas().set_index("column_name")
    assert sorted(rows.index) == sorted([*FEATURES, SCORE_COLUMN])
    assert rows.loc[SCORE_COLUMN, "kind"] == "score" and rows.loc["loyalty_tier", "kind"] == "categorical"
    assert set(rows["model_version"]) == {champion_lakehouse.trained.model_version}
    latest = frame[frame["as_of_ts"] == frame["as_of_ts"].max()]
    assert set(rows["current_rows"]) == {len(latest)}
    window = frame[frame["as_of_ts"] <= champion_lakehouse.trained.holdout["train_cutoff"]]
    assert set(rows["reference_rows"]) == {len(window)}
    # the figures are the statistics of the two windows, recomputed here from the training frame
    recency = column_drift("recency_days", window["recency_days"], latest["recency_days"], False)
    assert rows.loc["recency_days", "psi"] == pytest.approx(recency.psi)
    assert rows.loc["recency_days", "null_share_current"] == pytest.approx(
        latest["recency_days"].isna().mean()
    )
    over = rows["psi"] > settings.policy.drift_psi_threshold
    assert rows.loc["tenure_days", "drift_expected"] and rows["drift_expected"].sum() == 1
    assert (rows["is_drifted"] == (over & ~rows["drift_expected"])).all()
    assert monitored.drifted == sorted(rows.index[rows["is_drifted"]], key=[*FEATURES, SCORE_COLUMN].index)


def test_monitoring_again_changes_nothing(champion_lakehouse, monitored):
    again = monitor_drift(champion_lakehouse.settings)
    assert not again.committed and again.snapshot_id == monitored.snapshot_id


def test_a_drifted_week_is_flagged_and_the_step_still_finishes(champion_lakehouse, monitored, caplog):
    settings, frame = champion_lakehouse.settings, champion_lakehouse.frame
    features = get_catalog(settings).load_table("gold.customer_features")
    before = features.current_snapshot().snapshot_id
    week = frame[frame["as_of_ts"] == frame["as_of_ts"].max()].copy()
    week["as_of_ts"] = (week["as_of_ts"] + pd.Timedelta(weeks=1)).dt.tz_convert(None)
    week["recency_days"] = None  # nobody's last order is known any more
    week["orders_90d"] = week["orders_90d"] * 5
    week["tenure_days"] = week["tenure_days"] + 365  # a year on: tenure drifts by construction
    schema = features.schema().as_arrow()
    features.append(pa.Table.from_pandas(week[schema.names], schema=schema, preserve_index=False))
    try:
        result = monitor_drift(settings)
    finally:
        features.manage_snapshots().set_current_snapshot(snapshot_id=before).commit()
    assert {"recency_days", "orders_90d"} <= set(result.drifted)
    tenure = next(c for c in result.columns if c["column_name"] == "tenure_days")
    assert tenure["psi"] > settings.policy.drift_psi_threshold and tenure["drift_expected"]
    assert "tenure_days" not in result.drifted, "recorded, never counted as drifted"
    assert result.committed and result.as_of > monitored.as_of
    assert "PSI above 0.2 for" in result.warning and "recency_days" in result.warning
    assert result.warning in caplog.text
    # the drift is an alert too, once per new figures (a re-run that commits nothing alerts nothing)
    lines = Path(settings.alert_file).read_text(encoding="utf-8").splitlines()
    drift = [alert for alert in map(json.loads, lines) if alert["kind"] == "drift"]
    assert drift and drift[-1]["summary"] == result.warning
    assert len({alert["summary"] for alert in drift}) == len(drift), "the same drift alerted twice"
    assert {"recency_days", "orders_90d"} <= set(drift[-1]["details"]["psi"])
    stored = read_table(FEATURE_DRIFT, settings).to_pandas()
    assert len(stored) == 2 * (len(FEATURES) + 1), "the first week's rows are kept"
