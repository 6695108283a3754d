"""MLflow as the manifests run it answers clients that address it by its Service name, and readiness says so.

MLflow refuses a Host header it does not allow with 403 "Invalid Host header" on every path but `/health`
(default: localhost and private IPs), so a probe of `/health` passed while every client of
`http://mlflow:5000` failed. Here the manifest's own command and environment run a real `mlflow server`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from components.core.ports import free_ports
from infrastructure.local.procs import ProcessRecord, log_tail, spawn, start_ticks, stop, wait_until

CLIENT_HOSTS = ["mlflow:5000", "mlflow.lakehouse.svc.cluster.local:5000", "mlflow.lakehouse:5000", "mlflow"]


def _mlflow(objects: list[dict]) -> dict:
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow")
    return deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def manifest_mlflow(rendered: dict[str, list[dict]], tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """`mlflow server` with the dev overlay's command and plain environment, on loopback, SQLite behind it."""
    container = _mlflow(rendered["dev"])
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    home = tmp_path_factory.mktemp("mlflow")
    (port,) = free_ports(1)
    command = list(container["command"])
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port)), ("--workers", "1")):
        command[command.index(flag) + 1] = value
    command[0] = str(Path(sys.executable).parent / command[0])
    command += ["--backend-store-uri", f"sqlite:///{home}/mlflow.db", "--artifacts-destination", str(home)]
    local = {k: v for k, v in env.items() if not k.startswith(("MLFLOW_ARTIFACTS", "MLFLOW_S3"))}  # no S3
    log_path = home / "server.log"
    pid = spawn(command, log_path, env={**os.environ, **local, "HOME": str(home)}, cwd=home)
    record = ProcessRecord(pid, start_ticks(pid) or 0, port, command)
    url = f"http://127.0.0.1:{port}"
    try:
        alive = lambda: start_ticks(pid) == record.start_ticks  # noqa: E731
        if not wait_until(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 120, alive):
            pytest.fail(f"mlflow server not up within 120 s:\n{log_tail(log_path)}")
        yield url, container
    finally:
        stop(record)


def test_every_overlay_allows_the_same_service_names(rendered):
    allowed = {
        overlay: {e["name"]: e.get("value") for e in _mlflow(objects)["env"]}["MLFLOW_SERVER_ALLOWED_HOSTS"]
        for overlay, objects in rendered.items()
    }
    assert len(set(allowed.values())) == 1
    assert {"mlflow:5000", "mlflow.lakehouse.svc.cluster.local:5000"} <= set(allowed["dev"].split(","))


@pytest.mark.parametrize("host", CLIENT_HOSTS)
def test_clients_that_use_the_service_name_are_answered(manifest_mlflow, host):
    url, _ = manifest_mlflow
    search = f"{url}/api/2.0/mlflow/experiments/search"
    answer = httpx.post(search, json={"max_results": 1}, headers={"Host": host}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["experiments"][0]["name"] == "Default"


def test_other_hosts_are_still_refused(manifest_mlflow):
    url, _ = manifest_mlflow
    answer = httpx.get(f"{url}/api/2.0/mlflow/experiments/search", headers={"Host": "rebound.example.com"})
    assert answer.status_code == 403
    assert httpx.get(f"{url}/health", headers={"Host": "rebound.example.com"}).status_code == 200


def test_the_readiness_probe_asks_what_clients_ask(manifest_mlflow):
    """The probe's request goes through host validation: it fails whenever a client of the Service would."""
    url, container = manifest_mlflow
    probe = container["readinessProbe"]["httpGet"]
    headers = {item["name"]: item["value"] for item in probe.get("httpHeaders", [])}
    assert probe["path"].startswith("/api/") and headers["Host"] == "mlflow:5000"
    assert httpx.get(f"{url}{probe['path']}", headers=headers, timeout=30).status_code == 200
    refused = httpx.get(f"{url}{probe['path']}", headers={"Host": "rebound.example.com"}, timeout=30)
    assert refused.status_code == 403
