"""What the `cluster` profile adds to every step of a pipeline at compile time (kfp-kubernetes).

Each task of the pipeline, whatever step it runs, gets: the platform image of the settings, the Secrets as
environment variables (S3 keys, the Polaris principal of the pipeline, Redis' password, the alert webhook),
CPU and memory requests and limits, the labels the network policies and the admission policy select on, a
non-root user, and the state folder under /tmp. Runs go under the ServiceAccount `pipeline-runner` (set per
run by `submit`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kfp import dsl, kubernetes
from kfp.dsl import pipeline_context

from components.core.settings import Settings

SERVICE_ACCOUNT = "pipeline-runner"
#: Kubernetes Secret -> {key in the Secret: environment variable of the step}.
SECRET_ENV: Mapping[str, Mapping[str, str]] = {
    "lakehouse-credentials": {
        "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",  # pragma: allowlist secret
    },
    "polaris-pipeline": {
        "client_id": "LAKEHOUSE_CATALOG_CLIENT_ID",
        "client_secret": "LAKEHOUSE_CATALOG_CLIENT_SECRET",  # pragma: allowlist secret
    },
    # the alert webhook (empty: none); a Secret every overlay makes, since KFP 2.0.5 mounts no optional one
    "lakehouse-alerts": {"LAKEHOUSE_ALERT_WEBHOOK_URL": "LAKEHOUSE_ALERT_WEBHOOK_URL"},
    "redis": {"REDIS_PASSWORD": "REDIS_PASSWORD"},  # pragma: allowlist secret (the online store's)
}
POD_LABELS = {"lakehouse.io/pipeline-step": "true", "app.kubernetes.io/part-of": "lakehouse"}
#: The deploy step talks to the Kubernetes API (network-policies.yaml lets this label through).
API_CLIENT_LABEL = ("lakehouse.io/kubernetes-api-client", "true")
API_CLIENT_STEPS = frozenset({"deploy"})
#: Steps that raise alerts (promotion; drift and quality; the recurring check) may post to the webhook
#: outside the cluster.
ALERTING_LABEL = ("lakehouse.io/sends-alerts", "true")
ALERTING_STEPS = frozenset({"evaluate-and-promote", "monitor", "check-and-retrain"})
#: The image's user (Dockerfile); Pod Security `restricted` needs a non-root one.
RUN_AS_USER = 10001
STATE_DIR = "/tmp/lakehouse"


@dataclass(frozen=True)
class StepResources:
    """CPU and memory requests and limits of one step's container."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


DEFAULT_RESOURCES = StepResources("500m", "2", "1Gi", "4Gi")
#: Steps whose needs differ from the default, by component name.
STEP_RESOURCES: Mapping[str, StepResources] = {
    "transform": StepResources("250m", "1", "512Mi", "2Gi"),  # dbt sends the work to Trino
    "features": StepResources("1", "2", "2Gi", "8Gi"),  # the point-in-time join runs in DuckDB
    "train": StepResources("1", "4", "2Gi", "8Gi"),
    "deploy": StepResources("250m", "1", "512Mi", "2Gi"),
}


def configure_task(task: dsl.PipelineTask, settings: Settings) -> None:
    """Apply the cluster settings to one task (see the module docstring)."""
    name = task.component_spec.name
    if task.container_spec is not None:
        task.container_spec.image = settings.image
    for secret, keys in SECRET_ENV.items():
        kubernetes.use_secret_as_env(task, secret_name=secret, secret_key_to_env=dict(keys))
    resources = STEP_RESOURCES.get(name, DEFAULT_RESOURCES)
    task.set_cpu_request(resources.cpu_request).set_cpu_limit(resources.cpu_limit)
    task.set_memory_request(resources.memory_request).set_memory_limit(resources.memory_limit)
    labels = {
        **POD_LABELS,
        **(dict([API_CLIENT_LABEL]) if name in API_CLIENT_STEPS else {}),
        **(dict([ALERTING_LABEL]) if name in ALERTING_STEPS else {}),
    }
    for key, value in labels.items():
        kubernetes.add_pod_label(task, key, value)
    kubernetes.set_security_context(
        task, run_as_user=RUN_AS_USER, run_as_group=RUN_AS_USER, run_as_non_root=True
    )
    task.set_env_variable("LAKEHOUSE_HOME", STATE_DIR)
    task.set_env_variable("HOME", "/tmp")
    if settings.s3_endpoint:  # Feast's S3 registry and MLflow's artifact uploads read these, not the settings
        task.set_env_variable("FEAST_S3_ENDPOINT_URL", settings.s3_endpoint)
        task.set_env_variable("MLFLOW_S3_ENDPOINT_URL", settings.s3_endpoint)


def for_cluster(pipeline: dsl.base_component.BaseComponent, settings: Settings) -> Callable:
    """The same pipeline, with :func:`configure_task` applied to every task it creates (steps added later
    included), ready for `kfp.compiler.Compiler().compile`."""
    func = pipeline.pipeline_func

    @functools.wraps(func)
    def configured(*args, **kwargs):
        result = func(*args, **kwargs)
        for task in pipeline_context.Pipeline.get_default_pipeline().tasks.values():
            configure_task(task, settings)
        return result

    spec = pipeline.component_spec
    return dsl.pipeline(name=spec.name, description=spec.description)(configured)
