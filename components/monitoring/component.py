"""KFP component: drift of the latest features and scores against the champion's training window."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def monitor(profile: str, scores: Input[Dataset], drift: Output[Dataset], drift_metrics: Output[Metrics]):
    """Write gold.feature_drift; `drift_metrics.drifted_columns` > 0 marks a run with drift."""
    from components.core.artifacts import log_metrics, write_result
    from components.core.settings import get_settings
    from components.monitoring.monitor import monitor_drift

    del scores  # an input to order the task after the scores it compares
    result = monitor_drift(get_settings(profile))
    shown = ("table", "snapshot_id", "as_of", "reference_start", "reference_end", "drifted", "warning")
    write_result(drift, result, shown=shown)
    keys = ("max_feature_psi", "score_psi", "psi_threshold")
    log_metrics(
        drift_metrics, {"drifted_columns": len(result.drifted), **{k: getattr(result, k) for k in keys}}
    )
