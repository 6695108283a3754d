"""KFP component: score the candidate against the champion on the same held-out window; promote or not."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_and_promote(
    profile: str,
    training_set: Input[Dataset],
    candidate: Input[Model],
    champion: Output[Model],
    promotion: Output[Metrics],
):
    """Move alias `champion` to the candidate only if it beats the current champion by the margin.

    `champion` names the version holding the alias afterwards and carries the decision; `promotion` holds
    both models' ROC AUC, the gain and the margin.
    """
    import pandas as pd

    from components.core.artifacts import log_metrics, read_typed_result, write_result
    from components.core.results import TrainedModel
    from components.core.settings import get_settings
    from components.evaluation.evaluate import evaluate_and_promote as decide

    settings = get_settings(profile)
    version = read_typed_result(candidate, TrainedModel).model_version
    decision = decide(pd.read_parquet(training_set.path), version, settings)
    shown = ("model_uri", "champion_version", "decision", "reason", "candidate_metrics", "champion_metrics")
    write_result(champion, decision, shown=shown)
    keys = ("candidate_roc_auc", "champion_roc_auc", "roc_auc_gain", "min_margin", "promoted")
    log_metrics(promotion, {key: getattr(decision, key) for key in keys})
