"""`lakehouse data generate`: the seeded e-commerce source files; `upload`: them to the object store."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from components.core.settings import Settings, get_settings


def generate(args: argparse.Namespace) -> int:
    from components.sources.ecommerce.generator import generate
    from pipelines.data_version import track_data

    settings = get_settings(args.profile)
    out = Path(args.out) if args.out else settings.data_dir
    if out.resolve() == settings.data_dir:
        _say_how_new_data_is_merged(settings)
    started = time.perf_counter()
    print(
        f"generating scale={args.scale} seed={args.seed} dirty_rate={args.dirty_rate} into {out}", flush=True
    )
    rows = generate(
        out, scale=args.scale, seed=args.seed, dirty_rate=args.dirty_rate, start=args.start, days=args.days
    )
    for table, count in rows.items():
        print(f"  {table:<12} {count:>9,} rows")
    print(f"done in {time.perf_counter() - started:.1f} s", flush=True)
    if not args.no_dvc:
        print(track_data(out))
    return 0


def upload(args: argparse.Namespace) -> int:
    from components.sources.store import upload_exports

    settings = get_settings(args.profile)
    if args.to:
        settings = replace(settings, sources_uri=args.to)
    if not settings.sources_uri:
        print(
            f"error: the {settings.profile!r} profile reads its exports from {settings.data_dir} "
            "(sources_uri is empty): name an object store prefix with --to s3://bucket/prefix",
            file=sys.stderr,
        )
        return 2
    for written in upload_exports(settings):
        print(f"  {written}")
    print(f"uploaded the exports of {settings.data_dir}: the next ingest step reads them", flush=True)
    return 0


def _say_how_new_data_is_merged(settings: Settings) -> None:
    """Before new source files replace the old ones: tell the user what the next run will do with them."""
    from components.operations.maintenance import lakehouse_tables

    try:
        bronze = [t for t in lakehouse_tables(settings) if t.startswith("bronze.")]
    except Exception:  # noqa: BLE001 - a catalog that cannot be read has nothing to warn about
        return
    if bronze:
        print(
            f"note: the {settings.profile!r} lakehouse ({settings.catalog_uri}) already holds {len(bronze)} "
            "bronze tables loaded from earlier source files. The next `lakehouse run` merges the new files "
            "into them as updates: rows with a known key are replaced, new keys are added, nothing is "
            "removed. To start clean instead: `lakehouse reset --yes`, then `lakehouse run`.",
            flush=True,
        )


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    data = commands.add_parser("data", help="source data commands")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    gen = data_commands.add_parser(
        "generate", parents=[common], help="generate the e-commerce source files (deterministic, seeded)"
    )
    gen.add_argument("--scale", type=float, default=1.0, help="1.0 = 1,000 customers (default 1.0)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument("--dirty-rate", type=float, default=0.02, help="share of dirty rows (default 0.02)")
    gen.add_argument("--start", default="2024-01-01", help="first day of the business (default 2024-01-01)")
    gen.add_argument("--days", type=int, default=540, help="days of business history (default 540)")
    gen.add_argument("--out", help="output folder (default: the profile's data folder)")
    gen.add_argument("--no-dvc", action="store_true", help="do not record the data version with DVC")
    gen.set_defaults(func=generate)
    put = data_commands.add_parser(
        "upload",
        parents=[common],
        help="copy the export files to the profile's sources_uri, where the ingest step reads them",
    )
    put.add_argument("--to", help="object store prefix (default: the profile's sources_uri)")
    put.set_defaults(func=upload)
