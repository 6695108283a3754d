"""The pipeline compiles to KFP YAML with its steps in order, typed artifacts between them, no installs."""

from __future__ import annotations

import pytest
import yaml

from pipelines.compile import compile_pipeline

STEPS = [
    "ingest",
    "transform",
    "features",
    "train",
    "evaluate-and-promote",
    "deploy",
    "score",
    "monitor",
    "report",
]
#: (producer, consumer) of every artifact that carries a result between steps.
EDGES = [
    ("ingest", "transform"),
    ("transform", "features"),
    ("features", "train"),
    ("train", "evaluate-and-promote"),
    ("evaluate-and-promote", "deploy"),
    ("evaluate-and-promote", "score"),
    ("score", "monitor"),
    ("monitor", "report"),
]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return yaml.safe_load(compile_pipeline(tmp_path_factory.mktemp("spec") / "churn.yaml").read_text())


def test_pipeline_compiles_with_every_step_in_order(spec):
    assert spec["pipelineInfo"]["name"] == "churn-training"
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(tasks) == sorted(STEPS)
    for before, after in EDGES:
        assert before in tasks[after].get("dependentTasks", []), f"{after} does not wait for {before}"
    assert spec["root"]["inputDefinitions"]["parameters"]["profile"]["defaultValue"] == "local"


def test_components_run_in_the_platform_image_without_installing_packages(spec):
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == len(STEPS)
    for name, executor in executors.items():
        container = executor["container"]
        assert container["image"].startswith("lakehouse-mlops:"), name
        assert "pip install" not in " ".join(container["command"]), name


def test_results_travel_as_typed_artifacts_not_strings(spec):
    tasks = spec["root"]["dag"]["tasks"]
    for producer, consumer in EDGES:
        sources = [
            a["taskOutputArtifact"]["producerTask"] for a in tasks[consumer]["inputs"]["artifacts"].values()
        ]
        assert producer in sources, f"{consumer} takes no artifact from {producer}"
    for name, component in spec["components"].items():
        assert not component.get("outputDefinitions", {}).get("parameters"), f"{name} returns a parameter"
    kinds = {
        name: output["artifactType"]["schemaTitle"]
        for component in spec["components"].values()
        for name, output in component.get("outputDefinitions", {}).get("artifacts", {}).items()
    }
    assert kinds["model"] == kinds["champion"] == "system.Model"
    assert kinds["metrics"] == kinds["drift_metrics"] == kinds["dbt_tests"] == "system.Metrics"
    assert kinds["holdout_curves"] == "system.ClassificationMetrics"
    assert kinds["run_report"] == "system.HTML"
    outputs = spec["root"]["outputDefinitions"]["artifacts"]
    assert {"run_report", "champion", "holdout_metrics", "holdout_curves", "scores", "drift"} <= set(outputs)
