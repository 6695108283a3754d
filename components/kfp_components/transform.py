"""KFP component: dbt build of silver and gold, gated by the dbt tests."""

from kfp import dsl

from components.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def transform(profile: str, ingest_result: str) -> str:
    """Run `dbt build` and publish gold; returns the dbt invocation and gold snapshots as JSON."""
    import json

    from components.settings import get_settings
    from components.transform import run_transform

    del ingest_result  # an input only to order the task after ingestion
    return json.dumps(run_transform(get_settings(profile)))
