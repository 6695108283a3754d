"""Looking after the lakehouse outside a run: `lakehouse reset`, `lakehouse maintenance`."""

from __future__ import annotations

import argparse

from components.core.settings import get_settings


def reset(args: argparse.Namespace) -> int:
    from components.operations.reset import reset_lakehouse
    from pipelines.run_local import require_services
    from pipelines.run_lock import lakehouse_lock

    settings = get_settings(args.profile)
    models = " and the registered model" if args.models else ""
    if not args.yes:
        print(
            f"`lakehouse reset` drops every bronze/silver/gold table of the {settings.profile!r} lakehouse "
            f"({settings.catalog_uri}) with its files, the online features, the Feast registry and dbt's and "
            f"dlt's state under {settings.home}{models}. The source files in {settings.data_dir} stay. "
            "Run it again with --yes to go ahead."
        )
        return 1
    require_services(settings)
    with lakehouse_lock(settings, wait=args.wait):
        done = reset_lakehouse(settings, models=args.models)
    for line in done or ["nothing to remove: the lakehouse was empty"]:
        print(f"  {line}")
    print("reset done: `lakehouse run` loads the source files into a fresh lakehouse")
    return 0


def maintenance(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from components.operations.maintenance import run_maintenance
    from pipelines.run_local import require_services
    from pipelines.run_lock import lakehouse_lock

    settings = get_settings(args.profile)
    retention = (
        args.retention_days if args.retention_days is not None else settings.policy.snapshot_retention_days
    )
    require_services(settings)
    with lakehouse_lock(settings, wait=args.wait):
        reports = run_maintenance(
            settings,
            retention=timedelta(days=retention),
            orphan_age=timedelta(minutes=args.orphan_minutes),
            remove_orphans=args.remove_orphans,
            compact=args.compact,
        )
    for report in reports:
        print(report.summary())
        for path in report.orphan_files if args.verbose else ():
            print(f"    {'removed' if report.orphans_removed else 'orphan'} {path}")
    orphans = sum(len(r.orphan_files) for r in reports)
    if orphans and not args.remove_orphans:
        print(f"{orphans} orphan files listed (--verbose names them): remove them with --remove-orphans")
    return 0


def register(
    commands: argparse._SubParsersAction, common: argparse.ArgumentParser, waiting: argparse.ArgumentParser
) -> None:
    wipe = commands.add_parser(
        "reset", parents=[common, waiting], help="start over: drop the lakehouse's tables and their state"
    )
    wipe.add_argument("--yes", action="store_true", help="go ahead (without it, say what would be removed)")
    wipe.add_argument("--models", action="store_true", help="delete the registered model (all versions) too")
    wipe.set_defaults(func=reset)

    maint = commands.add_parser(
        "maintenance",
        parents=[common, waiting],
        help="expire old snapshots, list or remove orphan files, compact small files",
    )
    maint.add_argument(
        "--retention-days", type=float, help="expire snapshots older than this (default: the profile's)"
    )
    maint.add_argument(
        "--orphan-minutes",
        type=float,
        default=60.0,
        help="only files older than this can be orphans, so a writer at work keeps its files (default 60)",
    )
    maint.add_argument("--remove-orphans", action="store_true", help="delete the orphan files found")
    maint.add_argument("--compact", action="store_true", help="rewrite tables made of many small files")
    maint.add_argument("--verbose", action="store_true", help="name every orphan file")
    maint.set_defaults(func=maintenance)
