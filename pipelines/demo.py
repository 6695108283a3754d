"""`make demo`: generate the data, run the pipeline with kfp.local, serve the champion and query it."""

from __future__ import annotations

import json
import sys
import time

from components.settings import SERVED_MODEL_NAME, Settings, get_settings

DEMO_SCALE = 1.0
DEMO_SEED = 42


def _banner(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


def _ask_server(base: str, customer_ids: list[int]) -> None:
    import httpx

    v1 = {"instances": [{"customer_id": c} for c in customer_ids]}
    v2 = {
        "inputs": [
            {"name": "customer_id", "shape": [len(customer_ids)], "datatype": "INT64", "data": customer_ids}
        ]
    }
    with httpx.Client(base_url=base, timeout=30) as client:
        for label, path, body in (
            ("V1", f"/v1/models/{SERVED_MODEL_NAME}:predict", v1),
            ("V2", f"/v2/models/{SERVED_MODEL_NAME}/infer", v2),
        ):
            response = client.post(path, json=body)
            print(f"{label} POST {path}  ->  HTTP {response.status_code}")
            print(json.dumps(response.json(), indent=2))
        bad = client.post(f"/v1/models/{SERVED_MODEL_NAME}:predict", json={"instances": [{"customer": "x"}]})
        print(f"a malformed request  ->  HTTP {bad.status_code}: {bad.json()}")


def _how_to_look(settings: Settings) -> None:
    _banner("look around")
    print(
        "MLflow UI:  .venv/bin/mlflow ui --backend-store-uri "
        f"{settings.mlflow_tracking_uri} --port 5000   then open http://127.0.0.1:5000\n"
        "Feast UI:   (cd feature_repo && env $(../.venv/bin/python -m pipelines.env) ../.venv/bin/feast ui)"
        "   then open http://127.0.0.1:8888\n"
        "Serve:      make serve   then   .venv/bin/lakehouse predict 1 2 3\n"
        f"State:      {settings.home} (make clean removes it)"
    )


def main() -> int:
    from components.datagen import generate
    from pipelines.data_version import track_data
    from pipelines.run_local import run_local
    from serving.server import running_server

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

    _banner("3/3 model server: real V1 and V2 requests")
    started = time.perf_counter()
    known = [int(p["customer_id"]) for p in result.get("sample_predictions", [])][:3] or [1, 2, 3]
    with running_server(settings) as base:
        _ask_server(base, [*known, 999_999_999])
    timings["serve"] = time.perf_counter() - started

    _how_to_look(settings)
    print("\nwall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
