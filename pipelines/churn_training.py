"""The `churn-training` pipeline: ingest, dbt, Feast, train, promote, then deploy, score, monitor, report."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Metrics, Model

from components.deployment.component import deploy
from components.evaluation.component import evaluate_and_promote
from components.features.component import features
from components.ingestion.component import ingest
from components.monitoring.component import monitor
from components.reporting.component import report
from components.scoring.component import score
from components.training.component import train
from components.transformation.component import transform


#: What a run hands back: the artifacts a user opens first (the KFP UI shows every step's too).
class RunOutputs(NamedTuple):
    run_report: HTML
    champion: Model
    holdout_metrics: Metrics
    holdout_curves: ClassificationMetrics
    scores: Dataset
    drift: Dataset
    drift_metrics: Metrics
    quality: Dataset
    inference_service: Artifact


@dsl.pipeline(
    name="churn-training",
    description="Raw business data through the Iceberg lakehouse and Feast to a served, monitored model.",
)
def churn_training(profile: str = "local", full_refresh: bool = False) -> RunOutputs:
    """Every step reads its endpoints from the settings of `profile`; results travel as typed artifacts;
    `full_refresh` rebuilds silver/gold from bronze."""
    ingest_task = ingest(profile=profile).set_display_name("ingest to bronze")
    bronze = ingest_task.outputs["bronze"]
    transform_task = transform(profile=profile, bronze=bronze, full_refresh=full_refresh).set_display_name(
        "dbt build silver and gold"
    )
    gold = transform_task.outputs["gold"]
    features_task = features(profile=profile, gold=gold).set_display_name("feast apply and materialize")
    training_set = features_task.outputs["training_set"]
    train_task = train(profile=profile, training_set=training_set, bronze=bronze, gold=gold).set_display_name(
        "train and register"
    )
    promote_task = evaluate_and_promote(
        profile=profile, training_set=training_set, candidate=train_task.outputs["model"]
    ).set_display_name("evaluate and promote")
    champion = promote_task.outputs["champion"]
    deploy_task = deploy(profile=profile, champion=champion).set_display_name("deploy champion")
    score_task = score(profile=profile, champion=champion).set_display_name("batch scores")
    monitor_task = monitor(profile=profile, scores=score_task.outputs["scores"]).set_display_name(
        "drift and quality"
    )
    report_task = report(
        profile=profile,
        bronze=bronze,
        gold=gold,
        training_set=training_set,
        model=train_task.outputs["model"],
        champion=champion,
        scores=score_task.outputs["scores"],
        drift=monitor_task.outputs["drift"],
        quality=monitor_task.outputs["quality"],
    ).set_display_name("run report")
    tasks = (
        ingest_task,
        transform_task,
        features_task,
        train_task,
        promote_task,
        deploy_task,
        score_task,
        monitor_task,
        report_task,
    )
    for task in tasks:
        task.set_caching_options(False)
    return RunOutputs(
        run_report=report_task.outputs["run_report"],
        champion=champion,
        holdout_metrics=train_task.outputs["metrics"],
        holdout_curves=train_task.outputs["holdout_curves"],
        scores=score_task.outputs["scores"],
        drift=monitor_task.outputs["drift"],
        drift_metrics=monitor_task.outputs["drift_metrics"],
        quality=monitor_task.outputs["quality"],
        inference_service=deploy_task.outputs["inference_service"],
    )
