"""Benchmark: wall time of each pipeline stage at a given scale, then online prediction latency.

Run: `.venv/bin/python -m bench.demo_stages [--scale 1.0] [--requests 2000]`. It works in a fresh
state folder under `.lakehouse/bench/` (removed first), so it never touches the demo's state.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from collections.abc import Callable
from typing import Any

from components.settings import REPO_ROOT, SERVED_MODEL_NAME, get_settings


def _timed(label: str, timings: dict[str, float], step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = step()
    timings[label] = time.perf_counter() - started
    print(f"  {label:<28} {timings[label]:7.2f} s", flush=True)
    return result


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure_stages(scale: float) -> tuple[dict[str, float], Any]:
    from components.datagen import generate
    from components.deploy import deploy_champion
    from components.evaluate import evaluate_and_promote
    from components.features import apply_and_materialize, get_training_set
    from components.ingest import run_ingest
    from components.train import train_model
    from components.transform import run_transform

    settings = get_settings("local")
    timings: dict[str, float] = {}
    print(f"stages at scale {scale} (state in {settings.home})")
    _timed("generate data", timings, lambda: generate(settings.data_dir, scale=scale, seed=42))
    _timed("ingest (dlt -> bronze)", timings, lambda: run_ingest(settings))
    _timed("transform (dbt build)", timings, lambda: run_transform(settings))
    _timed("feast apply + materialize", timings, lambda: apply_and_materialize(settings))
    frame = _timed("training set (point in time)", timings, lambda: get_training_set(settings))
    trained = _timed("train + register", timings, lambda: train_model(frame, settings))
    _timed(
        "evaluate + promote", timings, lambda: evaluate_and_promote(frame, trained["model_version"], settings)
    )
    _timed("deploy (load + smoke test)", timings, lambda: deploy_champion(settings))
    print(f"  {'total':<28} {sum(timings.values()):7.2f} s   ({len(frame):,} training rows)")
    return timings, settings


def measure_latency(settings: Any, requests: int) -> None:
    import httpx

    from components.lakehouse import read_table
    from serving.server import running_server

    ids = [
        int(c) for c in read_table("gold.churn_labels", settings).column("customer_id").unique().to_pylist()
    ]
    with running_server(settings) as base, httpx.Client(base_url=base, timeout=10) as client:
        for protocol, path, body in (
            ("V1", f"/v1/models/{SERVED_MODEL_NAME}:predict", lambda c: {"instances": [{"customer_id": c}]}),
            (
                "V2",
                f"/v2/models/{SERVED_MODEL_NAME}/infer",
                lambda c: {
                    "inputs": [{"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [c]}]
                },
            ),
        ):
            for i in range(50):  # warm up
                client.post(path, json=body(ids[i % len(ids)])).raise_for_status()
            latencies = []
            for i in range(requests):
                started = time.perf_counter()
                client.post(path, json=body(ids[i % len(ids)])).raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
            print(
                f"online prediction {protocol} over HTTP, {requests} single-customer requests: "
                f"p50 {statistics.median(latencies):.2f} ms, p99 {_percentile(latencies, 0.99):.2f} ms, "
                f"max {max(latencies):.2f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    home = REPO_ROOT / ".lakehouse" / "bench"
    shutil.rmtree(home, ignore_errors=True)
    os.environ["LAKEHOUSE_HOME"] = str(home)
    os.environ["LAKEHOUSE_DATA_DIR"] = str(home / "data")
    os.environ.setdefault("LAKEHOUSE_SERVING_PORT", "18090")
    _, settings = measure_stages(args.scale)
    measure_latency(settings, args.requests)


if __name__ == "__main__":
    main()
