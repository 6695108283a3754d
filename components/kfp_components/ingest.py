"""KFP component: load the source files into bronze."""

from kfp import dsl

from components.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(profile: str) -> str:
    """Run the ingestion step; returns its result (rows loaded, bronze snapshots, data hash) as JSON."""
    import json

    from components.ingest import run_ingest
    from components.settings import get_settings

    return json.dumps(run_ingest(get_settings(profile)))
