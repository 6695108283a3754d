"""KFP component: dbt build of silver and gold, gated by the dbt tests."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components.core.settings import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def transform(
    profile: str,
    bronze: Input[Dataset],
    gold: Output[Dataset],
    dbt_tests: Output[Metrics],
    full_refresh: bool = False,
):
    """Run `dbt build` (from scratch with `full_refresh`) and publish; `gold` holds the dbt invocation and
    silver/gold snapshots, `dbt_tests` the counts."""
    import dataclasses

    from components.core.artifacts import log_metrics, write_result
    from components.core.settings import get_settings
    from components.transformation.transform import dbt_test_summary, run_transform

    del bronze  # an input to order the task after ingestion and to record what it read
    settings = get_settings(profile)
    result = run_transform(settings, full_refresh=full_refresh)
    result = dataclasses.replace(result, dbt_tests=dbt_test_summary(settings))
    write_result(gold, result, shown=("dbt_invocation_id", "target", "models", "published"))
    counts = {k: v for k, v in result.dbt_tests.items() if k != "not_passed"}
    log_metrics(dbt_tests, {"dbt_models": result.models, **{f"dbt_{k}": v for k, v in counts.items()}})
