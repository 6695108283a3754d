"""Compile a pipeline to the KFP IR YAML that `kfp.Client` submits and the KFP UI uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.core.settings import Settings

DEFAULT_OUTPUT = Path(__file__).with_name("churn_training.yaml")


def compile_pipeline(
    output: Path = DEFAULT_OUTPUT, settings: Settings | None = None, pipeline: Any = None
) -> Path:
    """Write a compiled pipeline (default: `churn-training`) to `output` and return its path.

    Args:
        output: the YAML file to write.
        settings: with the `cluster` profile, every step also gets the cluster's image, Secrets, resources
            and labels (`pipelines.cluster`), and the pipeline's `profile` parameter defaults to `cluster`.
        pipeline: another pipeline of this package (`churn_monitoring.churn_monitoring`).
    """
    from kfp import compiler

    from pipelines.churn_training import churn_training

    pipeline, arguments = pipeline or churn_training, None
    if settings is not None and settings.profile == "cluster":
        from pipelines.cluster import for_cluster

        pipeline, arguments = for_cluster(pipeline, settings), {"profile": "cluster"}
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline, str(output), pipeline_parameters=arguments)
    return output
