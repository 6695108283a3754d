"""The REST catalog image built here stops at once on a missing setting, naming it.

That the service images run as the manifests run them (user 10001, read-only root, probes, env, volumes,
PostgreSQL's init script, Trino's health-check) is proven by `test_platform.py`, which applies the whole
`node` overlay with them and waits until every pod is Ready and the pipeline has run on them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from infrastructure.images.build import Built, build_images, import_into_node
from infrastructure.node.node import kubectl
from tests.node.conftest import TIMINGS, RunningNode, restricted_namespace

NAMESPACE = "service-images-test"
BASE = Path(__file__).resolve().parents[2] / "infrastructure" / "kubernetes" / "base"


def _documents(manifest: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((BASE / manifest).read_text()) if doc]


def _pod(manifest: str, workload: str, image: str) -> dict:
    """The workload's pod template as a Pod: our image, never pulled; claims become `emptyDir`."""
    (found,) = [
        doc
        for doc in _documents(manifest)
        if doc["kind"] in ("StatefulSet", "Deployment") and doc["metadata"]["name"] == workload
    ]
    template = found["spec"]["template"]
    spec = template["spec"]
    container = spec["containers"][0]
    container["image"], container["imagePullPolicy"] = image, "Never"
    present = {volume["name"] for volume in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        if mount["name"] not in present:
            spec.setdefault("volumes", []).append({"name": mount["name"], "emptyDir": {}})
    metadata = {"name": workload, "labels": template["metadata"]["labels"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _apply(node: RunningNode, *objects: dict) -> None:
    documents = [{**item, "metadata": {**item["metadata"], "namespace": NAMESPACE}} for item in objects]
    kubectl(node.config, "apply", "-f", "-", input=yaml.safe_dump_all(documents))


@pytest.fixture(scope="module")
def namespace(node: RunningNode) -> str:
    return restricted_namespace(node, NAMESPACE)


def _image(node: RunningNode, short: str) -> Built:
    """One service image (built unless cached), imported into the node."""
    started = time.monotonic()
    (built,) = build_images([short], log=lambda line: None)
    what = "built" if built.built else "found in the cache"
    TIMINGS[f"{short}: image {what}"] = time.monotonic() - started
    started = time.monotonic()
    import_into_node([built], node.config, log=lambda line: None)
    TIMINGS[f"{short}: image imported"] = time.monotonic() - started
    return built


def test_rest_catalog_image_starts_its_server_and_names_a_missing_setting(
    node: RunningNode, namespace: str
) -> None:
    """Without its client id the server stops at once, naming the variable: Java, its classpath and the
    launcher are in place (a full run needs PostgreSQL and S3, as in the `stack` profile)."""
    image = _image(node, "rest-catalog").recipe.name
    pod = _pod("postgres.yaml", "postgres", image)
    container = pod["spec"]["containers"][0]
    for field in ("env", "envFrom", "readinessProbe", "livenessProbe", "ports", "volumeMounts"):
        container.pop(field, None)
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    pod["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    pod["spec"]["restartPolicy"] = "Never"
    pod["metadata"] = {"name": "rest-catalog", "labels": {"app.kubernetes.io/name": "rest-catalog"}}
    _apply(node, pod)
    deadline = time.monotonic() + 180
    phase = ["-o", "jsonpath={.status.phase}"]
    while kubectl(node.config, "-n", NAMESPACE, "get", "pod", "rest-catalog", *phase).stdout not in (
        "Succeeded",
        "Failed",
    ):
        assert time.monotonic() < deadline, "the REST catalog pod never finished"
        time.sleep(1)
    logs = kubectl(node.config, "-n", NAMESPACE, "logs", "rest-catalog").stdout
    assert "REST_CLIENT_ID" in logs, logs
