"""`lakehouse monitor`: check the served model on current data; start a retraining run when it calls for one.

One check loads what the model servers logged, measures drift of the latest as-of date against the champion's
training window and the quality of past predictions whose labels are known now, promotes the shadow challenger
if its online answers proved better (`components/monitoring/shadow_promotion.py`), and decides
(`components/monitoring/triggers.py`): a drifted column or a degraded group starts a training run, unless the
last trigger is younger than `retrain_cooldown_hours`. On `local` and `stack` the run is `lakehouse run` in
this process; on `cluster` it is a KFP run submitted to `--host`. Run it on a timer (cron, a systemd timer),
or on a cluster as a recurring KFP run of the `churn-monitoring` pipeline (`schedule_monitoring`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from components.core.alerts import AlertKind, notify
from components.core.settings import Settings
from components.ingestion.prediction_log import load_prediction_log
from components.monitoring.monitor import monitor_drift
from components.monitoring.performance import measure_performance, observe
from components.monitoring.shadow_promotion import ShadowVerdict, judge_shadow
from components.monitoring.triggers import Decision, cooldown, decide, last_trigger, reasons, record_trigger

if TYPE_CHECKING:
    from pipelines.submit import Submitted

#: The recurring check's pipeline and experiment in KFP.
MONITORING = "churn-monitoring"


@dataclass(frozen=True)
class MonitorOutcome:
    """What one check found and did."""

    predictions_loaded: int
    drifted: list[str]
    degraded: list[str]
    decision: Decision
    #: the challenger judged on its shadow answers (None: no challenger), promoted or not
    shadow: ShadowVerdict | None
    #: the run started: its local run folder or its KFP run URL; None when none was
    started: str | None


def check_and_retrain(
    settings: Settings, dry_run: bool = False, host: str | None = None, wait: float = 0.0
) -> MonitorOutcome:
    """One monitoring check; starts a retraining run when it is due (not with `dry_run`).

    Args:
        settings: the profile's settings.
        dry_run: decide and report only; record and start nothing.
        host: the KFP API server a `cluster` retraining run is submitted to.
        wait: seconds a local run waits for another run holding the lakehouse.

    Raises:
        ValueError: a `cluster` retraining is due and no `host` was given (the trigger is not recorded).
    """
    loaded = load_prediction_log(settings)
    drift = monitor_drift(settings)
    observed = observe(settings)  # the log (just loaded) and the labels, read once for both
    performance = measure_performance(settings, observed)
    shadow = judge_shadow(settings, apply=not dry_run, observed=observed)
    now = datetime.now(UTC)
    decision = decide(reasons(drift, performance), last_trigger(settings), cooldown(settings), now)
    started = None
    if decision.retrain and not dry_run:
        if settings.profile == "cluster" and not host:
            raise ValueError(f"{decision.summary}: give the KFP API server with --host to start the run")
        target = f"KFP at {host}" if settings.profile == "cluster" else "lakehouse run"
        record_trigger(settings, drift, decision, target, now)
        notify(settings, AlertKind.RETRAINING, decision.summary, reasons=decision.reasons, run=target)
        started = _submit(settings, host) if settings.profile == "cluster" else _run_here(settings, wait)
    return MonitorOutcome(loaded.rows, drift.drifted, performance.degraded, decision, shadow, started)


def _run_here(settings: Settings, wait: float) -> str:
    from pipelines.run_local import run_local

    return run_local(settings, wait=wait).run_folder


def schedule_monitoring(settings: Settings, host: str, cron: str, dry_run: bool = False) -> Submitted:
    """Submit the `churn-monitoring` pipeline to the KFP API server at `host` as a recurring run on `cron`
    (six fields, seconds first, as KFP reads them): each run is one check as above, inside the cluster.

    Raises:
        ValueError: `settings` are not the `cluster` profile's (a recurring KFP run runs there only).
        pipelines.submit.SubmitError: the server cannot be reached or refuses the submission.
    """
    from pipelines.churn_monitoring import churn_monitoring
    from pipelines.compile import compile_pipeline
    from pipelines.submit import submit

    if settings.profile != "cluster":
        raise ValueError(
            f"a recurring monitoring run runs on a cluster (--profile cluster), not on {settings.profile!r}: "
            "run `lakehouse monitor` on a timer there"
        )
    with tempfile.TemporaryDirectory() as folder:
        package = compile_pipeline(Path(folder) / "churn_monitoring.yaml", settings, churn_monitoring)
        return submit(
            package,
            host,
            {"profile": "cluster", "dry_run": dry_run},
            experiment=MONITORING,
            run_name=f"{MONITORING} every {cron}",
            schedule=cron,
            pipeline_name=MONITORING,
        )


def _submit(settings: Settings, host: str) -> str:
    from pipelines.compile import compile_pipeline
    from pipelines.submit import submit

    with tempfile.TemporaryDirectory() as folder:
        package = compile_pipeline(Path(folder) / "churn_training.yaml", settings)
        done = submit(
            package, host, {"profile": "cluster"}, run_name=f"retraining {datetime.now(UTC):%Y-%m-%d %H:%M}"
        )
    return done.url
