"""The pipeline compiles to KFP YAML with its six steps in order, and installs nothing at run time."""

from __future__ import annotations

import yaml

from pipelines.compile import compile_pipeline

STEPS = ["ingest", "transform", "features", "train", "evaluate-and-promote", "deploy"]


def test_pipeline_compiles_with_every_step_in_order(tmp_path):
    spec = yaml.safe_load(compile_pipeline(tmp_path / "churn.yaml").read_text())
    assert spec["pipelineInfo"]["name"] == "churn-training"
    tasks = spec["root"]["dag"]["tasks"]
    assert sorted(tasks) == sorted(STEPS)
    for before, after in zip(STEPS, STEPS[1:], strict=False):
        assert before in tasks[after].get("dependentTasks", []), f"{after} does not wait for {before}"
    assert spec["root"]["inputDefinitions"]["parameters"]["profile"]["defaultValue"] == "local"


def test_components_run_in_the_platform_image_without_installing_packages(tmp_path):
    spec = yaml.safe_load(compile_pipeline(tmp_path / "churn.yaml").read_text())
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == len(STEPS)
    for name, executor in executors.items():
        container = executor["container"]
        assert container["image"].startswith("lakehouse-mlops:"), name
        assert "pip install" not in " ".join(container["command"]), name


def test_training_set_is_passed_as_a_dataset_artifact(tmp_path):
    spec = yaml.safe_load(compile_pipeline(tmp_path / "churn.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    for consumer in ("train", "evaluate-and-promote"):
        source = tasks[consumer]["inputs"]["artifacts"]["training_set"]["taskOutputArtifact"]
        assert source == {"outputArtifactKey": "training_set", "producerTask": "features"}
