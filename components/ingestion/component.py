"""KFP component: load the source files into bronze, and what the model servers logged since the last run."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(profile: str, bronze: Output[Dataset]):
    """Run the ingestion step; `bronze` holds its result (rows loaded, dlt load id, snapshots, data hashes)
    and `predictions_loaded`, the prediction log rows loaded into bronze.prediction_log."""
    from components.core.artifacts import write_result
    from components.core.settings import get_settings
    from components.ingestion.ingest import run_ingest
    from components.ingestion.prediction_log import load_prediction_log

    settings = get_settings(profile)
    result = run_ingest(settings)
    write_result(bronze, result, shown=("load_id", "rows_loaded", "snapshots", "data_dvc_md5", "data_sha256"))
    bronze.metadata["predictions_loaded"] = load_prediction_log(settings).rows
