"""`lakehouse submit` end to end against a real Kubeflow Pipelines API server (the revision the Go module
proxy serves), which creates the run's Argo `Workflow` in the real kube-apiserver."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from components.core.settings import get_settings
from infrastructure.apiserver.server import ApiServer
from pipelines.cli import main
from pipelines.compile import compile_pipeline
from testing.manifests import TIMINGS
from testing.prerequisites import unavailable
from tests.cluster.kfp_server import KfpServer, KfpUnavailable, kfp_api_server


@pytest.fixture(scope="module")
def kfp(lakehouse_namespace: ApiServer) -> Iterator[KfpServer]:
    started = time.monotonic()
    try:
        with kfp_api_server(lakehouse_namespace) as server:
            TIMINGS["KFP API server start (MariaDB, S3, KFP)"] = time.monotonic() - started
            yield server
    except KfpUnavailable as exc:
        unavailable(str(exc))


def test_submit_uploads_runs_and_the_workflow_appears(
    kfp, lakehouse_namespace, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_KFP_TOKEN", lakehouse_namespace.token)
    package = compile_pipeline(tmp_path / "churn.yaml", get_settings("cluster"))
    assert main(["submit", "--host", kfp.url, "--package", str(package), "--run-name", "end-to-end"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    run_id = line.rsplit("/", 1)[1]
    assert line.endswith(f"{kfp.url}/#/runs/details/{run_id}")
    deadline = time.monotonic() + 60
    while True:
        done = lakehouse_namespace.kubectl("get", "workflows", "-n", "lakehouse", "-o", "json")
        listed = json.loads(done.stdout)["items"]
        workflows = [w for w in listed if run_id in json.dumps(w["metadata"])]
        if workflows or time.monotonic() > deadline:
            break
        time.sleep(1)
    names = [w["metadata"]["name"] for w in listed]
    assert len(workflows) == 1, f"run {run_id}: {len(workflows)} workflows in 60 s; the namespace has {names}"
    (workflow,) = workflows
    assert workflow["spec"]["serviceAccountName"] == "pipeline-runner"
    assert workflow["metadata"]["labels"]["pipeline/runid"] == run_id
    # KFP keeps each step's container and Kubernetes settings in annotations its driver reads at run time
    annotations = workflow["metadata"]["annotations"]
    assert annotations["pipelines.kubeflow.org/run_name"] == "end-to-end"
    image = json.loads(annotations["pipelines.kubeflow.org/implementations-comp-train"])["image"]
    assert image == get_settings("cluster").image
    kubernetes = json.loads(annotations["pipelines.kubeflow.org/kubernetes-comp-train"])
    assert {s["secretName"] for s in kubernetes["secretAsEnv"]} == {
        "lakehouse-credentials",
        "polaris-pipeline",
        "lakehouse-alerts",
        "redis",
    }
    assert kubernetes["podMetadata"]["labels"]["lakehouse.io/pipeline-step"] == "true"
    assert "lakehouse.io/sends-alerts" not in kubernetes["podMetadata"]["labels"], "training raises no alert"
    monitor = json.loads(annotations["pipelines.kubeflow.org/kubernetes-comp-monitor"])
    assert monitor["podMetadata"]["labels"]["lakehouse.io/sends-alerts"] == "true"


def test_monitor_schedule_creates_a_recurring_run_of_the_monitoring_pipeline(
    kfp, lakehouse_namespace, tmp_path, capsys, monkeypatch
):
    """`lakehouse monitor --schedule` compiles the one-step monitoring pipeline for the cluster and submits it
    as a recurring run: KFP's API server turns it into a `ScheduledWorkflow` on the cron, whose workflow runs
    the check in the platform image and submits retraining runs to the API server inside the cluster."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_KFP_TOKEN", lakehouse_namespace.token)
    cron = "0 */30 * * * *"
    assert main(["monitor", "--profile", "cluster", "--host", kfp.url, "--schedule", cron]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    recurring_id = line.split()[2]
    assert line.endswith(f"{kfp.url}/#/recurringrun/details/{recurring_id}")
    listed = lakehouse_namespace.kubectl("get", "scheduledworkflows", "-n", "lakehouse", "-o", "json")
    (scheduled,) = [
        s for s in json.loads(listed.stdout)["items"] if recurring_id in json.dumps(s["metadata"])
    ]
    spec = scheduled["spec"]
    assert spec["trigger"]["cronSchedule"]["cron"] == cron
    assert spec["enabled"] is True
    # the run's parameters, and the compiled Argo workflow each scheduled run starts from (as JSON)
    parameters = {p["name"]: json.loads(p["value"]) for p in spec["workflow"]["parameters"]}
    assert parameters == {"profile": "cluster", "dry_run": False}
    workflow = json.loads(spec["workflow"]["spec"])
    assert workflow["spec"]["serviceAccountName"] == "pipeline-runner"
    annotations = workflow["metadata"]["annotations"]
    image = json.loads(annotations["pipelines.kubeflow.org/implementations-comp-check-and-retrain"])["image"]
    assert image == get_settings("cluster").image, "the step runs the platform image"
    kubernetes = json.loads(annotations["pipelines.kubeflow.org/kubernetes-comp-check-and-retrain"])
    assert kubernetes["podMetadata"]["labels"]["lakehouse.io/sends-alerts"] == "true"
