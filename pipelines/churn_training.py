"""The `churn-training` pipeline: ingest -> dbt build -> Feast -> train -> evaluate and promote -> deploy."""

from kfp import dsl

from components.kfp_components import deploy, evaluate_and_promote, features, ingest, train, transform


@dsl.pipeline(
    name="churn-training",
    description="Raw business data through the Iceberg lakehouse and Feast to a served churn model.",
)
def churn_training(profile: str = "local", full_refresh: bool = False) -> str:
    """Every step reads its endpoints from the settings of `profile`; `full_refresh` rebuilds silver/gold."""
    ingest_task = ingest(profile=profile).set_display_name("ingest to bronze")
    transform_task = transform(
        profile=profile, ingest_result=ingest_task.output, full_refresh=full_refresh
    ).set_display_name("dbt build silver and gold")
    features_task = features(profile=profile, transform_result=transform_task.output).set_display_name(
        "feast apply and materialize"
    )
    training_set = features_task.outputs["training_set"]
    train_task = train(
        profile=profile,
        training_set=training_set,
        ingest_result=ingest_task.output,
        transform_result=transform_task.output,
        features_result=features_task.outputs["Output"],
    ).set_display_name("train and register")
    promote_task = evaluate_and_promote(
        profile=profile, training_set=training_set, train_result=train_task.output
    ).set_display_name("evaluate and promote")
    deploy_task = deploy(profile=profile, promotion_result=promote_task.output).set_display_name(
        "deploy champion"
    )
    for task in (ingest_task, transform_task, features_task, train_task, promote_task, deploy_task):
        task.set_caching_options(False)
    return deploy_task.output
