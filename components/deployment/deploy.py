"""Deploy step: roll the champion out behind the model server, talking to serving only through its interfaces.

On `cluster` it creates or updates the churn `InferenceService` through the Kubernetes API and waits until
it is ready. Elsewhere it starts the model server's command line on a free loopback port, asks it over
HTTP (KServe V1) for a few customers, and stops it; the manifest is written for reference.
"""

from __future__ import annotations

from string import Template

import yaml

from components.core.catalog import read_table
from components.core.kubernetes import api_client
from components.core.model.registry import CHAMPION, alias_version, tracking_client
from components.core.ports import free_port
from components.core.results import Deployment
from components.core.serving_client import predict, start_in_background
from components.core.settings import CODE_ROOT, GOLD, IMAGE, Settings, get_settings
from components.deployment.inference_service import DeployError, Rollout, apply_and_wait

MANIFEST_TEMPLATE = CODE_ROOT / "serving" / "inferenceservice.yaml"
VERSION_ANNOTATION = "lakehouse.io/model-version"
MODEL_VERSION_ENV = "LAKEHOUSE_MODEL_VERSION"
SERVER_START_TIMEOUT = 300.0


def render_inference_service(model_version: str, image: str = IMAGE) -> dict:
    """The `InferenceService` manifest for `image`, marked with the champion version it rolls out.

    The version is an annotation (to read back) and the predictor's LAKEHOUSE_MODEL_VERSION variable: a
    change of the spec, so KServe rolls the predictor's pods, which then load `@champion` again (an
    annotation alone would not change the object's generation).
    """
    manifest = yaml.safe_load(Template(MANIFEST_TEMPLATE.read_text()).substitute(LAKEHOUSE_IMAGE=image))
    manifest["metadata"].setdefault("annotations", {})[VERSION_ANNOTATION] = str(model_version)
    (container,) = manifest["spec"]["predictor"]["containers"]
    container["env"] = [e for e in container.get("env", []) if e["name"] != MODEL_VERSION_ENV]
    container["env"].append({"name": MODEL_VERSION_ENV, "value": str(model_version)})
    return manifest


def champion_version(settings: Settings) -> str:
    """The registered version `champion` points at; DeployError (with the fix) when there is none."""
    try:
        version = alias_version(tracking_client(settings), settings.model_name, CHAMPION)
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds for an unreachable server
        raise DeployError(
            f"cannot read the MLflow registry at {settings.mlflow_tracking_uri}: {str(exc).splitlines()[0]} "
            "(port-forward it: `kubectl -n lakehouse port-forward svc/mlflow 5000` and set "
            "LAKEHOUSE_MLFLOW_TRACKING_URI=http://127.0.0.1:5000)"
        ) from None
    if version is None:
        raise DeployError(
            f"no version of {settings.model_name!r} carries the alias {CHAMPION!r} in the MLflow registry at "
            f"{settings.mlflow_tracking_uri}: train and promote one (`lakehouse run` or `lakehouse submit`)"
        )
    return version


def deploy_to_cluster(
    settings: Settings,
    model_version: str | None = None,
    timeout: float = 600.0,
    wait: bool = True,
    kubeconfig: str | None = None,
) -> Rollout:
    """Create or update the churn InferenceService for the champion (or `model_version`) and wait for it."""
    version = model_version or champion_version(settings)
    manifest = render_inference_service(version, settings.image)
    return apply_and_wait(
        api_client(kubeconfig),
        manifest,
        version,
        timeout=timeout,
        wait=wait,
        version_of=lambda obj: obj["metadata"].get("annotations", {}).get(VERSION_ANNOTATION),
    )


def ask_model_server(settings: Settings, customer_ids: list[int]) -> dict:
    """Start `python -m serving.server` for `settings` on a free loopback port, send one V1 request for
    `customer_ids`, stop the server, and return its answer (predictions and the model version it serves).

    The server runs in a child process (`core.serving_client`): this step never loads the model itself."""

    log_path = settings.home / "deploy" / "model-server.log"
    with start_in_background(
        settings, host="127.0.0.1", port=free_port(), timeout=SERVER_START_TIMEOUT, log_path=log_path
    ) as server:
        return predict(server.url, customer_ids)


def deploy_champion(settings: Settings | None = None, sample_size: int = 3) -> Deployment:
    """Roll the champion out: on `cluster` through the Kubernetes API, elsewhere by asking the model server.

    Returns:
        the champion version, where it runs (the InferenceService or the rendered manifest), and, off the
        cluster, the model server's answers for a few customers.
    """
    settings = settings or get_settings()
    if settings.profile == "cluster":
        rollout = deploy_to_cluster(settings)
        return Deployment(
            model_version=str(rollout.model_version),
            inference_service=f"{rollout.namespace}/{rollout.name}",
            image=rollout.image,
            ready_after_s=rollout.ready_after,
        )
    version = champion_version(settings)
    customers = read_table(f"{GOLD}.customer_features", settings).column("customer_id")
    sample = sorted({int(c) for c in customers.unique().to_pylist()})[:sample_size]
    answer = ask_model_server(settings, sample)
    unknown = [p["customer_id"] for p in answer["predictions"] if not p["known"]]
    if unknown:
        raise RuntimeError(f"the champion has no online features for customers {unknown}: materialize first")
    path = settings.home / "deploy" / "inferenceservice.yaml"
    path.write_text(yaml.safe_dump(render_inference_service(version, settings.image), sort_keys=False))
    return Deployment(
        model_version=str(version),
        served_version=str(answer["model_version"]),
        manifest=str(path),
        apply_with="lakehouse deploy --profile cluster",
        sample_predictions=answer["predictions"],
    )
