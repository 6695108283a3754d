"""The `cluster` compile: every step gets the image of the settings, the Secrets, resources and labels."""

from __future__ import annotations

from pathlib import Path

import yaml
from kfp import components

from components.core.settings import get_settings
from pipelines.churn_monitoring import IN_CLUSTER_KFP, churn_monitoring
from pipelines.cli import main
from pipelines.cluster import DEFAULT_RESOURCES, SECRET_ENV, STEP_RESOURCES
from pipelines.compile import compile_pipeline


def _compiled(tmp_path, monkeypatch) -> tuple[str, dict, dict]:
    monkeypatch.setenv("LAKEHOUSE_IMAGE", "registry.example.org/lakehouse-mlops:1.2.3")
    path = compile_pipeline(tmp_path / "churn.yaml", get_settings("cluster"))
    pipeline_spec, platform_spec = yaml.safe_load_all(path.read_text())
    return str(path), pipeline_spec, platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_compiled_cluster_pipeline_loads_back_and_defaults_to_the_cluster_profile(tmp_path, monkeypatch):
    path, spec, _ = _compiled(tmp_path, monkeypatch)
    loaded = components.load_component_from_file(path)
    assert loaded.name == "churn-training"
    assert loaded.component_spec.inputs["profile"].default == "cluster"
    assert spec["root"]["inputDefinitions"]["parameters"]["profile"]["defaultValue"] == "cluster"


def test_every_step_names_the_image_the_secrets_and_its_resources(tmp_path, monkeypatch):
    _, spec, platform = _compiled(tmp_path, monkeypatch)
    executors = spec["deploymentSpec"]["executors"]
    assert set(platform) == set(executors)  # no step is left without the cluster settings
    wanted_secrets = {name: sorted(keys.values()) for name, keys in SECRET_ENV.items()}
    for executor_name, executor in executors.items():
        step = executor_name.removeprefix("exec-").replace("-", "_")
        container = executor["container"]
        assert container["image"] == "registry.example.org/lakehouse-mlops:1.2.3"
        expected = STEP_RESOURCES.get(step, DEFAULT_RESOURCES)
        resources = container["resources"]
        assert (resources["resourceCpuRequest"], resources["resourceCpuLimit"]) == (
            expected.cpu_request,
            expected.cpu_limit,
        )
        assert (resources["resourceMemoryRequest"], resources["resourceMemoryLimit"]) == (
            expected.memory_request,
            expected.memory_limit,
        )
        config = platform[executor_name]
        secrets = {s["secretName"]: sorted(k["envVar"] for k in s["keyToEnv"]) for s in config["secretAsEnv"]}
        assert secrets == wanted_secrets
        assert config["podMetadata"]["labels"]["lakehouse.io/pipeline-step"] == "true"
        assert config["securityContext"]["runAsNonRoot"] is True
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["LAKEHOUSE_HOME"] == "/tmp/lakehouse"
        assert env["FEAST_S3_ENDPOINT_URL"] == env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert platform["exec-deploy"]["podMetadata"]["labels"]["lakehouse.io/kubernetes-api-client"] == "true"
    alerting = {
        name
        for name, config in platform.items()
        if "lakehouse.io/sends-alerts" in config["podMetadata"]["labels"]
    }
    assert alerting == {"exec-evaluate-and-promote", "exec-monitor"}, (
        "only the steps that alert reach outside"
    )


def test_no_credential_is_written_into_the_compiled_pipeline(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak-this-value")
    path, _, _ = _compiled(tmp_path, monkeypatch)
    assert "do-not-leak-this-value" not in Path(path).read_text()


def test_the_monitoring_pipeline_is_one_alerting_step_in_the_platform_image(tmp_path, monkeypatch):
    """What `lakehouse monitor --schedule` submits: `churn-monitoring`, one step that runs the check with the
    cluster's Secrets and may alert, submitting retraining runs to the API server inside the cluster."""
    monkeypatch.setenv("LAKEHOUSE_IMAGE", "registry.example.org/lakehouse-mlops:1.2.3")
    path = compile_pipeline(tmp_path / "monitoring.yaml", get_settings("cluster"), churn_monitoring)
    spec, platform = yaml.safe_load_all(path.read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert spec["pipelineInfo"]["name"] == "churn-monitoring"
    assert list(spec["root"]["dag"]["tasks"]) == ["check-and-retrain"]
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["profile"]["defaultValue"] == "cluster"
    assert parameters["kfp_host"]["defaultValue"] == IN_CLUSTER_KFP == "http://ml-pipeline:8888"
    assert parameters["dry_run"]["defaultValue"] is False
    container = spec["deploymentSpec"]["executors"]["exec-check-and-retrain"]["container"]
    assert container["image"] == "registry.example.org/lakehouse-mlops:1.2.3"
    config = executors["exec-check-and-retrain"]
    assert {s["secretName"] for s in config["secretAsEnv"]} == set(SECRET_ENV)
    assert config["podMetadata"]["labels"]["lakehouse.io/sends-alerts"] == "true"


def test_a_recurring_check_outside_the_cluster_profile_is_refused_naming_it(capsys):
    command = ["monitor", "--profile", "local", "--host", "http://127.0.0.1:9", "--schedule", "0 0 * * * *"]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert "--profile cluster" in error and "'local'" in error, error


def test_a_recurring_check_needs_the_kfp_host(capsys):
    assert main(["monitor", "--profile", "cluster", "--schedule", "0 0 * * * *"]) == 2
    assert "--host" in capsys.readouterr().err
