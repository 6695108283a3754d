"""KFP component: deploy the champion behind the KServe model server."""

from kfp import dsl

from components.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy(profile: str, promotion_result: str) -> str:
    """Render the InferenceService for the champion and check that it loads and answers."""
    import json

    from components.deploy import deploy_champion
    from components.settings import get_settings

    promotion = json.loads(promotion_result)
    result = deploy_champion(get_settings(profile))
    result["promotion"] = {key: promotion.get(key) for key in ("decision", "promoted", "reason")}
    return json.dumps(result, default=str)
