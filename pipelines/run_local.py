"""Run the `churn-training` pipeline on this machine with `kfp.local` (each step a subprocess)."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import sys
import warnings
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from components.core.alerts import AlertKind, notify
from components.core.results import Drift, Evaluation, Performance, Promotion, StepResult
from components.core.settings import Settings, get_settings, scoped_environ

#: Default ports of URLs that name none.
_DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379, "postgresql": 5432}


class ServicesUnavailable(RuntimeError):
    """Raised when services the profile points at do not accept connections."""


#: What the model server talks to: the registry (model and artifacts, proxied by the MLflow server) and
#: the online store. Not the catalog, S3 or Trino.
SERVING_SERVICES = ("MLflow", "Redis")


def service_endpoints(settings: Settings) -> dict[str, tuple[str, int]]:
    """The network services the profile's steps and model server talk to, as `name -> (host, port)`.

    Empty for the `local` profile, whose catalog, registry and stores are files.
    """
    urls = {
        "Iceberg catalog": settings.catalog_uri,
        "S3": settings.s3_endpoint,
        "MLflow": settings.mlflow_tracking_uri,
        "Redis": settings.redis_url if settings.feast_online_store == "redis" else "",
    }
    endpoints: dict[str, tuple[str, int]] = {}
    for name, url in urls.items():
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0]
        if parts.hostname and scheme in _DEFAULT_PORTS:
            endpoints[name] = (parts.hostname, parts.port or _DEFAULT_PORTS[scheme])
    if settings.dbt_target == "trino":
        endpoints["Trino"] = (settings.trino_host, settings.trino_port)
    return endpoints


def require_services(settings: Settings, timeout: float = 2.0, only: Collection[str] | None = None) -> None:
    """Fail fast, naming each one, when a service of the profile does not accept TCP connections.

    The S3 keys are checked too when S3 is among the services: they come from
    AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the `stack` env file. A REST catalog must also grant the
    OAuth2 client a token.

    Args:
        settings: the profile's settings.
        timeout: seconds to wait for each connection.
        only: names of `service_endpoints` to check (for example `SERVING_SERVICES`); all when None.

    Raises:
        ServicesUnavailable: with every unreachable service, its address and how to start the stack.
    """
    endpoints = service_endpoints(settings)
    if only is not None:
        endpoints = {name: address for name, address in endpoints.items() if name in only}
    down = []
    for name, (host, port) in endpoints.items():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            down.append(f"{name} at {host}:{port} ({exc.strerror or exc})")
    unset = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not settings.credential(name)]
    if settings.s3_endpoint and unset and (only is None or "S3" in only):
        down.append(f"S3 at {settings.s3_endpoint} without credentials ({' and '.join(unset)} not set)")
    if down:
        hint = "check the LAKEHOUSE_* endpoints of the profile"
        if settings.profile == "stack":
            hint = "start them: `make stack-up` (its env file tells this profile where they are)"

        raise ServicesUnavailable(
            f"profile {settings.profile!r}: no answer from " + "; ".join(down) + f": {hint}"
        )
    if "Iceberg catalog" in endpoints and settings.catalog_type == "rest":
        from components.core.rest_catalog import CatalogUnavailable, fetch_token

        try:  # a wrong client secret is named now, not inside the first step
            fetch_token(settings)
        except CatalogUnavailable as exc:
            raise ServicesUnavailable(f"profile {settings.profile!r}: {exc}") from None


class StepFailed(RuntimeError):
    """Raised when a step of a local run fails; the message names the step and the error it ended with."""


def run_local(
    settings: Settings | None = None, full_refresh: bool = False, wait: float | None = 0.0
) -> RunSummary:
    """Execute every step of the pipeline locally, in order; raises if a step fails.

    The steps reach the services of the profile (for `stack`: the REST catalog, S3, Trino, Redis, MLflow);
    they are checked first, so a stopped service is named at once rather than after a step's retries. The run
    holds the lakehouse's run lock (`pipelines/run_lock.py`): a second run fails fast or waits.

    Args:
        settings: profile settings; the default profile when None.
        full_refresh: rebuild silver and gold from bronze (`dbt build --full-refresh`).
        wait: seconds to wait for a run that holds the lakehouse; 0 fails at once, None waits.

    Returns:
        the run's summary (:func:`run_summary`): champion version, decision, artifact paths.

    Raises:
        ServicesUnavailable: a service of the profile does not answer.
        LakehouseBusy: another run holds the lakehouse.
        StepFailed: a step failed (its own output, printed above, has the whole story).
    """
    from kfp import local

    from pipelines.churn_training import churn_training
    from pipelines.run_lock import lakehouse_lock

    settings = settings or get_settings()
    require_services(settings)
    settings.ensure_dirs()
    # kfp.local notes that display names are ignored locally and that the platform image is not
    # used by the subprocess runner; both are expected here (the subprocesses use this virtualenv)
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    output = _Tail()
    with lakehouse_lock(settings, wait=wait), _run_temp(settings) as temp:
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(settings.home / "kfp"),
            workspace_root=str(temp / "workspace"),
            raise_on_error=True,
        )
        # the step subprocesses inherit the profile's endpoints and the run's temporary folder; kfp.local
        # prints their output
        with scoped_environ({**settings.env(), "TMPDIR": str(temp)}), redirect_stdout(output):
            try:
                task = churn_training(profile=settings.profile, full_refresh=full_refresh)
            except RuntimeError as exc:
                summary = _failure_summary(str(exc), output.lines)
                failed = f"churn-training run failed: {summary.splitlines()[0]}"
                notify(settings, AlertKind.RUN_FAILED, failed)
                raise StepFailed(summary) from None
    return run_summary(task.outputs)


@contextmanager
def _run_temp(settings: Settings) -> Iterator[Path]:
    """The run's temporary folder in the state folder, emptied before and removed after the run.

    kfp.local makes a workspace folder per run, and each step's command a folder for its program
    (`mktemp -d`), in the system's temporary folder, and leaves the latter behind (and the former when the
    run is killed): ten folders a run. Here they go where the run's lock holds, and a killed run's are
    removed by the next run.
    """
    temp = settings.home / "kfp" / "tmp"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


@dataclass(frozen=True)
class RunSummary(StepResult):
    """What a local run produced: the champion and its decision, drift, and where each output artifact is."""

    #: the champion after the run, and the evaluation's decision on this run's candidate
    model_version: int
    decision: Promotion
    reason: str
    #: the columns whose PSI crossed the threshold
    drifted: list[str]
    #: past predictions measured against their labels (groups of `gold.model_performance`), and the degraded
    quality_groups: int
    degraded: list[str]
    #: the run's folder under the pipeline root: one subfolder per step, one file per artifact
    run_folder: str
    #: output name -> path
    artifacts: dict[str, str]


def run_summary(outputs: Mapping[str, Any]) -> RunSummary:
    """The summary of a local run from its pipeline task's outputs (KFP artifacts whose `uri` is a path)."""
    champion = Evaluation.from_dict(json.loads(Path(outputs["champion"].uri).read_text()))
    drift = Drift.from_dict(json.loads(Path(outputs["drift"].uri).read_text()))
    quality = Performance.from_dict(json.loads(Path(outputs["quality"].uri).read_text()))
    return RunSummary(
        model_version=champion.champion_version,
        decision=champion.decision,
        reason=champion.reason,
        drifted=drift.drifted,
        quality_groups=len(quality.groups),
        degraded=quality.degraded,
        run_folder=str(Path(outputs["run_report"].uri).parent.parent),
        artifacts={name: artifact.uri for name, artifact in outputs.items()},
    )


class _Tail(io.TextIOBase):
    """Pass writes through to the real stdout and keep the last lines, to name why a step failed."""

    def __init__(self, keep: int = 400) -> None:
        self.target = sys.stdout
        self.lines: deque[str] = deque(maxlen=keep)

    def write(self, text: str) -> int:
        self.target.write(text)
        self.lines.extend(text.splitlines())
        return len(text)

    def flush(self) -> None:
        self.target.flush()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION_LINE = re.compile(
    r"^\s*(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Failed|Busy|Unavailable)): (.+)$"
)


def _failure_summary(message: str, lines: Collection[str]) -> str:
    """`step 'ingest' failed: SourceFileError: data/orders.csv:3: ...` from kfp.local's message and output."""
    message = _ANSI.sub("", message)
    step = re.search(r"Inner task failed: '([^']+)'", message)
    errors = [m for m in (_EXCEPTION_LINE.match(_ANSI.sub("", line)) for line in lines) if m]
    cause = f"{errors[-1].group(1)}: {errors[-1].group(2).strip()}" if errors else message
    return f"step {step.group(1)!r} failed: {cause}" if step else cause
