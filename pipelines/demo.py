"""`make demo`: generate the data, run the pipeline with kfp.local, serve the champion and query it."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from components.core.settings import Settings, get_settings
from pipelines.run_local import RunSummary, run_local

DEMO_SCALE = 1.0
DEMO_SEED = 42


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def _ask_server(base: str, customer_ids: list[int]) -> None:
    import httpx

    from components.core.serving_client import V1_PATH, prediction_request

    with httpx.Client(base_url=base, timeout=30) as client:
        for protocol in ("v1", "v2"):
            path, body = prediction_request(protocol, customer_ids)
            response = client.post(path, json=body)
            print(f"{protocol.upper()} POST {path}  ->  HTTP {response.status_code}")
            print(json.dumps(response.json(), indent=2))
        bad = client.post(V1_PATH, json={"instances": [{"customer": "x"}]})
        print(f"a malformed request  ->  HTTP {bad.status_code}: {bad.json()}")


def _top_scores(settings: Settings, count: int = 3) -> list[dict]:
    """The `count` customers with the highest churn probability in this run's `gold.churn_scores`."""
    from components.core.catalog import read_table
    from components.scoring.score import CHURN_SCORES

    scores = read_table(CHURN_SCORES, settings).to_pandas()
    latest = scores[scores["as_of_ts"] == scores["as_of_ts"].max()]
    return latest.nlargest(count, "churn_probability").to_dict("records")


def _where_things_are(settings: Settings, result: RunSummary, top: list[dict]) -> None:
    _banner("what the run left behind")
    artifacts = result.artifacts
    print(f"KFP artifacts of this run (one folder per step): {result.run_folder}")
    for name, path in artifacts.items():
        print(f"  {name:<18} {path}")
    report = settings.home / "reports" / f"{Path(result.run_folder).name}.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifacts["run_report"], report)  # the artifact file has no extension a browser knows
    print(f"Run report (open in a browser): {report}")
    print(f"Promotion: {result.decision}: {result.reason}")
    drifted = ", ".join(result.drifted) or "none"
    print(
        f"Drift against the training window (gold.feature_drift): columns over the PSI threshold: {drifted}"
    )
    quality = (
        f"{result.quality_groups} groups measured, degraded: {', '.join(result.degraded) or 'none'}"
        if result.quality_groups
        else "none yet: no scored as-of date has its 30-day label window closed"
    )
    print(f"Quality of past predictions against their labels (gold.model_performance): {quality}")
    if settings.alert_file and Path(settings.alert_file).is_file():
        kinds = [json.loads(line)["kind"] for line in Path(settings.alert_file).read_text().splitlines()]
        counts = ", ".join(f"{kinds.count(kind)} {kind}" for kind in dict.fromkeys(kinds))
        print(
            f"Alerts (drift, promotions, failed runs; a webhook too with LAKEHOUSE_ALERT_WEBHOOK_URL): "
            f"{settings.alert_file} ({counts})"
        )
    print("Batch scores (gold.churn_scores), highest churn probability first:")
    for row in top:
        print(
            f"  customer {row['customer_id']:>6}  {row['churn_probability']:.4f}  "
            f"(model version {row['model_version']}, as of {row['as_of_ts']:%Y-%m-%d})"
        )
    print(
        '  read them: .venv/bin/python -c "from components.core.catalog import read_table; '
        "print(read_table('gold.churn_scores').to_pandas())\""
    )


def _load_prediction_log(settings: Settings) -> None:
    """Load what the servers logged (the deploy step's check and the requests above) into the lakehouse."""
    from components.ingestion.prediction_log import load_prediction_log

    result = load_prediction_log(settings)
    print(f"\nPrediction log (every answer, loaded by `lakehouse predictions load`): {result.summary()}")
    print(
        '  read it: .venv/bin/python -c "from components.core.catalog import read_table; '
        "print(read_table('bronze.prediction_log').to_pandas())\""
    )


def _how_to_look(settings: Settings, result: RunSummary) -> None:
    _banner("look around")
    figures = ""
    if "://" not in settings.mlflow_artifact_root:
        figures = (
            f" (files under {settings.mlflow_artifact_root}/churn-propensity/<run id>/artifacts/figures/)"
        )
    print(
        "MLflow UI:  .venv/bin/mlflow ui --backend-store-uri "
        f"{settings.mlflow_tracking_uri} --port 5000   then open http://127.0.0.1:5000\n"
        f"            the champion's run, tab Artifacts: figures/ (ROC, PR, calibration, importance), "
        f"promotion/{figures}\n"
        f"Lineage:    .venv/bin/lakehouse lineage {result.model_version}\n"
        "Feast UI:   (cd feature_repo && env $(../.venv/bin/python -m pipelines.env) ../.venv/bin/feast ui)"
        "   then open http://127.0.0.1:8888\n"
        "Features over HTTP: env $(.venv/bin/python -m pipelines.env) .venv/bin/feast -c feature_repo serve "
        "--port 6566 --no-access-log\n"
        "            then  curl -s localhost:6566/get-online-features "
        """-d '{"feature_service": "churn_v1", "entities": {"customer_id": [1, 2]}}'\n"""
        "            (SDK and point-in-time examples: feature_repo/README.md)\n"
        "Serve:      make serve   then   .venv/bin/lakehouse predict 1 2 3\n"
        f"State:      {settings.home} (make clean removes it)"
    )


def main() -> int:
    from components.core.serving_client import running_server
    from components.sources.ecommerce.generator import generate
    from pipelines.data_version import track_data

    settings = get_settings()
    timings: dict[str, float] = {}

    _banner(f"1/3 source data: scale {DEMO_SCALE}, seed {DEMO_SEED}")
    started = time.perf_counter()
    rows = generate(settings.data_dir, scale=DEMO_SCALE, seed=DEMO_SEED)
    print(", ".join(f"{table} {count:,}" for table, count in rows.items()))
    print(track_data(settings.data_dir))
    timings["data"] = time.perf_counter() - started

    _banner("2/3 pipeline churn-training on kfp.local")
    started = time.perf_counter()
    result = run_local(settings)
    timings["pipeline"] = time.perf_counter() - started
    print(json.dumps(result, indent=2, default=str))

    top = _top_scores(settings)
    _where_things_are(settings, result, top)

    _banner("3/3 model server: real V1 and V2 requests")
    started = time.perf_counter()
    with running_server(settings) as base:
        _ask_server(base, [int(row["customer_id"]) for row in top] + [999_999_999])
    _load_prediction_log(settings)
    timings["serve"] = time.perf_counter() - started

    _how_to_look(settings, result)
    print("\nwall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
