"""Run the `churn-training` pipeline on this machine with `kfp.local` (each step a subprocess)."""

from __future__ import annotations

import json
import os
import socket
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from components.settings import Settings, get_settings, scoped_environ

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
        "Iceberg catalog (PostgreSQL)": settings.catalog_uri,
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

    The S3 keys are checked too when S3 is among the services: they only ever come from
    AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.

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
    unset = [name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not os.environ.get(name)]
    if settings.s3_endpoint and unset and (only is None or "S3" in only):
        down.append(f"S3 at {settings.s3_endpoint} without credentials ({' and '.join(unset)} not set)")
    if down:
        hint = "check the LAKEHOUSE_* endpoints of the profile"
        if settings.profile == "stack":
            hint = (
                'start them: `infrastructure/local/stack.sh up; eval "$(infrastructure/local/stack.sh env)"`'
            )

        raise ServicesUnavailable(
            f"profile {settings.profile!r}: no answer from " + "; ".join(down) + f": {hint}"
        )


def run_local(settings: Settings | None = None) -> dict:
    """Execute every step of the pipeline locally, in order; raises if a step fails.

    The steps reach the services of the profile (for `stack`: PostgreSQL, S3, Trino, Redis, MLflow); they
    are checked first, so a stopped service is named at once rather than after a step's retries.

    Returns:
        the run's summary (:func:`run_summary`): champion version, decision, artifact paths.
    """
    from kfp import local

    from pipelines.churn_training import churn_training

    settings = settings or get_settings()
    require_services(settings)
    settings.ensure_dirs()
    # kfp.local notes that display names are ignored locally and that the platform image is not
    # used by the subprocess runner; both are expected here (the subprocesses use this virtualenv)
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(settings.home / "kfp"),
        raise_on_error=True,
    )
    with scoped_environ(settings.env()):  # the step subprocesses inherit the profile's endpoints
        task = churn_training(profile=settings.profile)
    return run_summary(task.outputs)


def run_summary(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """What a local run produced: the champion's version and decision, and where each output artifact is.

    Args:
        outputs: the pipeline task's outputs (KFP artifacts whose `uri` is a local path).

    Returns:
        `model_version` (the champion after the run), `decision`, `reason`, `drifted` (column names),
        `run_folder` (the run's folder under the pipeline root: one subfolder per step, one file per
        artifact) and `artifacts` (output name -> path).
    """
    champion = json.loads(Path(outputs["champion"].uri).read_text())
    drift = json.loads(Path(outputs["drift"].uri).read_text())
    return {
        "model_version": champion["champion_version"],
        "decision": champion["decision"],
        "reason": champion["reason"],
        "drifted": drift["drifted"],
        "run_folder": str(Path(outputs["run_report"].uri).parent.parent),
        "artifacts": {name: artifact.uri for name, artifact in outputs.items()},
    }
