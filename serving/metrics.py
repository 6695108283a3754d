"""Prometheus metrics of the model server, summed over all its worker processes on one scrape of `/metrics`.

prometheus_client keeps each process's values in files of a shared folder when PROMETHEUS_MULTIPROC_DIR is
set before it is first imported (KServe's own metrics are created when `kserve` is imported):
:func:`use_shared_folder` sets it, the first thing a server does. `/metrics` (answered by the request guard)
then reads every process's files: KServe's series (`request_predict_seconds`, ...) beside the platform's
(`lakehouse_*`, below). A process that exits keeps its counters in the sum, as Prometheus expects of a
counter; gauges count live processes only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Latency buckets (seconds): a request takes milliseconds, an online-store read a fraction of one.
REQUEST_BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.5)
STORE_BUCKETS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0)


def use_shared_folder() -> Path:
    """Give this server (and the workers it forks) a new, empty metrics folder; before importing KServe.

    The folder is named after this process; those of servers that died without removing theirs (SIGKILL)
    are removed first.
    """
    root = Path(tempfile.gettempdir())
    for stale in root.glob("lakehouse-metrics-*-*"):
        pid = stale.name.removeprefix("lakehouse-metrics-").split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"lakehouse-metrics-{os.getpid()}-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_shared_folder() -> None:
    folder = os.environ.get(MULTIPROC_ENV)
    if folder and Path(folder).name.startswith("lakehouse-metrics-"):
        shutil.rmtree(folder, ignore_errors=True)


@cache
def series() -> Any:
    """The platform's series (created at first use, after the folder is set)."""
    from types import SimpleNamespace

    from prometheus_client import Counter, Gauge, Histogram

    return SimpleNamespace(
        requests=Counter(
            "lakehouse_requests",
            "Inference requests answered, by protocol and status",
            ["protocol", "status"],
        ),
        latency=Histogram(
            "lakehouse_request_seconds",
            "Time from a request's arrival to its answer, by protocol",
            ["protocol"],
            buckets=REQUEST_BUCKETS,
        ),
        store=Histogram(
            "lakehouse_online_store_seconds",
            "Time of one online-store read of a request",
            buckets=STORE_BUCKETS,
        ),
        customers=Counter(
            "lakehouse_customers", "Customers asked for, by whether the store knew them", ["known"]
        ),
        version=Gauge(
            "lakehouse_model_version",
            "The registry version a role (champion, challenger) is served by, per live process",
            ["role"],
            multiprocess_mode="livemax",
        ),
        shadow=Counter(
            "lakehouse_shadow_answers",
            "Customers the challenger scored beside the champion, by whether they agree (same side of 0.5)",
            ["agreement"],
        ),
        shadow_failures=Counter("lakehouse_shadow_failures", "Requests the challenger failed to score"),
        log_dropped=Counter("lakehouse_prediction_log_dropped", "Predictions the log dropped (queue full)"),
    )


@cache
def _child(name: str, *labels: str) -> Any:
    """The child of series `name` for `labels`, made once per process (prometheus_client's `labels()`
    checks and looks its arguments up on every call: a few microseconds a request, several times over)."""
    return getattr(series(), name).labels(*labels)


def answered(protocol: str, status: str, seconds: float) -> None:
    """Count one inference request answered with `status` and time it, by protocol."""
    _child("requests", protocol, status).inc()
    _child("latency", protocol).observe(seconds)


def store_read(seconds: float, known: int, unknown: int) -> None:
    """Time one online-store read (a failed one too, with no customers) and count the customers it knew and
    did not."""
    series().store.observe(seconds)
    if known:
        _child("customers", "true").inc(known)
    if unknown:  # a counter written only when it moves: each write is a write to a shared file
        _child("customers", "false").inc(unknown)


def exposition(accept: str | None) -> tuple[bytes, str]:
    """Every process's series, summed, in the format the scraper asks for."""
    from prometheus_client import CollectorRegistry, exposition
    from prometheus_client.multiprocess import MultiProcessCollector

    encoder, content_type = exposition.choose_encoder(accept or "")
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:  # not set up for several processes: this one's series
        from prometheus_client import REGISTRY

        registry = REGISTRY
    return encoder(registry), content_type


def mark_dead(pid: int) -> None:
    """Drop a worker that exited from the live gauges."""
    from prometheus_client import multiprocess

    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
