"""One data folder in two lakehouses: `local` (DuckDB, SQLite catalog) and `stack` (Trino, REST catalog)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from components.core.catalog import read_table
from components.core.results import Ingestion, Transformation
from components.core.settings import BRONZE, GOLD, SILVER, Settings, get_settings, scoped_environ
from components.ingestion.ingest import run_ingest
from components.transformation.transform import run_transform
from testing.stack import StackServices

ENGINES = ("duckdb", "trino")
#: Every model the transformation writes to Iceberg.
MODELS = (
    "silver.dim_customer",
    "silver.dim_product",
    "silver.dim_store",
    "silver.dim_date",
    "gold.fct_orders",
    "gold.fct_order_items",
    "gold.customer_features",
    "gold.churn_labels",
)


@dataclass
class Engines:
    """Both engines' settings over one data folder, and what each step returned (latest run last)."""

    stack: StackServices
    data_dir: Path
    duckdb: Settings
    trino: Settings
    ingests: dict[str, list[Ingestion]] = field(default_factory=lambda: {e: [] for e in ENGINES})
    builds: dict[str, list[Transformation]] = field(default_factory=lambda: {e: [] for e in ENGINES})

    def settings(self, engine: str) -> Settings:
        return {"duckdb": self.duckdb, "trino": self.trino}[engine]

    def read(self, engine: str, identifier: str) -> pa.Table:
        """A table as pyiceberg reads it from that engine's catalog."""
        with scoped_environ(self.stack.env):
            return read_table(identifier, self.settings(engine))

    def ingest(self) -> None:
        """Load the data folder into both catalogs' bronze (dlt, one engine after the other)."""
        with scoped_environ(self.stack.env):
            for engine in ENGINES:
                self.ingests[engine].append(run_ingest(self.settings(engine)))

    def build(self, engine: str) -> Transformation:
        """Run the transformation step (`dbt build`, and on DuckDB the publish) on one engine."""
        with scoped_environ(self.stack.env):
            return self._build(engine)

    def build_both(self) -> None:
        """Both transformations at once: each is mostly a dbt subprocess waiting on its engine.

        The environment is set once, around both threads: setting and restoring it in each thread would
        let the first to finish take the S3 keys away from the other.
        """
        with scoped_environ(self.stack.env), ThreadPoolExecutor(max_workers=len(ENGINES)) as pool:
            for run in [pool.submit(self._build, engine) for engine in ENGINES]:
                run.result()

    def _build(self, engine: str) -> Transformation:
        result = run_transform(self.settings(engine))
        self.builds[engine].append(result)
        return result


def local_settings() -> Settings:
    """The `local` profile as it is, without any LAKEHOUSE_* endpoint override of this environment."""
    kept = ("LAKEHOUSE_HOME", "LAKEHOUSE_DATA_DIR")
    overrides = [key for key in os.environ if key.startswith("LAKEHOUSE_") and key not in kept]
    saved = {key: os.environ.pop(key) for key in overrides}
    try:
        return get_settings("local")
    finally:
        os.environ.update(saved)


def make_engines(stack: StackServices, data_dir: Path, root: Path) -> Engines:
    """Settings of both engines over `data_dir`, their state folders `root/duckdb` and `root/trino`."""
    with scoped_environ({"LAKEHOUSE_DATA_DIR": str(data_dir), "LAKEHOUSE_HOME": str(root / "duckdb")}):
        duckdb = local_settings()
    with scoped_environ(
        {**stack.env, "LAKEHOUSE_DATA_DIR": str(data_dir), "LAKEHOUSE_HOME": str(root / "trino")}
    ):
        trino = get_settings("stack")
    if (duckdb.dbt_target, trino.dbt_target) != ("local", "trino"):
        raise ValueError(f"dbt targets are {duckdb.dbt_target!r}/{trino.dbt_target!r}, expected local/trino")
    if trino.catalog_uri != stack.config.catalog_url:
        raise ValueError(f"the stack profile points at {trino.catalog_uri}, not at the private stack")
    return Engines(stack=stack, data_dir=data_dir, duckdb=duckdb, trino=trino)


def clear_lakehouse(stack: StackServices) -> None:
    """Drop every table (files included) and view of bronze/silver/gold in the stack's catalog.

    One stack serves the whole test session: what other stack tests built must not mix with these
    tables, and these must not stay behind for them.
    """
    for schema in (GOLD, SILVER, BRONZE):
        if not stack.trino(f"SHOW SCHEMAS LIKE '{schema}'"):
            continue
        views = {
            row[0]
            for row in stack.trino(
                f"SELECT table_name FROM information_schema.views WHERE table_schema = '{schema}'"
            )
        }
        for (name,) in stack.trino(f"SHOW TABLES FROM {schema}"):
            stack.trino(f'DROP {"VIEW" if name in views else "TABLE"} IF EXISTS {schema}."{name}"')
