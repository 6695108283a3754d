"""Retraining triggers: when drift or a quality drop calls for a new model, at most once per cooldown.

A trigger is recorded in `gold.retraining_triggers` before the run it starts, so a run that takes long or
fails still holds the cooldown: the next check within `policy.retrain_cooldown_hours` of it reports what it
found and starts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from components.core.catalog import get_catalog, read_columns
from components.core.results import Drift, Performance
from components.core.settings import GOLD, Settings
from components.core.tables import ensure_table

RETRAINING_TRIGGERS = f"{GOLD}.retraining_triggers"
RETRAINING_TRIGGERS_SCHEMA = pa.schema(
    [
        ("triggered_at", pa.timestamp("us", tz="UTC")),
        ("profile", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.int64()),
        ("as_of_ts", pa.timestamp("us")),
        ("reasons", pa.string()),
        ("started", pa.string()),
    ]
)


@dataclass(frozen=True)
class Decision:
    """Whether to start a retraining run, why, and until when an earlier trigger holds it back."""

    retrain: bool
    reasons: list[str]
    #: set when the checks called for a run but the cooldown of the last trigger has not passed
    cooldown_until: datetime | None = None

    @property
    def summary(self) -> str:
        if not self.reasons:
            return "no drift and no quality drop: no retraining"
        why = "; ".join(self.reasons)
        if self.cooldown_until is not None:
            until = f"{self.cooldown_until:%Y-%m-%d %H:%M} UTC"
            return f"retraining due ({why}) but held back until {until} (cooldown)"
        return f"retraining: {why}"


def reasons(drift: Drift, performance: Performance) -> list[str]:
    """What calls for a new model: drifted columns (none drifts by construction), degraded groups."""
    found = []
    if drift.drifted:
        found.append(f"drift at {drift.as_of[:10]} in {', '.join(drift.drifted)}")
    if performance.degraded:
        found.append(f"quality drop in {', '.join(performance.degraded)}")
    return found


def decide(found: list[str], last_trigger: datetime | None, cooldown: timedelta, now: datetime) -> Decision:
    """Retrain when something was found and the last trigger is at least `cooldown` old (or there is none)."""
    if not found:
        return Decision(False, [])
    if last_trigger is not None and now < last_trigger + cooldown:
        return Decision(False, found, cooldown_until=last_trigger + cooldown)
    return Decision(True, found)


def last_trigger(settings: Settings) -> datetime | None:
    """When the last retraining was triggered for this profile's model, or None."""
    rows = read_columns(RETRAINING_TRIGGERS, ["triggered_at", "model_name"], settings)
    if rows is None:
        return None
    times = [r["triggered_at"] for r in rows.to_pylist() if r["model_name"] == settings.model_name]
    return max(times, default=None)


def record_trigger(settings: Settings, drift: Drift, decision: Decision, started: str, now: datetime) -> None:
    """Append the trigger (before its run starts: the cooldown holds even if the run fails)."""
    table = ensure_table(get_catalog(settings), RETRAINING_TRIGGERS, RETRAINING_TRIGGERS_SCHEMA)
    row = {
        "triggered_at": now.astimezone(UTC),
        "profile": settings.profile,
        "model_name": settings.model_name,
        "model_version": drift.model_version,
        "as_of_ts": datetime.fromisoformat(drift.as_of).replace(tzinfo=None),
        "reasons": "; ".join(decision.reasons),
        "started": started,
    }
    table.append(pa.Table.from_pylist([row], schema=RETRAINING_TRIGGERS_SCHEMA))


def cooldown(settings: Settings) -> timedelta:
    return timedelta(hours=settings.policy.retrain_cooldown_hours)
