"""The `churn-monitoring` pipeline: `lakehouse monitor`'s check as one KFP step, for a recurring run.

`lakehouse monitor --schedule CRON --host URL` compiles it for the `cluster` profile and submits it as a
recurring run: each time the schedule comes round, KFP's ScheduledWorkflow controller starts a run whose one
step loads the prediction log, checks drift and quality, judges the shadow challenger and, when a threshold
is crossed and the cooldown has passed, submits a `churn-training` run to the KFP API server inside the
cluster (`kfp_host`).
"""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components.core.settings import IMAGE

#: The KFP API server as the steps reach it: Service `ml-pipeline` in the platform's namespace.
IN_CLUSTER_KFP = "http://ml-pipeline:8888"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def check_and_retrain(
    profile: str, kfp_host: str, dry_run: bool, decision: Output[Dataset], outcome: Output[Metrics]
):
    """One monitoring check (`pipelines.monitoring.check_and_retrain`): `decision` says what it found and
    the retraining run it started (its KFP URL), `outcome` counts it (`retraining_started` 1 if it did)."""
    from components.core.artifacts import log_metrics, write_result
    from components.core.settings import get_settings
    from pipelines.monitoring import check_and_retrain as check

    done = check(get_settings(profile), dry_run=dry_run, host=kfp_host or None)
    print(done.decision.summary + (f": {done.started}" if done.started else ""))
    found = {
        "decision": done.decision.summary,
        "drifted": done.drifted,
        "degraded": done.degraded,
        "started": done.started,
        "shadow": done.shadow.reason if done.shadow else None,
    }
    write_result(decision, found, shown=("decision", "started"))
    counts = {"predictions_loaded": done.predictions_loaded, "drifted_columns": len(done.drifted)}
    counts |= {"degraded_groups": len(done.degraded), "retraining_due": done.decision.retrain}
    log_metrics(outcome, {**counts, "retraining_started": done.started is not None})


@dsl.pipeline(
    name="churn-monitoring",
    description="Drift and quality of the served model on current data; a retraining run when due.",
)
def churn_monitoring(profile: str = "local", kfp_host: str = IN_CLUSTER_KFP, dry_run: bool = False):
    """`dry_run` decides and reports only; `kfp_host` is where a `cluster` retraining run is submitted."""
    task = check_and_retrain(profile=profile, kfp_host=kfp_host, dry_run=dry_run)
    task.set_display_name("drift, quality, retraining").set_caching_options(False)
