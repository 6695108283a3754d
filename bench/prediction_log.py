"""Benchmark: what the prediction log costs a request, and how fast its segments load into Iceberg.

`python -m bench.prediction_log` starts the model server of an already trained state folder with the log
off and on in alternating rounds (so a change in the machine's load hits both alike), sends single-customer
V1 and V2 requests one at a time (`bench.prediction_latency`), and prints p50/p99 of each and their ratios;
then loads what the rounds with the log logged into `bronze.prediction_log` of that state folder and prints
how long the load took.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.prediction_latency import measure
from components.core.settings import Settings, get_settings
from testing.predictions import own_log


def _with_log(settings: Settings, folder: Path | None) -> Settings:
    """`settings` with the prediction log in `folder` (off when None)."""
    return (
        dataclasses.replace(settings, prediction_log_spool="")
        if folder is None
        else own_log(settings, folder)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prediction_log", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per protocol and round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds with the log off and on, alternating")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    settings = get_settings()
    figures: dict[str, list[dict[str, dict[str, float]]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="prediction-log-", dir=settings.home) as folder:
        logged = _with_log(settings, Path(folder))
        for _ in range(args.rounds):
            for state, round_settings in (("off", _with_log(settings, None)), ("on", logged)):
                figures[state].append(measure(args.requests, settings=round_settings))
        for protocol in ("V1", "V2"):
            line = [f"{protocol}:"]
            for key in ("p50_ms", "p99_ms", "server_cpu_ms_per_request"):
                off = statistics.median(round_[protocol][key] for round_ in figures["off"])
                on = statistics.median(round_[protocol][key] for round_ in figures["on"])
                line.append(f"{key.removesuffix('_ms')} off {off:.2f} / on {on:.2f} ms (x{on / off:.3f})")
            print(" ".join(line))
        from components.ingestion.prediction_log import load_prediction_log

        started = time.perf_counter()
        result = load_prediction_log(logged)
        seconds = time.perf_counter() - started
        print(f"load: {result.summary()} in {seconds:.2f} s ({result.rows / seconds:,.0f} rows/s)")
    print(
        f"{args.rounds} rounds x {args.requests} single-customer requests per protocol and state (medians "
        f"of the rounds), warm-up requests logged too; load average before: {load[0]:.2f}"
    )


if __name__ == "__main__":
    main()
