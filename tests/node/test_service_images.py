"""The service images built here run as the platform's own manifests run their upstream images: the pod
template of `infrastructure/kubernetes/base` (user 10001, read-only root, its probes, env and volumes), with
our image in place of upstream's and `emptyDir` in place of the volume claims."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import yaml

from infrastructure.images.build import Built, build_images, import_into_node
from infrastructure.node.node import kubectl
from tests.node.conftest import TIMINGS, RunningNode, restricted_namespace

NAMESPACE = "service-images-test"
BASE = Path(__file__).resolve().parents[2] / "infrastructure" / "kubernetes" / "base"
#: image -> (manifest, workload in it, Secrets its pod reads, by name -> example file)
SERVICES = {
    "postgres": ("postgres.yaml", "postgres", {"postgres": "postgres.env.example"}),
    "redis": ("redis.yaml", "redis", {}),
    "minio": ("object-store.yaml", "minio", {"object-store-root": "object-store-root.env.example"}),
    "trino": ("trino.yaml", "trino-coordinator", {}),
}
#: ConfigMaps replaced for the test: no Polaris runs here, and Trino stops on a catalog it cannot load.
REPLACED_DATA = {"trino-catalog": {}}


def _documents(manifest: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((BASE / manifest).read_text()) if doc]


def _secret(name: str, example: str) -> dict:
    """A Secret with every key of the example file, each a fresh random value."""
    lines = (BASE / "secrets" / example).read_text().splitlines()
    keys = [line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")]
    values = {key: secrets.token_hex(12) for key in keys}
    values |= {"MINIO_ROOT_USER": "lakehouse-root"} if "MINIO_ROOT_USER" in values else {}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": values}


def _referenced_secrets(pod: dict) -> list[dict]:
    """Secrets for the keys the pod's env names one by one (`secretKeyRef`), with random values."""
    keys: dict[str, set[str]] = {}
    for container in pod["spec"]["containers"]:
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                keys.setdefault(ref["name"], set()).add(ref["key"])
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {key: secrets.token_hex(12) for key in sorted(names)},
        }
        for name, names in keys.items()
    ]


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


def _wait_ready(node: RunningNode, pod: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    condition = ["-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]
    while kubectl(node.config, "-n", NAMESPACE, "get", "pod", pod, *condition, check=False).stdout != "True":
        if time.monotonic() > deadline:
            described = kubectl(node.config, "-n", NAMESPACE, "describe", "pod", pod, check=False).stdout
            logs = kubectl(node.config, "-n", NAMESPACE, "logs", pod, check=False).stdout
            pytest.fail(
                f"pod {pod} not Ready in {timeout:.0f} s:\n{described[-2500:]}\nlogs:\n{logs[-2000:]}"
            )
        time.sleep(1)


@pytest.mark.parametrize("short", list(SERVICES))
def test_service_image_runs_its_manifests_pod_until_ready(
    node: RunningNode, namespace: str, short: str
) -> None:
    image = _image(node, short).recipe.name
    manifest, workload, needed = SERVICES[short]
    pod = _pod(manifest, workload, image)
    objects = [_secret(name, example) for name, example in needed.items()] + _referenced_secrets(pod)
    for document in _documents(manifest):
        if document["kind"] == "ConfigMap":
            name = document["metadata"]["name"]
            objects.append({**document, "data": REPLACED_DATA.get(name, document.get("data", {}))})
    started = time.monotonic()
    _apply(node, *objects, pod)
    _wait_ready(node, workload)
    TIMINGS[f"{short}: pod Ready (its manifest's readiness probe)"] = time.monotonic() - started
    if short == "postgres":
        # the first start ran the manifest's init script: the two databases and their owners exist
        query = "select datname from pg_database order by 1"
        command = f'PGPASSWORD="$POSTGRES_PASSWORD" psql -h 127.0.0.1 -U postgres -Atc "{query}"'
        out = kubectl(node.config, "-n", NAMESPACE, "exec", workload, "--", "sh", "-c", command).stdout
        assert {"mlflow", "polaris", "postgres"} <= set(out.split()), out
        whoami = kubectl(node.config, "-n", NAMESPACE, "exec", workload, "--", "id", "-u").stdout
        assert whoami.strip() == "10001"
    if short == "trino":
        # Ready comes from the image's health-check: the server has finished starting, not merely listening
        info = [
            "python3",
            "-c",
            "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/v1/info').read())",
        ]
        out = kubectl(node.config, "-n", NAMESPACE, "exec", workload, "--", *info).stdout
        assert '"starting":false' in out, out


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
