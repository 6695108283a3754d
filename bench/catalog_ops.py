"""Iceberg catalog operations on the stack: the JDBC catalog (pyiceberg's SQL catalog on PostgreSQL, what the
stack used before) against the REST catalog server, both over the same PostgreSQL and MinIO.

For each catalog, `--calls` times each of: `load_table` of a table with a few snapshots, `list_tables` of a
namespace holding ten tables, and an append commit of one row (a data file, a manifest, a manifest list and
the new metadata file in S3, then the catalog's compare-and-swap). Prints p50/p90/p99/max in milliseconds,
and the machine's load average. Starts a private stack on free ports under /tmp and stops it at the end.

    .venv/bin/python -m bench.catalog_ops --calls 300
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

import pyarrow as pa

from testing.stack import StackServices, StackUnavailable, private_stack

NAMESPACE = "bench_catalog"
TABLES = 10


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of durations in seconds, as milliseconds."""
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000  # noqa: E731
    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1] * 1000}


def timed(call: Callable[[], object], count: int) -> list[float]:
    durations = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        durations.append(time.perf_counter() - began)
    return durations


def catalogs(stack: StackServices) -> dict:
    """The two catalogs, each in a namespace of its own in PostgreSQL and its own prefix in the bucket."""
    from pyiceberg.catalog import load_catalog

    rest = load_catalog("lakehouse", **stack.catalog_properties)
    s3 = {key: value for key, value in stack.catalog_properties.items() if key.startswith("s3.")}
    jdbc = load_catalog(
        "bench_jdbc",
        type="sql",
        uri=stack.config.pg_url("iceberg_catalog"),
        warehouse="s3://lakehouse/bench-jdbc",
        **s3,
    )
    return {"jdbc": jdbc, "rest": rest}


def bench_catalog(catalog, calls: int) -> dict[str, dict[str, float]]:
    row = pa.table({"event_id": pa.array([1], pa.int64()), "kind": pa.array(["view"], pa.string())})
    catalog.create_namespace_if_not_exists(NAMESPACE)
    tables = [catalog.create_table(f"{NAMESPACE}.events_{i}", schema=row.schema) for i in range(TABLES)]
    target = tables[0]
    for _ in range(3):
        target.append(row)
    identifier = f"{NAMESPACE}.events_0"
    timed(lambda: catalog.load_table(identifier), 10)  # warm-up: connections, JIT, caches
    results = {
        "load_table": percentiles(timed(lambda: catalog.load_table(identifier), calls)),
        "list_tables": percentiles(timed(lambda: catalog.list_tables(NAMESPACE), calls)),
        "append": percentiles(timed(lambda: target.append(row), calls)),
    }
    for table in tables:
        catalog.purge_table(table.name())
    catalog.drop_namespace(NAMESPACE)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per operation and catalog")
    args = parser.parse_args(argv)
    try:
        with private_stack(prefix="lakehouse-bench-catalog-") as stack:
            results = {name: bench_catalog(catalog, args.calls) for name, catalog in catalogs(stack).items()}
    except StackUnavailable as exc:
        print(f"the stack services cannot start here: {exc}", file=sys.stderr)
        return 2
    print(f"{args.calls} calls each; ms; load average {os.getloadavg()[0]:.1f}")
    print(f"{'operation':<12} {'catalog':<5} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    for operation in ("load_table", "list_tables", "append"):
        for name, result in results.items():
            figures = result[operation]
            print(
                f"{operation:<12} {name:<5} "
                + " ".join(f"{figures[key]:>7.2f}" for key in ("p50", "p90", "p99", "max"))
            )
        ratio = results["rest"][operation]["p50"] / results["jdbc"][operation]["p50"]
        print(f"{'':<12} REST/JDBC p50 x{ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
