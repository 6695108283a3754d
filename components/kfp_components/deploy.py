"""KFP component: deploy the champion behind the KServe model server."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy(profile: str, champion: Input[Model], inference_service: Output[Artifact]):
    """Check that the model server loads the champion and answers; `inference_service` is its manifest."""
    import shutil

    from components.deploy import deploy_champion
    from components.settings import get_settings

    del champion  # an input to order the task after the promotion
    result = deploy_champion(get_settings(profile))
    shutil.copyfile(result["manifest"], inference_service.path)
    for key in ("model_version", "apply_with"):
        inference_service.metadata[key] = result[key]
