"""KFP component: the champion's batch scores for the latest customers, into gold.churn_scores."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def score(profile: str, champion: Input[Model], scores: Output[Dataset]):
    """Score every customer of the latest as-of date; `scores` names the Iceberg table and snapshot."""
    from components.core.artifacts import write_result
    from components.core.settings import get_settings
    from components.scoring.score import score_customers

    del champion  # an input to order the task after the promotion; the alias is resolved when scoring
    result = score_customers(get_settings(profile))
    write_result(scores, result, shown=tuple(result.to_dict()))
