"""Run the `churn-training` pipeline on this machine with `kfp.local` (each step a subprocess)."""

from __future__ import annotations

import json
import warnings

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
    # kfp.local notes that display names are ignored locally and that the platform image is not
    # used by the subprocess runner; both are expected here (the subprocesses use this virtualenv)
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(settings.home / "kfp"),
        raise_on_error=True,
    )
    with scoped_environ(settings.env()):  # the step subprocesses inherit the profile's endpoints
        task = churn_training(profile=settings.profile)
    return json.loads(task.output)
