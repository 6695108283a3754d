"""Run the `churn-training` pipeline on this machine with `kfp.local` (each step a subprocess)."""

from __future__ import annotations

import json

from components.settings import Settings, get_settings, scoped_environ


def run_local(settings: Settings | None = None) -> dict:
    """Execute every step of the pipeline locally, in order; raises if a step fails.

    Returns:
        the deploy step's result (champion version, manifest path, sample predictions).
    """
    from kfp import local

    from pipelines.churn_training import churn_training

    settings = settings or get_settings()
    settings.ensure_dirs()
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(settings.home / "kfp"),
        raise_on_error=True,
    )
    with scoped_environ(settings.env()):  # the step subprocesses inherit the profile's endpoints
        task = churn_training(profile=settings.profile)
    return json.loads(task.output)
