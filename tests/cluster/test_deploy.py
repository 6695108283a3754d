"""`lakehouse deploy` against the real API server: create, update on a new champion, wait, and the faults."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from components.core.settings import get_settings
from components.deployment.deploy import MODEL_VERSION_ENV, VERSION_ANNOTATION, deploy_to_cluster
from components.deployment.inference_service import DeployError
from infrastructure.apiserver.server import ApiServer
from pipelines.cli import main
from testing.manifests import dump

IMAGE = "registry.example.org/lakehouse-mlops:9.9.9"


@pytest.fixture(scope="module")
def cluster_env(lakehouse_namespace: ApiServer, tmp_path_factory: pytest.TempPathFactory):
    """`cluster` settings whose MLflow registry is a real SQLite one here; the predictor's Secret created."""
    home = tmp_path_factory.mktemp("deploy")
    env = {
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
        "LAKEHOUSE_MLFLOW_ARTIFACT_ROOT": str(home / "mlartifacts"),
        "LAKEHOUSE_IMAGE": IMAGE,
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "model-server-credentials", "namespace": "lakehouse"},
        "stringData": {"AWS_ACCESS_KEY_ID": "deploy-test", "AWS_SECRET_ACCESS_KEY": "deploy-test-secret"},
    }
    lakehouse_namespace.apply(dump([secret]))
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield get_settings("cluster")


def _register(settings, champion: int | None, versions: int = 3) -> None:
    """Registered versions 1..`versions` of the churn model (real registry rows), `champion` aliased."""
    from mlflow import MlflowClient

    client = MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    name = settings.model_name
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    source = Path(settings.mlflow_artifact_root, "model")
    source.mkdir(parents=True, exist_ok=True)
    while len(client.search_model_versions(f"name = '{name}'")) < versions:
        client.create_model_version(name, source.as_uri())
    if champion is None:
        client.delete_registered_model_alias(name, "champion")
    else:
        client.set_registered_model_alias(name, "champion", str(champion))


def _ensure_deployed(settings, api: ApiServer) -> None:
    """An InferenceService to leave untouched (when a test runs on its own)."""
    if api.kubectl("get", "inferenceservice", "churn", "-n", "lakehouse", check=False).returncode != 0:
        deploy_to_cluster(settings, model_version="1", wait=False, kubeconfig=str(api.kubeconfig))


def _stored(api: ApiServer) -> dict:
    done = api.kubectl("get", "inferenceservice", "churn", "-n", "lakehouse", "-o", "json")
    return json.loads(done.stdout)


def _mark_ready(api: ApiServer, after: float = 1.0) -> threading.Thread:
    """Play KServe's controller once: after `after` s, report Ready for the stored generation."""

    def ready() -> None:
        time.sleep(after)
        generation = _stored(api)["metadata"]["generation"]
        status = {
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        }
        api.kubectl(
            "patch",
            "inferenceservice",
            "churn",
            "-n",
            "lakehouse",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )

    thread = threading.Thread(target=ready)
    thread.start()
    return thread


def test_deploy_creates_the_inference_service_then_updates_it_for_a_new_champion(
    cluster_env, apiserver, capsys
):
    _register(cluster_env, champion=1)
    assert main(["deploy", "--no-wait", "--kubeconfig", str(apiserver.kubeconfig)]) == 0
    assert "InferenceService lakehouse/churn: model version 1" in capsys.readouterr().out
    first = _stored(apiserver)
    (container,) = first["spec"]["predictor"]["containers"]
    assert container["image"] == IMAGE
    assert first["metadata"]["annotations"][VERSION_ANNOTATION] == "1"
    assert {"name": MODEL_VERSION_ENV, "value": "1"} in container["env"]

    _register(cluster_env, champion=2)
    marker = _mark_ready(apiserver)
    rollout = deploy_to_cluster(cluster_env, timeout=60, kubeconfig=str(apiserver.kubeconfig))
    marker.join()
    second = _stored(apiserver)
    assert second["metadata"]["annotations"][VERSION_ANNOTATION] == "2" == rollout.model_version
    assert second["metadata"]["generation"] == first["metadata"]["generation"] + 1 == rollout.generation
    assert second["metadata"]["uid"] == first["metadata"]["uid"]  # updated in place, not recreated
    assert rollout.ready_after is not None and rollout.image == IMAGE


def test_a_rollout_that_never_becomes_ready_is_rolled_back(cluster_env, apiserver, capsys):
    _ensure_deployed(cluster_env, apiserver)
    _register(cluster_env, champion=2)
    before = _stored(apiserver)["metadata"]["annotations"][VERSION_ANNOTATION]
    _register(cluster_env, champion=3)
    code = main(["deploy", "--timeout", "2", "--kubeconfig", str(apiserver.kubeconfig)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "(model version 3) not ready after 2 s" in err and f"rolled back to model version {before}" in err
    assert "kubectl describe inferenceservice churn -n lakehouse" in err
    assert _stored(apiserver)["metadata"]["annotations"][VERSION_ANNOTATION] == before


def test_a_missing_secret_key_changes_nothing(cluster_env, apiserver, capsys):
    _ensure_deployed(cluster_env, apiserver)
    before = _stored(apiserver)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "model-server-credentials", "namespace": "lakehouse"},
        "stringData": {"AWS_ACCESS_KEY_ID": "deploy-test"},
    }
    apiserver.kubectl("replace", "-f", "-", input=dump([secret]))
    try:
        assert main(["deploy", "--no-wait", "--kubeconfig", str(apiserver.kubeconfig)]) == 2
    finally:
        secret["stringData"]["AWS_SECRET_ACCESS_KEY"] = "deploy-test-secret"  # pragma: allowlist secret
        apiserver.kubectl("replace", "-f", "-", input=dump([secret]))
    err = capsys.readouterr().err.strip()
    assert "Secret lakehouse/model-server-credentials has no key AWS_SECRET_ACCESS_KEY" in err
    assert "lakehouse manifests --overlay dev | kubectl apply --server-side -f -" in err
    assert _stored(apiserver)["metadata"]["generation"] == before["metadata"]["generation"]


def test_no_champion_changes_nothing(cluster_env, apiserver, capsys):
    _ensure_deployed(cluster_env, apiserver)
    before = _stored(apiserver)
    _register(cluster_env, champion=None)
    assert main(["deploy", "--no-wait", "--kubeconfig", str(apiserver.kubeconfig)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no version of 'churn_propensity' carries the alias 'champion'" in err and "lakehouse run" in err
    assert _stored(apiserver)["metadata"]["generation"] == before["metadata"]["generation"]


def test_an_expired_token_is_named(cluster_env, apiserver, tmp_path):
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    config["users"][0]["user"]["token"] = "expired-token"
    stale = tmp_path / "kubeconfig"
    stale.write_text(yaml.safe_dump(config))
    with pytest.raises(DeployError, match=r"refused the credentials \(expired token\?\)"):
        deploy_to_cluster(cluster_env, model_version="1", wait=False, kubeconfig=str(stale))


def test_the_workflow_crd_of_kubeflow_pipelines_is_served(lakehouse_namespace):
    done = lakehouse_namespace.kubectl(
        "get", "crd", "workflows.argoproj.io", "-o", "jsonpath={.spec.versions[0].name}"
    )
    assert done.stdout == "v1alpha1"
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "churn-training-", "namespace": "lakehouse"},
        "spec": {
            "entrypoint": "main",
            "serviceAccountName": "pipeline-runner",
            "templates": [{"name": "main"}],
        },
    }
    done = lakehouse_namespace.kubectl("create", "--dry-run=server", "-f", "-", input=dump([workflow]))
    assert "created (server dry run)" in done.stdout
