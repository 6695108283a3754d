"""Retraining decisions: what calls for a run, and the cooldown after a trigger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from components.core.results import Drift, Performance
from components.monitoring.triggers import decide, reasons

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def _drift(drifted: list[str]) -> Drift:
    return Drift(
        "gold.feature_drift", 1, True, 3, "2026-05-31T00:00:00", "", "", 0.2, drifted, 0.1, 0.1, [], None
    )


def _performance(degraded: list[str]) -> Performance:
    return Performance("gold.model_performance", 1, True, 0.05, [], degraded, None)


def test_drift_or_a_quality_drop_calls_for_a_run_and_nothing_else_does():
    assert reasons(_drift([]), _performance([])) == []
    assert reasons(_drift(["orders_90d"]), _performance([])) == ["drift at 2026-05-31 in orders_90d"]
    found = reasons(_drift([]), _performance(["version 3 online champion 2026-04-26"]))
    assert found == ["quality drop in version 3 online champion 2026-04-26"]


def test_a_run_is_started_at_most_once_per_cooldown():
    found = ["drift at 2026-05-31 in orders_90d"]
    assert decide([], None, DAY, NOW).retrain is False
    assert decide(found, None, DAY, NOW).retrain is True
    held = decide(found, NOW - timedelta(hours=3), DAY, NOW)
    assert not held.retrain and held.cooldown_until == NOW + timedelta(hours=21)
    assert "held back until 2026-06-02 09:00 UTC (cooldown)" in held.summary
    assert decide(found, NOW - DAY, DAY, NOW).retrain is True, "a cooldown that has passed holds nothing"
