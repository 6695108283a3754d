"""KFP component: Feast apply and materialize, and the point-in-time training set."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def features(profile: str, gold: Input[Dataset], training_set: Output[Dataset]):
    """Apply the feature repo, fill the online store, write the training set as Parquet."""
    from components.core.settings import get_settings
    from components.features.materialize import apply_and_materialize, get_training_set

    del gold  # an input only to order the task after the transform
    settings = get_settings(profile)
    result = apply_and_materialize(settings)
    frame = get_training_set(settings)
    frame.to_parquet(training_set.path, index=False)
    metadata = result.to_dict() | {
        "rows": len(frame),
        "first_as_of": frame["as_of_ts"].min().isoformat(),
        "last_as_of": frame["as_of_ts"].max().isoformat(),
        "gold_snapshot_id": str(result.gold_snapshot_id),  # exact: a double holds 53 bits
    }
    for key, value in metadata.items():
        training_set.metadata[key] = value
