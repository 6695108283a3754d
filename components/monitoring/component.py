"""KFP component: drift of the latest features and scores against the champion's training window, and the
quality of past predictions whose labels are known now."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def monitor(
    profile: str,
    scores: Input[Dataset],
    drift: Output[Dataset],
    drift_metrics: Output[Metrics],
    quality: Output[Dataset],
):
    """Write gold.feature_drift and gold.model_performance; `drift_metrics.drifted_columns` > 0 marks a run
    with drift, `drift_metrics.degraded_groups` > 0 one with a quality drop."""
    from components.core.artifacts import log_metrics, write_result
    from components.core.settings import get_settings
    from components.monitoring.monitor import monitor_drift
    from components.monitoring.performance import measure_performance

    del scores  # an input to order the task after the scores it compares
    settings = get_settings(profile)
    performance = measure_performance(settings)
    write_result(
        quality, performance, shown=("table", "snapshot_id", "max_roc_auc_drop", "degraded", "warning")
    )
    result = monitor_drift(settings)
    shown = ("table", "snapshot_id", "as_of", "reference_start", "reference_end", "drifted", "warning")
    write_result(drift, result, shown=shown)
    keys = ("max_feature_psi", "score_psi", "psi_threshold")
    log_metrics(
        drift_metrics,
        {
            "drifted_columns": len(result.drifted),
            "degraded_groups": len(performance.degraded),
            **{k: getattr(result, k) for k in keys},
        },
    )
