"""KFP component: dbt build of silver and gold, gated by the dbt tests."""

from kfp import dsl

from components.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def transform(profile: str, ingest_result: str, full_refresh: bool = False) -> str:
    """Run `dbt build` (from scratch with `full_refresh`) and publish; returns invocation and snapshots."""
    import json

    from components.settings import get_settings
    from components.transform import run_transform

    del ingest_result  # an input only to order the task after ingestion
    return json.dumps(run_transform(get_settings(profile), full_refresh=full_refresh))
