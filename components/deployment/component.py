"""KFP component: deploy the champion behind the KServe model server."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy(profile: str, champion: Input[Model], inference_service: Output[Artifact]):
    """Roll the champion out; `inference_service` is the manifest (off the cluster) or the rollout (on it)."""
    import shutil

    from components.core.artifacts import show, write_result
    from components.core.settings import get_settings
    from components.deployment.deploy import deploy_champion

    del champion  # an input to order the task after the promotion
    result = deploy_champion(get_settings(profile))
    shown = ("model_version", "apply_with", "inference_service", "image", "ready_after_s")
    if result.manifest is not None:  # off the cluster: the InferenceService to apply, as YAML
        shutil.copyfile(result.manifest, inference_service.path)
        show(inference_service, result.to_dict(), shown)
    else:  # on the cluster: what was rolled out, and how long it took to be Ready
        write_result(inference_service, result, shown=shown)
