"""Which step of a failed run failed, and why: read from the run's Argo `Workflow` in a real kube-apiserver,
as Argo's controller leaves it when a step's pod was deleted or exited non-zero."""

from __future__ import annotations

import json
from types import SimpleNamespace

from components.core.ports import free_port
from infrastructure.apiserver.server import ApiServer
from pipelines.submit import RUN_ID_LABEL, _pod_reader, failed_steps, unstartable_step


def _node(workflow: str, path: str, phase: str, message: str = "") -> tuple[str, dict]:
    name = f"{workflow}.{path}"
    return name, {"id": name, "name": name, "displayName": path.rsplit(".", 1)[-1], "phase": phase} | (
        {"message": message} if message else {}
    )


def test_the_steps_whose_pods_failed_are_named_with_argos_reason(
    lakehouse_namespace: ApiServer, monkeypatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(lakehouse_namespace.kubeconfig))
    workflow = "churn-training-failed"
    nodes = dict(
        [
            _node(workflow, "root", "Failed", "child failed"),
            _node(workflow, "root.ingest.executor", "Succeeded"),
            _node(workflow, "root.transform", "Failed", "child failed"),
            _node(workflow, "root.transform.driver", "Succeeded"),
            _node(workflow, "root.transform.executor", "Failed", "Error (exit code 143)"),
            _node(workflow, "root.features.executor", "Error", "pod deleted"),
            _node(workflow, "root.train.executor", "Failed", "Error (exit code 1)"),
        ]
    )
    document = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": workflow, "namespace": "lakehouse", "labels": {RUN_ID_LABEL: "run-1"}},
        "spec": {"entrypoint": "root", "templates": [{"name": "root", "dag": {"tasks": []}}]},
        "status": {"phase": "Failed", "nodes": nodes},
    }
    lakehouse_namespace.kubectl("apply", "-f", "-", input=json.dumps(document))
    try:
        assert failed_steps("run-1") == [
            "step 'features' failed: pod deleted",
            "step 'train' failed: Error (exit code 1)",
            "step 'transform' failed: Error (exit code 143): stopped by SIGTERM (its pod deleted or evicted)",
        ]
        assert failed_steps("another-run") == []
    finally:
        lakehouse_namespace.kubectl("delete", "workflow", "-n", "lakehouse", workflow)


def test_without_kubernetes_credentials_no_step_is_named(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert failed_steps("run-1") == []


def test_an_unreachable_kubernetes_api_names_no_step_and_raises_nothing(tmp_path, monkeypatch) -> None:
    """A kubeconfig whose API server does not answer (a stopped port-forward): the command's own error
    stands, without a traceback from the lookup that was to explain it."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gone", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "gone", "user": {"token": "unused"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}],
        "current-context": "gone",
    }
    (tmp_path / "kubeconfig").write_text(json.dumps(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert failed_steps("run-1") == []
    pod = SimpleNamespace(pod_name="churn-training-x-1")
    run = SimpleNamespace(run_details=SimpleNamespace(task_details=[SimpleNamespace(child_tasks=[pod])]))
    assert unstartable_step(run, _pod_reader()) is None
