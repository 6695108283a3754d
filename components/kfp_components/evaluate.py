"""KFP component: score the candidate against the champion on the same held-out window; promote or not."""

from kfp import dsl
from kfp.dsl import Dataset, Input

from components.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_and_promote(profile: str, training_set: Input[Dataset], train_result: str) -> str:
    """Move alias `champion` to the candidate only if it beats the current champion; returns the decision."""
    import json

    import pandas as pd

    from components.evaluate import evaluate_and_promote as decide
    from components.settings import get_settings

    version = json.loads(train_result)["model_version"]
    decision = decide(pd.read_parquet(training_set.path), version, get_settings(profile))
    return json.dumps(decision, default=str)
