"""Offline checks of the KServe InferenceService template in `serving/inferenceservice.yaml`."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.core.settings import REPO_ROOT, SERVED_MODEL_NAME

MANIFEST = Path(REPO_ROOT, "serving", "inferenceservice.yaml")


def _container() -> dict:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"
    assert manifest["metadata"] == manifest["metadata"] | {
        "name": SERVED_MODEL_NAME,
        "namespace": "lakehouse",
    }
    (container,) = manifest["spec"]["predictor"]["containers"]
    return container


def test_predictor_runs_the_model_server_on_the_cluster_profile():
    container = _container()
    assert container["command"] == ["python", "-m", "serving.server"]
    args = container["args"]
    assert args[args.index("--profile") + 1] == "cluster"
    port = int(args[args.index("--port") + 1])
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port}
    assert container["image"] == "${LAKEHOUSE_IMAGE}"


def test_credentials_come_from_a_secret_and_none_is_written_down():
    container = _container()
    assert container["envFrom"] == [
        {"secretRef": {"name": "model-server-credentials"}},
        {"secretRef": {"name": "lakehouse-alerts", "optional": True}},
    ]
    names = {env["name"] for env in container["env"]}
    assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert all("value" in env or "valueFrom" in env for env in container["env"])
