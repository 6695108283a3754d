"""KFP component: train the churn model on the training set, track it in MLflow, register it."""

from kfp import dsl
from kfp.dsl import Dataset, Input

from components.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    profile: str,
    training_set: Input[Dataset],
    ingest_result: str,
    transform_result: str,
    features_result: str,
) -> str:
    """Fit and register a model version; the upstream results are logged as its lineage."""
    import json

    import pandas as pd

    from components.lineage import lineage_of
    from components.settings import get_settings
    from components.train import train_model

    lineage = lineage_of(json.loads(ingest_result), json.loads(transform_result), json.loads(features_result))
    result = train_model(pd.read_parquet(training_set.path), get_settings(profile), lineage=lineage)
    return json.dumps(result, default=str)
