"""The one client of the model server: the request bodies of both protocols and where they go, waiting until
a server is ready, and a server started in a child process for a short job (the demo, the deploy step off the
cluster, the tests and the benchmarks). Light: it imports no model, no Feast, no KServe."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.core.settings import REPO_ROOT, SERVED_MODEL_NAME, Settings, get_settings

READY_PATH = "/v2/health/ready"
V1_PATH = f"/v1/models/{SERVED_MODEL_NAME}:predict"
V2_PATH = f"/v2/models/{SERVED_MODEL_NAME}/infer"


def v1_body(customer_ids: Sequence[int]) -> dict:
    """A V1 (KServe) request for `customer_ids`."""
    return {"instances": [{"customer_id": c} for c in customer_ids]}


def v2_body(customer_ids: Sequence[int]) -> dict:
    """An Open Inference Protocol (V2) request: one INT64 tensor `customer_id`."""
    ids = list(customer_ids)
    return {"inputs": [{"name": "customer_id", "shape": [len(ids)], "datatype": "INT64", "data": ids}]}


def prediction_request(protocol: Literal["v1", "v2"], customer_ids: Sequence[int]) -> tuple[str, dict]:
    """The path and the body of a prediction for `customer_ids` in `protocol`."""
    return (V1_PATH, v1_body(customer_ids)) if protocol == "v1" else (V2_PATH, v2_body(customer_ids))


def predict(base_url: str, customer_ids: Sequence[int], protocol: Literal["v1", "v2"] = "v1") -> dict:
    """Ask the server at `base_url` for the churn probability of `customer_ids`; raise on an error status."""
    import httpx

    path, body = prediction_request(protocol, customer_ids)
    answer = httpx.post(base_url + path, json=body, timeout=30)
    answer.raise_for_status()
    return answer.json()


@dataclass
class RunningServer:
    """A model server started by :func:`start_in_background`; stop it with :meth:`stop`."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def stop(self, timeout: float = 30.0) -> int:
        """Terminate the server process and wait for it; returns its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_in_background(
    settings: Settings | None = None,
    host: str | None = None,
    port: int | None = None,
    timeout: float = 300.0,
    log_path: Path | None = None,
    grpc_port: int | None = None,
    workers: int = 1,
) -> RunningServer:
    """Start `python -m serving.server` in a child process and wait until it answers `/v2/health/ready`.

    Args:
        settings: Settings handed to the child through `settings.env()` (default: `get_settings()`).
        host: Address to bind (default: settings.serving_host).
        port: HTTP port (default: settings.serving_port).
        timeout: Seconds to wait for readiness; loading imports Feast, MLflow and KServe.
        log_path: Where the server's stdout/stderr go (default: `<home>/serving/server-<port>.log`).
        grpc_port: Serve the V2 protocol over gRPC on this port too (default: no gRPC).
        workers: HTTP worker processes.

    Returns:
        The running server, with its base URL (`http://host:port`).

    Raises:
        RuntimeError: If the process exits or is not ready in time (the log tail says why).
    """
    import httpx

    settings = settings or get_settings()
    host = host or settings.serving_host
    port = port or settings.serving_port
    log_path = log_path or settings.home / "serving" / f"server-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    client_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{client_host}:{port}"
    env = {**os.environ, **settings.env()}
    command = [sys.executable, "-m", "serving.server", "--profile", settings.profile, "--host", host]
    command += ["--port", str(port), "--workers", str(workers)]
    if grpc_port:
        command += ["--grpc-port", str(grpc_port)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = RunningServer(process=process, url=url, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"model server exited with code {process.returncode} before it was ready:\n{_tail(log_path)}"
            )
        try:
            if httpx.get(url + READY_PATH, timeout=2.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(
        f"model server {SERVED_MODEL_NAME!r} not ready at {url} after {timeout:.0f} s:\n{_tail(log_path)}"
    )


@contextmanager
def running_server(
    settings: Settings | None = None, host: str | None = None, port: int | None = None, timeout: float = 300.0
) -> Iterator[str]:
    """`with running_server(settings) as base_url:` a ready model server in a child process, stopped after."""
    server = start_in_background(settings, host=host, port=port, timeout=timeout)
    try:
        yield server.url
    finally:
        server.stop()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
