"""MLflow tracking and registry access for the churn model: experiment, versions, aliases."""

from __future__ import annotations

import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.core.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

EXPERIMENT_NAME = "churn-propensity"
CHAMPION = "champion"
CHALLENGER = "challenger"
#: Distributions the logged model needs to load (skops is its serialization format).
MODEL_DISTRIBUTIONS = ("scikit-learn", "pandas", "numpy", "skops")


def model_requirements() -> list[str]:
    """Pinned pip requirements of the logged model, from the installed versions."""
    return [f"{name}=={version(name)}" for name in MODEL_DISTRIBUTIONS]


def tracking_client(settings: Settings) -> MlflowClient:
    """Point MLflow (tracking and registry) at the profile's server and return a client for it."""
    import mlflow
    from mlflow import MlflowClient

    settings.ensure_dirs()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


def experiment_artifact_location(settings: Settings) -> str | None:
    """Artifact location of the experiment: under `mlflow_artifact_root` when that is a local folder.

    A remote root (`s3://...`) is left to the tracking server, which owns its artifact store.
    """
    root = settings.mlflow_artifact_root
    if root.startswith("file://"):
        return f"{root.rstrip('/')}/{EXPERIMENT_NAME}"
    if "://" not in root:
        return (Path(root).resolve() / EXPERIMENT_NAME).as_uri()
    return None


def ensure_experiment(client: MlflowClient, settings: Settings) -> str:
    """Id of the `churn-propensity` experiment, created (or restored if deleted) when needed."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        try:
            return client.create_experiment(
                EXPERIMENT_NAME, artifact_location=experiment_artifact_location(settings)
            )
        except MlflowException:
            experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def registered_version(client: MlflowClient, name: str, version_id: int | str) -> ModelVersion:
    """A registered version of `name`; raises LookupError naming it when it does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version_id))
    except MlflowException as exc:
        raise LookupError(f"model {name!r} has no registered version {version_id!r}: {exc.message}") from exc


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version `alias` points at, or None when the alias or the registered model does not exist."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            return None
        raise
    found = aliases.get(alias)
    return None if found is None else str(found)


def load_pipeline(model_uri: str) -> Any:
    """The fitted pipeline at `model_uri` (`models:/name/version`, `runs:/...`).

    MLflow downloads a model into a new folder of the system's temporary folder and leaves it there, one
    copy per load (every step, every switch of a model server's champion); here it goes into a temporary
    folder removed once the pipeline is in memory.
    """
    import mlflow.sklearn

    with tempfile.TemporaryDirectory(prefix="lakehouse-model-") as folder:
        return mlflow.sklearn.load_model(model_uri, dst_path=folder)


def load_alias(settings: Settings, alias: str) -> tuple[Any, str] | None:
    """The fitted pipeline `alias` points at and its version, or None when no version carries it."""
    version = alias_version(tracking_client(settings), settings.model_name, alias)
    if version is None:
        return None
    return load_pipeline(f"models:/{settings.model_name}/{version}"), version


class NoChampionError(LookupError):
    """Raised when no version of the registered churn model carries the alias `champion`."""


def load_champion(settings: Settings) -> tuple[Any, str]:
    """The champion's fitted pipeline and its version, resolved once (the alias may move afterwards).

    Raises:
        NoChampionError: no version carries alias `champion` (or the model is not registered at all).
    """
    client = tracking_client(settings)
    champion = alias_version(client, settings.model_name, CHAMPION)
    if champion is None:
        raise NoChampionError(
            f"no version of {settings.model_name!r} carries the alias {CHAMPION!r} in the MLflow registry at "
            f"{settings.mlflow_tracking_uri}: train and promote a model first"
        )
    return load_pipeline(f"models:/{settings.model_name}/{champion}"), champion
