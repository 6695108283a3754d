"""Wall time of the dbt build on DuckDB (`local`) and on Trino (`stack`), from the same data, per scale.

For each scale: generate the data, load it into a fresh local lakehouse and into the emptied stack
catalog, then time the transformation step on each engine, one engine at a time: a first build (every
model from scratch) and a second one on unchanged bronze (every incremental model finds nothing new).
`dbt` is dbt's own elapsed time from `run_results.json`; `step` is `run_transform()` end to end (on
DuckDB it includes publishing silver/gold to Iceberg); `load` is the machine's 1-minute load average
after the row (other work on the machine slows both engines). An untimed build at a small scale first
warms Trino's JVM up, whose first queries are several times slower. Starts a private stack on free
ports under /tmp and stops it at the end.

    .venv/bin/python -m bench.dbt_engines --scales 0.2 1.0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from components.sources.ecommerce.generator import generate
from components.transformation.transform import dbt_paths
from testing.engines import ENGINES, Engines, clear_lakehouse, make_engines
from testing.stack import StackServices, StackUnavailable, private_stack

HEADER = "scale  orders engine nodes | first: step    dbt | second: step    dbt | load"
WARMUP_SCALE = 0.05


def format_row(row: dict) -> str:
    first, second = row["first"], row["second"]
    return (
        f"{row['scale']:>5} {row['orders']:>7} {row['engine']:>6} {first['nodes']:>5.0f} | "
        f"{first['step']:>10.1f}s {first['dbt']:>5.1f}s | {second['step']:>11.1f}s {second['dbt']:>5.1f}s | "
        f"{row['load']:.1f}"
    )


def timed_build(engines: Engines, engine: str) -> dict[str, float]:
    """Run the transformation step on one engine; its wall time and dbt's own elapsed time, in seconds."""
    began = time.monotonic()
    result = engines.build(engine)
    step = time.monotonic() - began
    results = json.loads((dbt_paths(engines.settings(engine))["target"] / "run_results.json").read_text())
    return {"step": step, "dbt": results["elapsed_time"], "nodes": result.models + result.tests}


def bench_scale(stack: StackServices, scale: float, root: Path, second: bool = True) -> list[dict]:
    """Both engines' first and (unless `second` is False) second build at one scale."""
    data_dir = root / f"data-{scale}"
    written = generate(data_dir, scale=scale, seed=42)
    clear_lakehouse(stack)
    engines = make_engines(stack, data_dir, root / f"state-{scale}")
    engines.ingest()
    rows = []
    for engine in ENGINES:
        first = timed_build(engines, engine)
        again = timed_build(engines, engine) if second else first
        rows.append({"scale": scale, "engine": engine, "orders": written["orders"], "first": first})
        rows[-1].update(second=again, load=os.getloadavg()[0])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.2, 1.0])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    began = time.monotonic()
    try:
        with private_stack("lakehouse-bench-") as stack, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            print(
                f"stack up in {time.monotonic() - began:.0f} s (Trino {stack.config.trino_version})",
                flush=True,
            )
            bench_scale(stack, WARMUP_SCALE, Path(tmp), second=False)
            print(f"warm-up build at scale {WARMUP_SCALE} done", flush=True)
            print(HEADER, flush=True)
            for scale in args.scales:
                for row in bench_scale(stack, scale, Path(tmp)):
                    print(format_row(row), flush=True)
            clear_lakehouse(stack)
    except StackUnavailable as exc:
        print(f"the stack services cannot start on this machine: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
