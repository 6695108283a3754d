"""Transformation step: `dbt build` of silver/gold from bronze (DuckDB models then published to Iceberg)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.core.catalog import get_catalog, snapshot_ids
from components.core.results import Transformation
from components.core.settings import BRONZE, GOLD, SILVER, SOURCE_TABLES, Settings, get_settings
from components.core.tables import iceberg_compatible

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from pyiceberg.table import Table, Transaction

log = logging.getLogger(__name__)

#: Table property (and snapshot summary entry) holding the sha256 of the published content.
CONTENT_HASH_PROPERTY = "lakehouse.content-sha256"
PUBLISHED_LAYERS = (SILVER, GOLD)
_FAILED_STATUSES = {"error", "fail", "runtime error"}
_DBT_PASSED = {"pass", "success"}


class TransformError(RuntimeError):
    """Raised when `dbt build` fails; the message names the failing models and tests."""


def run_transform(settings: Settings | None = None, full_refresh: bool = False) -> Transformation:
    """Build the dbt project for the profile's target and publish its silver/gold models to Iceberg.

    On a DuckDB target every silver and gold model is copied from the DuckDB file into the Iceberg
    namespaces `silver`/`gold` (one commit per table, skipped when the content is unchanged). On Trino the
    models already are Iceberg tables of the shared catalog, so their current snapshots, read through
    pyiceberg, are reported instead. Trino's address comes from `dbt_environment(settings)`.

    Args:
        settings: profile settings; the default profile when None.
        full_refresh: rebuild incremental models from scratch (`dbt build --full-refresh`).

    Returns:
        a `Transformation` (fields documented in `core/results.py`): the dbt invocation, counts of what ran,
        the bronze snapshots read and the silver/gold snapshots built.

    A failed build leaves silver/gold as they were: on DuckDB nothing is published; on Trino, which writes
    the Iceberg tables as it goes, every table the build changed is set back to its snapshot from before.

    Raises:
        TransformError: bronze is empty, or dbt failed (the message names the failing nodes).
    """
    settings = settings or get_settings()
    settings.ensure_dirs()
    bronze_snapshots = snapshot_ids(BRONZE, settings, SOURCE_TABLES)
    if not bronze_snapshots:
        raise TransformError(f"namespace {BRONZE!r} of {settings.catalog_uri} has no tables: run ingestion")
    if settings.dbt_target == "trino":
        run = _build_in_place(settings, full_refresh)
    else:
        run = _dbt_build(settings, full_refresh)
    if run["adapter_type"] == "duckdb":
        published = publish_models(settings, run["relations"])
    else:
        published = current_snapshots(settings, run["relations"])
    return Transformation(
        dbt_invocation_id=run["invocation_id"],
        target=settings.dbt_target,
        models=run["models"],
        tests=run["tests"],
        bronze_snapshots=bronze_snapshots,
        published=published,
    )


def dbt_paths(settings: Settings) -> dict[str, Path]:
    """Where dbt writes its artifacts and logs for this profile: under the state folder, not the repo."""
    root = settings.home / "dbt"
    return {"target": root / "target", "logs": root / "logs"}


def dbt_test_summary(settings: Settings) -> dict[str, Any]:
    """Counts of the last `dbt build`'s data and unit tests by status, and the tests that did not pass.

    Read from dbt's `run_results.json` in the profile's dbt target folder (`dbt_paths`).
    """
    results = json.loads((dbt_paths(settings)["target"] / "run_results.json").read_text())["results"]
    summary: dict[str, Any] = {
        "tests_passed": 0,
        "tests_warned": 0,
        "tests_failed": 0,
        "unit_tests_passed": 0,
    }
    not_passed = []
    for result in results:
        kind = result["unique_id"].split(".")[0]
        if kind not in ("test", "unit_test"):
            continue
        status = result["status"]
        if kind == "unit_test" and status in _DBT_PASSED:
            summary["unit_tests_passed"] += 1
        elif status in _DBT_PASSED:
            summary["tests_passed"] += 1
        elif status == "warn":
            summary["tests_warned"] += 1
        else:
            summary["tests_failed"] += 1
        if status not in _DBT_PASSED:
            not_passed.append(
                {"test": result["unique_id"], "status": status, "failures": result.get("failures")}
            )
    summary["not_passed"] = not_passed
    return summary


def dbt_environment(settings: Settings) -> dict[str, str]:
    """The environment of a dbt subprocess: this process's, the settings' LAKEHOUSE_* variables on top.

    `dbt/profiles.yml` reads the `local` target from LAKEHOUSE_DBT_DUCKDB_PATH and LAKEHOUSE_CATALOG_*, the
    `trino` target from LAKEHOUSE_TRINO_HOST/PORT/USER (settings fields too); the optional
    LAKEHOUSE_TRINO_CATALOG, LAKEHOUSE_TRINO_HTTP_SCHEME and DBT_ENV_SECRET_TRINO_PASSWORD, and the S3 keys,
    pass through from this process's environment.
    """
    return {**os.environ, **settings.env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def current_snapshots(settings: Settings, relations: list[tuple[str, str]]) -> dict[str, int | None]:
    """Current snapshot id of each Iceberg table `(layer, name)`, read through pyiceberg's catalog."""
    catalog = get_catalog(settings)
    ids: dict[str, int | None] = {}
    for layer, name in relations:
        snapshot = catalog.load_table(f"{layer}.{name}").current_snapshot()
        ids[f"{layer}.{name}"] = snapshot.snapshot_id if snapshot else None
    return ids


def published_snapshots(settings: Settings) -> dict[str, int | None]:
    """Current snapshot id of every silver and gold table, `"layer.name"` -> id."""
    return {
        ident: snap for layer in PUBLISHED_LAYERS for ident, snap in snapshot_ids(layer, settings).items()
    }


def restore_snapshots(settings: Settings, before: dict[str, int | None]) -> list[str]:
    """Put silver/gold back as `before` (from `published_snapshots`) described them.

    A table whose current snapshot moved is set back to its former one (its later snapshots stay in its
    history); a table that did not exist is dropped with its files. Returns what was done, one line each.
    """
    catalog = get_catalog(settings)
    done = []
    for identifier, current in published_snapshots(settings).items():
        if identifier not in before:
            catalog.purge_table(identifier)
            done.append(f"{identifier}: dropped (created by the failed build)")
        elif current != before[identifier] and before[identifier] is not None:
            table = catalog.load_table(identifier)
            table.manage_snapshots().set_current_snapshot(snapshot_id=before[identifier]).commit()
            done.append(f"{identifier}: back to snapshot {before[identifier]} (from {current})")
    return done


def _build_in_place(settings: Settings, full_refresh: bool) -> dict:
    """`dbt build` on an engine that writes the Iceberg tables itself; on failure they are restored."""
    before = published_snapshots(settings)
    try:
        return _dbt_build(settings, full_refresh)
    except TransformError as failure:
        restored = restore_snapshots(settings, before)
        detail = "\n  ".join(restored) or "no silver/gold table had changed"
        raise TransformError(
            f"{failure}\nsilver/gold restored to their state before the build:\n  {detail}"
        ) from None


def _dbt_build(settings: Settings, full_refresh: bool) -> dict:
    """Run `dbt build` in a subprocess of this interpreter and summarise its run results."""
    paths = dbt_paths(settings)
    results_file = paths["target"] / "run_results.json"
    results_file.unlink(missing_ok=True)
    project = str(settings.dbt_project_dir)
    command = [
        sys.executable, "-m", "dbt.cli.main", "build",
        "--project-dir", project, "--profiles-dir", project, "--target", settings.dbt_target,
        "--target-path", str(paths["target"]), "--log-path", str(paths["logs"]),
        "--no-version-check", "--no-use-colors",
    ]  # fmt: skip
    if full_refresh:
        command.append("--full-refresh")
    env = dbt_environment(settings)
    log.info("dbt build (target %s%s)", settings.dbt_target, ", full refresh" if full_refresh else "")
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    log.debug("dbt output:\n%s", proc.stdout)
    summary = [line for line in proc.stdout.splitlines() if "Done. PASS=" in line]
    if summary:
        log.info("dbt %s", summary[-1].split("  ", 1)[-1].strip())
    if not results_file.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise TransformError(f"dbt build exited with {proc.returncode} before running any node:\n{tail}")
    results = json.loads(results_file.read_text())
    failed = [
        f"{r['unique_id']} ({r['status']}: {(r.get('message') or '').strip()[:300]})"
        for r in results["results"]
        if r["status"] in _FAILED_STATUSES
    ]
    if failed or proc.returncode != 0:
        skipped = sum(r["status"] == "skipped" for r in results["results"])
        detail = "\n  ".join(failed) or "\n".join(proc.stdout.strip().splitlines()[-25:])
        raise TransformError(
            f"dbt build failed: {len(failed)} failing nodes, {skipped} skipped; logs in {paths['logs']}"
            f"\n  {detail}"
        )
    manifest = json.loads((paths["target"] / "manifest.json").read_text())
    built = {r["unique_id"] for r in results["results"] if r["status"] == "success"}
    relations = sorted(
        (node["schema"], node["alias"])
        for uid, node in manifest["nodes"].items()
        if uid in built and node["resource_type"] == "model" and node["schema"] in PUBLISHED_LAYERS
    )
    kinds = [r["unique_id"].split(".")[0] for r in results["results"]]
    return {
        "invocation_id": results["metadata"]["invocation_id"],
        "adapter_type": manifest["metadata"].get("adapter_type"),
        "models": kinds.count("model"),
        "tests": kinds.count("test") + kinds.count("unit_test"),
        "relations": relations,
    }


def publish_models(settings: Settings, relations: list[tuple[str, str]]) -> dict[str, int | None]:
    """Copy DuckDB tables `(layer, name)` into Iceberg `layer.name`, one overwrite commit per changed table.

    A table whose content hash (worked out in DuckDB, without reading the rows out) equals the one stored at
    its last publish keeps its current snapshot; only changed tables are read and written.

    Returns:
        `"layer.name"` -> current snapshot id after publishing.
    """
    import duckdb
    from pyiceberg.exceptions import NoSuchTableError

    catalog = get_catalog(settings)
    published: dict[str, int | None] = {}
    with duckdb.connect(settings.dbt_duckdb_path, read_only=True) as con:
        for layer, name in relations:
            identifier = f"{layer}.{name}"
            relation = f'"{layer}"."{name}"'
            schema = iceberg_compatible(con.sql(f"select * from {relation} limit 0").to_arrow_table()).schema
            digest = content_hash(con, relation, schema)
            catalog.create_namespace_if_not_exists(layer)
            try:
                table = catalog.load_table(identifier)
            except NoSuchTableError:
                table = catalog.create_table(identifier, schema=schema)
            snapshot = table.current_snapshot()
            if snapshot is not None and table.properties.get(CONTENT_HASH_PROPERTY) == digest:
                log.info("%s unchanged, snapshot %s kept", identifier, snapshot.snapshot_id)
                published[identifier] = snapshot.snapshot_id
                continue
            data = iceberg_compatible(con.sql(f"select * from {relation}").to_arrow_table())
            published[identifier] = _publish_table(table, data, digest)
    return published


def content_hash(con: duckdb.DuckDBPyConnection, relation: str, schema: pa.Schema) -> str:
    """sha256 of a table's schema, row count and the sum of its rows' hashes: the same for the same rows in
    any order (a table is a multiset), worked out by DuckDB where the table lives."""
    [(count, total)] = con.sql(f"select count(*), sum(hash(t)::hugeint) from {relation} as t").fetchall()
    digest = hashlib.sha256(str(schema).encode())
    digest.update(f"{count}:{total or 0}".encode())
    return digest.hexdigest()


def _publish_table(table: Table, data: pa.Table, digest: str) -> int | None:
    """Replace the table's rows with `data` in one commit that records `digest`."""
    snapshot = table.current_snapshot()
    with table.transaction() as tx:
        _align_schema(tx, table, data.schema)
        if snapshot is None:
            tx.append(data, snapshot_properties={CONTENT_HASH_PROPERTY: digest})
        else:
            tx.overwrite(data, snapshot_properties={CONTENT_HASH_PROPERTY: digest})
        tx.set_properties({CONTENT_HASH_PROPERTY: digest})
    snapshot = table.refresh().current_snapshot()
    name = ".".join(table.name())
    log.info("%s published: %d rows, snapshot %s", name, data.num_rows, snapshot.snapshot_id)
    return snapshot.snapshot_id


def _align_schema(tx: Transaction, table: Table, schema: pa.Schema) -> None:
    """Make the table's columns those of `schema`, within the publishing transaction.

    Columns the model no longer has are dropped; a column whose type cannot be promoted to the new one is
    dropped and added again (older snapshots keep their schema); new columns are added.
    """
    from pyiceberg.exceptions import ResolveError
    from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids
    from pyiceberg.schema import promote

    current = table.schema()
    wanted = {field.name: field.field_type for field in _pyarrow_to_schema_without_ids(schema).fields}
    replaced = []
    for field in current.fields:
        if field.name not in wanted:
            replaced.append(field.name)
        elif field.field_type != wanted[field.name]:
            try:
                promote(field.field_type, wanted[field.name])
            except ResolveError:
                replaced.append(field.name)
    if replaced:
        log.info("%s: replacing columns %s", ".".join(table.name()), replaced)
        with tx.update_schema() as update:
            for name in replaced:
                update.delete_column(name)
    if (
        replaced
        or set(wanted) - set(current.column_names)
        or any(field.field_type != wanted[field.name] for field in current.fields if field.name in wanted)
    ):
        with tx.update_schema() as update:
            update.union_by_name(schema)
