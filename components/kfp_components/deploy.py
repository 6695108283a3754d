"""KFP component: deploy the champion behind the KServe model server."""

from kfp import dsl

from components.kfp_components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy(profile: str, promotion_result: str) -> str:
    """Render the InferenceService for the champion and check that it loads and answers."""
    import json

    from components.deploy import deploy_champion
    from components.settings import get_settings

    del promotion_result  # an input only to order the task after the promotion decision
    return json.dumps(deploy_champion(get_settings(profile)), default=str)
