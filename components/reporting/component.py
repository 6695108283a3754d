"""KFP component: the run report, an HTML page the KFP UI shows."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Model, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def report(
    profile: str,
    bronze: Input[Dataset],
    gold: Input[Dataset],
    training_set: Input[Dataset],
    model: Input[Model],
    champion: Input[Model],
    scores: Input[Dataset],
    drift: Input[Dataset],
    quality: Input[Dataset],
    run_report: Output[HTML],
):
    """Data volumes per layer, dbt tests, the training set and model, promotion, batch scores, drift and the
    quality of past predictions."""
    from pathlib import Path

    from components.core.artifacts import read_typed_result
    from components.core.results import (
        Drift,
        Evaluation,
        Ingestion,
        Performance,
        Scores,
        TrainedModel,
        Transformation,
    )
    from components.core.settings import get_settings
    from components.reporting.report import layer_volumes, render_report

    settings = get_settings(profile)
    transform = read_typed_result(gold, Transformation)
    scored, drifted = read_typed_result(scores, Scores), read_typed_result(drift, Drift)
    snapshots = {**read_typed_result(bronze, Ingestion).snapshots, **transform.published}
    snapshots |= {scored.table: scored.snapshot_id, drifted.table: drifted.snapshot_id}
    page = render_report(
        profile=settings.profile,
        volumes=layer_volumes(settings, snapshots),
        transform=transform,
        training_set={**training_set.metadata, "rows": int(training_set.metadata["rows"])},  # a double in KFP
        trained=read_typed_result(model, TrainedModel),
        promotion=read_typed_result(champion, Evaluation),
        scores=scored,
        drift=drifted,
        performance=read_typed_result(quality, Performance),
    )
    Path(run_report.path).write_text(page, encoding="utf-8")
