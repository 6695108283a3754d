"""Benchmark: wall time of each pipeline stage at a given scale, then online prediction latency.

Run: `.venv/bin/python -m bench.demo_stages [--scale 1.0] [--requests 2000]`. It works in a fresh
state folder under `.lakehouse/bench/` (removed first), so it never touches the demo's state.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

from bench.prediction_latency import measure, report
from components.core.settings import REPO_ROOT, get_settings


def _timed(label: str, timings: dict[str, float], step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = step()
    timings[label] = time.perf_counter() - started
    print(f"  {label:<28} {timings[label]:7.2f} s", flush=True)
    return result


def measure_stages(scale: float) -> tuple[dict[str, float], Any]:
    from components.deployment.deploy import deploy_champion
    from components.evaluation.evaluate import evaluate_and_promote
    from components.features.materialize import apply_and_materialize, get_training_set
    from components.ingestion.ingest import run_ingest
    from components.monitoring.monitor import monitor_drift
    from components.scoring.score import score_customers
    from components.sources.ecommerce.generator import generate
    from components.training.train import train_model
    from components.transformation.transform import run_transform

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
        "evaluate + promote", timings, lambda: evaluate_and_promote(frame, trained.model_version, settings)
    )
    _timed("deploy (load + smoke test)", timings, lambda: deploy_champion(settings))
    _timed("batch scores", timings, lambda: score_customers(settings))
    _timed("drift monitor", timings, lambda: monitor_drift(settings))
    print(f"  {'total':<28} {sum(timings.values()):7.2f} s   ({len(frame):,} training rows)")
    return timings, settings


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
    load = os.getloadavg()[0]
    report(measure(args.requests, settings=settings), args.requests)
    print(f"load average before the latency run: {load:.2f}")


if __name__ == "__main__":
    main()
