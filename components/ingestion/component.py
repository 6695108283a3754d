"""KFP component: load the source files into bronze."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(profile: str, bronze: Output[Dataset]):
    """Run the ingestion step; `bronze` holds its result: rows loaded, dlt load id, snapshots, data hashes."""
    from components.core.artifacts import write_result
    from components.core.settings import get_settings
    from components.ingestion.ingest import run_ingest

    result = run_ingest(get_settings(profile))
    write_result(bronze, result, shown=("load_id", "rows_loaded", "snapshots", "data_dvc_md5", "data_sha256"))
