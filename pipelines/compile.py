"""Compile the pipeline to the KFP IR YAML that `kfp.Client` submits and the KFP UI uploads."""

from __future__ import annotations

from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).with_name("churn_training.yaml")


def compile_pipeline(output: Path = DEFAULT_OUTPUT) -> Path:
    """Write the compiled `churn-training` pipeline to `output` and return its path."""
    from kfp import compiler

    from pipelines.churn_training import churn_training

    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(churn_training, str(output))
    return output
