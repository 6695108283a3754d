"""Benchmark: Feast online read latency of single customers, Redis against SQLite, on the model server's path.

Run (Redis from the stack, `infrastructure/local/stack.sh up` first):

    eval "$(infrastructure/local/stack.sh env)"
    .venv/bin/python -m bench.online_stores --reads 2000

It builds gold once in `.lakehouse/bench-online/` (generate, dlt, dbt on DuckDB; reused on later runs),
applies and materializes the feature repository into a SQLite file and into Redis database 1 (the `stack`
profile's online store, database 0, is left alone), then times `OnlineFeatureReader.read([customer_id])`,
the call the model server makes per request, for each store. The Redis keys are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

from components.core.settings import FEATURE_SERVICE, REPO_ROOT, Settings, get_settings

HOME = REPO_ROOT / ".lakehouse" / "bench-online"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build_gold(settings: Settings, scale: float) -> list[int]:
    """Customer ids of `gold.customer_features`, building gold first when the state folder has none."""
    from components.core.catalog import snapshot_ids

    if "gold.customer_features" not in snapshot_ids("gold", settings):
        from components.ingestion.ingest import run_ingest
        from components.sources.ecommerce.generator import generate
        from components.transformation.transform import run_transform

        started = time.perf_counter()
        generate(settings.data_dir, scale=scale, seed=42)
        run_ingest(settings)
        run_transform(settings)
        print(f"gold built at scale {scale} in {time.perf_counter() - started:.0f} s ({settings.home})")
    from components.core.catalog import read_table

    ids = read_table("gold.customer_features", settings).column("customer_id").unique().to_pylist()
    return sorted(int(i) for i in ids)


def store_settings(settings: Settings, store: str, redis_url: str) -> Settings:
    """The settings with the given online store (its own Feast registry file, so the stores stay apart)."""
    registry = str(settings.home / "feast" / f"registry-{store}.db")
    if store == "sqlite":
        return replace(settings, feast_online_store="sqlite", feast_registry=registry)
    return replace(settings, feast_online_store="redis", redis_url=redis_url, feast_registry=registry)


def time_reads(settings: Settings, ids: list[int], reads: int, warmup: int) -> dict[str, float]:
    """Materialize, then time `reads` single-customer reads (after `warmup` untimed ones), in ms."""
    from components.core.feature_store import get_store
    from components.features.materialize import apply_and_materialize
    from serving.online_features import OnlineFeatureReader

    materialized = apply_and_materialize(settings)
    reader = OnlineFeatureReader(get_store(settings), FEATURE_SERVICE)
    for i in range(warmup):
        reader.read([ids[i % len(ids)]])
    latencies, unknown = [], 0
    for i in range(reads):
        started = time.perf_counter()
        _, known = reader.read([ids[i % len(ids)]])
        latencies.append((time.perf_counter() - started) * 1000)
        unknown += not known[0]
    if unknown == reads:
        raise RuntimeError(f"no customer has online features in {settings.feast_online_store}")
    return {
        "p50_ms": _percentile(latencies, 0.5),
        "p90_ms": _percentile(latencies, 0.9),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "customers": materialized.online_customers,
        "unknown_reads": unknown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000, help="timed reads per store (default 2000)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--scale", type=float, default=1.0, help="data scale when gold is built (default 1)")
    parser.add_argument("--redis-url", default=os.environ.get("LAKEHOUSE_REDIS_URL", ""))
    parser.add_argument("--redis-db", type=int, default=1, help="Redis database to use (default 1)")
    args = parser.parse_args()
    if args.reads < 1000:
        parser.error("--reads must be at least 1000 for a stable p99")
    if not args.redis_url:
        parser.error('no Redis: run `eval "$(infrastructure/local/stack.sh env)"` or pass --redis-url')
    parts = urlsplit(args.redis_url)
    redis_url = urlunsplit(parts._replace(path=f"/{args.redis_db}"))

    # the `local` profile as committed: `stack.sh env` overrides (catalog, warehouse...) do not apply here
    for name in [name for name in os.environ if name.startswith("LAKEHOUSE_")]:
        del os.environ[name]
    os.environ["LAKEHOUSE_HOME"] = str(HOME)
    os.environ["LAKEHOUSE_DATA_DIR"] = str(HOME / "data")
    base = get_settings("local")
    ids = build_gold(base, args.scale)
    print(f"{args.reads} single-customer reads per store over {len(ids)} customers, {args.warmup} warm-up")
    for store in ("sqlite", "redis"):
        settings = store_settings(base, store, redis_url)
        figures = time_reads(settings, ids, args.reads, args.warmup)
        where = settings.feast_online_path if store == "sqlite" else redis_url
        print(
            f"  {store:<6} p50 {figures['p50_ms']:.3f} ms  p90 {figures['p90_ms']:.3f} ms  "
            f"p99 {figures['p99_ms']:.3f} ms  max {figures['max_ms']:.2f} ms  "
            f"({figures['customers']} customers online, {where})",
            flush=True,
        )
        if store == "redis":
            from components.core.feature_store import get_store

            get_store(settings).teardown()
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
