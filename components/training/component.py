"""KFP component: train the churn model on the training set, track it in MLflow, register it."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    profile: str,
    training_set: Input[Dataset],
    bronze: Input[Dataset],
    gold: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    holdout_curves: Output[ClassificationMetrics],
):
    """Fit and register a model version, its lineage taken from the upstream artifacts.

    `model` names the registered version (`model_uri` in its metadata), `metrics` holds the holdout
    metrics and row counts, `holdout_curves` the holdout ROC curve and confusion matrix (threshold 0.5).
    """
    import pandas as pd

    from components.core.artifacts import log_metrics, read_typed_result, write_result
    from components.core.lineage import lineage_of
    from components.core.results import Ingestion, Transformation
    from components.core.settings import get_settings
    from components.training.train import train_model

    lineage = lineage_of(
        read_typed_result(bronze, Ingestion),
        read_typed_result(gold, Transformation),
        dict(training_set.metadata),
    )
    result = train_model(pd.read_parquet(training_set.path), get_settings(profile), lineage=lineage)
    write_result(model, result, shown=("model_uri", "model_version", "run_id", "model_type", "holdout"))
    model.metadata["framework"] = "scikit-learn"
    log_metrics(
        metrics,
        {**result.metrics, "train_rows": result.train_rows, "holdout_rows": result.holdout_rows},
    )
    roc, matrix, categories = result.holdout_roc, result.holdout_confusion_matrix, ["retained", "churned"]
    write_result(holdout_curves, {"roc": roc, "confusion_matrix": matrix, "categories": categories})
    holdout_curves.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])
    holdout_curves.log_confusion_matrix(categories, matrix)
