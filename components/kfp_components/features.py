"""KFP component: Feast apply and materialize, and the point-in-time training set."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from components.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def features(profile: str, transform_result: str, training_set: Output[Dataset]) -> str:
    """Apply the feature repo, fill the online store, write the training set as Parquet."""
    import json

    from components.features import apply_and_materialize, get_training_set
    from components.settings import get_settings

    del transform_result  # an input only to order the task after the transform
    settings = get_settings(profile)
    result = apply_and_materialize(settings)
    frame = get_training_set(settings)
    frame.to_parquet(training_set.path, index=False)
    training_set.metadata["rows"] = len(frame)
    return json.dumps(result, default=str)
