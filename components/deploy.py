"""Deploy step: render the champion's InferenceService and check that the model server loads and answers."""

from __future__ import annotations

from string import Template

import yaml

from components.lakehouse import read_table
from components.settings import GOLD, IMAGE, REPO_ROOT, Settings, get_settings

MANIFEST_TEMPLATE = REPO_ROOT / "serving" / "inferenceservice.yaml"
VERSION_ANNOTATION = "lakehouse.io/model-version"


def render_inference_service(model_version: str, image: str = IMAGE) -> dict:
    """The `InferenceService` manifest for `image`, annotated with the champion version it rolls out.

    The annotation changes with every new champion, so applying the manifest restarts the predictor,
    which then loads `@champion` again.
    """
    manifest = yaml.safe_load(Template(MANIFEST_TEMPLATE.read_text()).substitute(LAKEHOUSE_IMAGE=image))
    manifest["metadata"].setdefault("annotations", {})[VERSION_ANNOTATION] = str(model_version)
    return manifest


def deploy_champion(settings: Settings | None = None, sample_size: int = 3) -> dict:
    """Load the champion the way the server does, score a few customers, write the manifest to apply.

    Returns:
        the champion version, the rendered manifest's path, and the sample predictions.
    """
    from serving.model import ChurnModel

    settings = settings or get_settings()
    model = ChurnModel(settings)
    model.load()
    customers = read_table(f"{GOLD}.customer_features", settings).column("customer_id")
    sample = sorted({int(c) for c in customers.unique().to_pylist()})[:sample_size]
    answer = model.postprocess(model.predict(model.preprocess({"instances": sample})))
    unknown = [p["customer_id"] for p in answer["predictions"] if not p["known"]]
    if unknown:
        raise RuntimeError(f"the champion has no online features for customers {unknown}: materialize first")
    path = settings.home / "deploy" / "inferenceservice.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(render_inference_service(model.model_version), sort_keys=False))
    return {
        "model_version": model.model_version,
        "manifest": str(path),
        "apply_with": f"kubectl apply -f {path}" if settings.profile == "cluster" else "lakehouse serve",
        "sample_predictions": answer["predictions"],
    }
