"""The pipeline on this machine and its results: `lakehouse run`, `compile`, `lineage`, and `monitor`, which
starts a run when the served model needs a new one."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from components.core.settings import get_settings
from pipelines.compile import DEFAULT_OUTPUT


def run(args: argparse.Namespace) -> int:
    from pipelines.run_local import run_local

    settings = get_settings(args.profile)
    if settings.profile == "cluster":
        print(
            "the cluster profile runs on a KFP API server: `lakehouse compile --profile cluster`, "
            "then `lakehouse submit --host URL`"
        )
        return 2
    started = time.perf_counter()
    result = run_local(settings, full_refresh=args.full_refresh, wait=args.wait)
    print(json.dumps(result.to_dict(), indent=2, default=str))
    print(f"pipeline finished in {time.perf_counter() - started:.1f} s")
    return 0


def compile_(args: argparse.Namespace) -> int:
    from pipelines.compile import compile_pipeline

    settings = get_settings(args.profile) if args.profile else None
    print(f"compiled to {compile_pipeline(Path(args.output), settings)}")
    return 0


def lineage(args: argparse.Namespace) -> int:
    from components.core.lineage import format_lineage, model_lineage

    lineage = model_lineage(get_settings(args.profile), args.model_version)
    print(json.dumps(lineage, indent=2) if args.json else format_lineage(lineage))
    return 0


def monitor(args: argparse.Namespace) -> int:
    from pipelines.monitoring import check_and_retrain, schedule_monitoring

    if args.schedule:
        if not args.host:
            raise ValueError("--schedule submits a recurring KFP run: give the KFP API server with --host")
        done = schedule_monitoring(get_settings(args.profile), args.host, args.schedule, dry_run=args.dry_run)
        print(f"recurring run {done.run_id} of pipeline {done.pipeline_id}: {done.url}")
        return 0
    outcome = check_and_retrain(
        get_settings(args.profile), dry_run=args.dry_run, host=args.host, wait=args.wait
    )
    print(f"prediction log: {outcome.predictions_loaded} predictions loaded")
    print(f"drifted columns: {', '.join(outcome.drifted) or 'none'}")
    print(f"degraded (quality once labels are known): {', '.join(outcome.degraded) or 'none'}")
    if outcome.shadow is not None:
        shadow = outcome.shadow
        done = "promoted" if shadow.promoted and not args.dry_run else "would be promoted (dry run)"
        state = done if shadow.promoted else "stays challenger"
        print(f"challenger version {shadow.challenger_version} {state}: {shadow.reason}")
    print(
        outcome.decision.summary
        + (" (dry run: nothing started)" if args.dry_run and outcome.decision.retrain else "")
    )
    if outcome.started:
        print(f"retraining run: {outcome.started}")
    return 0


def register(
    commands: argparse._SubParsersAction, common: argparse.ArgumentParser, waiting: argparse.ArgumentParser
) -> None:
    run_ = commands.add_parser(
        "run", parents=[common, waiting], help="run the whole pipeline locally with kfp.local"
    )
    run_.add_argument(
        "--full-refresh", action="store_true", help="rebuild silver and gold from bronze (dbt --full-refresh)"
    )
    run_.set_defaults(func=run)

    check = commands.add_parser(
        "monitor",
        parents=[common, waiting],
        help="check drift and quality on current data, promote a challenger that proved better in the shadow,"
        " start a retraining run when due (once per cooldown)",
    )
    check.add_argument("--dry-run", action="store_true", help="decide and report only")
    check.add_argument("--host", help="the KFP API server a cluster retraining run is submitted to")
    check.add_argument(
        "--schedule",
        metavar="CRON",
        help="on a cluster: submit the check to --host as a recurring KFP run on this cron schedule (six "
        "fields, seconds first, UTC) instead of running it here",
    )
    check.set_defaults(func=monitor)

    comp = commands.add_parser("compile", parents=[common], help="compile the pipeline to KFP YAML")
    comp.add_argument("--output", default=str(DEFAULT_OUTPUT))
    comp.set_defaults(func=compile_)

    traced = commands.add_parser(
        "lineage", parents=[common], help="the data, snapshots and runs a model version came from"
    )
    traced.add_argument("model_version", nargs="?", help="registered version (default: the champion)")
    traced.add_argument("--json", action="store_true", help="print the lineage as JSON")
    traced.set_defaults(func=lineage)
