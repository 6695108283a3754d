"""Crash trials: kill `lakehouse run` with SIGKILL at random moments of four phases, recover, compare.

Each trial starts a run in a fresh state folder, kills it (with every child) a random delay after the
phase it aims at begins (ingestion, the dbt publish, Feast materialization, model registration), checks that
every table of the catalog reads whole, runs the pipeline again to the end, and compares silver/gold with a
lakehouse built from the same files without a crash (row counts and checksums). Orphan files are then
listed and removed, and the tables read again.

    .venv/bin/python -m bench.crash_trials --trials 20 --scale 0.03
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from components.core.settings import get_settings, scoped_environ
from components.ingestion.ingest import run_ingest
from components.operations.maintenance import run_maintenance
from components.sources.ecommerce.generator import generate
from components.transformation.transform import run_transform
from testing.crashes import PHASES, kill_during, run_to_completion, silver_gold_content, unreadable_tables


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--scale", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=7, help="seed of the data and of the kill moments")
    parser.add_argument("--keep", action="store_true", help="keep the trials' folders")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="crash-trials-"))
    data_dir = root / "data"
    generate(data_dir, scale=args.scale, seed=args.seed)
    with scoped_environ({"LAKEHOUSE_HOME": str(root / "reference"), "LAKEHOUSE_DATA_DIR": str(data_dir)}):
        reference = get_settings("local")
        run_ingest(reference)
        run_transform(reference)
        expected = silver_gold_content(reference)
    load = os.getloadavg()[0]
    print(f"reference: {len(expected)} silver/gold tables at scale {args.scale}; load average {load:.1f}")
    header = ("#", "phase", "delay s", "killed", "readable", "rerun s", "equal", "orphans")
    print("{:>3} {:<22} {:>7} {:>6} {:>8} {:>7} {:>5} {:>7}".format(*header))
    failures = 0
    phases = list(PHASES)
    for number in range(1, args.trials + 1):
        phase = phases[(number - 1) % len(phases)]
        delay = round(rng.uniform(0, PHASES[phase][1]), 2)
        home = root / f"trial-{number}"
        trial = kill_during(home, data_dir, phase, delay)
        with scoped_environ({"LAKEHOUSE_HOME": str(home), "LAKEHOUSE_DATA_DIR": str(data_dir)}):
            settings = get_settings("local")
            broken = unreadable_tables(settings)
            started = time.monotonic()
            run_to_completion(home, data_dir)
            rerun = time.monotonic() - started
            equal = silver_gold_content(settings) == expected
            reports = run_maintenance(
                settings, retention=timedelta(days=7), orphan_age=timedelta(0), remove_orphans=True
            )
            orphans = sum(r.orphans_removed for r in reports)
            equal = equal and not unreadable_tables(settings) and silver_gold_content(settings) == expected
        ok = trial.killed and not broken and equal
        failures += not ok
        print(
            f"{number:>3} {phase:<22} {delay:>7.2f} {trial.killed!s:>6} {not broken!s:>8} {rerun:>7.1f} "
            f"{equal!s:>5} {orphans:>7}",
            flush=True,
        )
        for line in broken:
            print(f"      unreadable: {line}")
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    print(f"{args.trials - failures}/{args.trials} trials recovered to the uninterrupted content")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
