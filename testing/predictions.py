"""Answered requests as a model server hands them to its prediction log, for tests of the log and loader."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from components.core.settings import Settings
from serving.prediction_log import Scored

#: When the helper's answers were logged: 2025-12-06, a fixed day, so they land in one partition.
LOGGED_AT_US = 1_765_000_000_000_000


def answered(request: str, customers: list[int], **changes: Any) -> Scored:
    """Request `request` of `customers`, each known and scored 0.25 by version 3 on two features of the
    as-of date 2025-11-30."""
    values: dict[str, Any] = {
        "request_id": request,
        "logged_at_us": LOGGED_AT_US,
        "model_name": "churn_propensity",
        "model_version": "3",
        "role": "champion",
        "protocol": "v1",
        "customer_ids": customers,
        "probabilities": [0.25] * len(customers),
        "known": [True] * len(customers),
        "rows": [{"tenure_days": 10.0, "region": "north"}] * len(customers),
        "latency_ms": 1.5,
        "features_as_of": ["2025-11-30 00:00:00"] * len(customers),
    }
    return Scored(**(values | changes))


def own_log(settings: Settings, folder: Path) -> Settings:
    """`settings` with a prediction log of their own in `folder` (its spool and sealed segments)."""
    return dataclasses.replace(
        settings, prediction_log_spool=str(folder / "spool"), prediction_log_uri=str(folder / "sealed")
    )
