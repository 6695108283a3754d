"""Maintenance and reset of a real local lakehouse: snapshots expired, orphans, compaction, a fresh start."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from components.core.catalog import get_catalog, read_table, snapshot_ids
from components.ingestion.ingest import run_ingest
from components.operations.maintenance import lakehouse_tables, run_maintenance
from components.operations.reset import reset_lakehouse
from pipelines.cli import main
from testing.fingerprints import fingerprint
from testing.tiny_source import ROWS, write_source

NOW = timedelta(0)


def three_loads(settings) -> None:
    """Three ingestions that change `bronze.orders`: three snapshots, three data files."""
    run_ingest(settings)
    rows = {table: list(lines) for table, lines in ROWS.items()}
    for order_id, day in ((1002, "2024-03-01"), (1003, "2024-03-02")):
        rows["orders"].append(f"{order_id},1,100,{day} 12:00:00,placed,{day} 12:00:00")
        write_source(settings.data_dir, rows)
        run_ingest(settings)


def killed_writer_file(settings) -> str:
    """A data file written into `bronze.orders` by a writer that died before committing."""
    table = get_catalog(settings).load_table("bronze.orders")
    path = f"{table.location().removeprefix('file://')}/data/00000-killed-writer.parquet"
    pq.write_table(pa.table({"order_id": [9999]}), path)
    return path


def test_maintenance_expires_snapshots_and_lists_then_removes_orphans(settings):
    three_loads(settings)
    orphan = killed_writer_file(settings)
    before = fingerprint(read_table("bronze.orders", settings))
    current = snapshot_ids("bronze", settings)

    week = timedelta(days=7)
    listed = {r.identifier: r for r in run_maintenance(settings, retention=week, orphan_age=NOW)}
    assert listed["bronze.orders"].orphan_files == [orphan]  # listed, not removed, nothing expired
    assert (listed["bronze.orders"].orphans_removed, listed["bronze.orders"].snapshots_expired) == (0, 0)
    assert all(not r.orphan_files for name, r in listed.items() if name != "bronze.orders")

    done = {
        r.identifier: r for r in run_maintenance(settings, retention=NOW, orphan_age=NOW, remove_orphans=True)
    }
    orders = done["bronze.orders"]
    assert orders.snapshots_expired == 2
    table = get_catalog(settings).load_table("bronze.orders")
    assert [s.snapshot_id for s in table.snapshots()] == [current["bronze.orders"]]
    # the expired snapshots' files are orphans now too, and go with the killed writer's file
    assert orphan in orders.orphan_files and len(orders.orphan_files) > 1
    assert orders.orphans_removed == len(orders.orphan_files)
    assert fingerprint(read_table("bronze.orders", settings)) == before
    assert snapshot_ids("bronze", settings) == current
    assert all(not r.orphan_files for r in run_maintenance(settings, retention=NOW, orphan_age=NOW))


def test_young_files_are_never_orphans(settings):
    run_ingest(settings)
    killed_writer_file(settings)
    reports = run_maintenance(settings, retention=timedelta(days=7), orphan_age=timedelta(hours=1))
    assert all(not r.orphan_files and r.snapshots_expired == 0 for r in reports)


def test_compaction_rewrites_small_files_keeping_the_rows(settings):
    three_loads(settings)
    before = fingerprint(read_table("bronze.orders", settings))
    reports = {r.identifier: r for r in run_maintenance(settings, retention=timedelta(days=7), compact=True)}
    orders = reports["bronze.orders"]
    assert orders.data_files_before == 3 and orders.data_files_after == 1
    assert reports["bronze.stores"].data_files_after is None  # one file already: left alone
    assert fingerprint(read_table("bronze.orders", settings)) == before


def test_reset_gives_a_fresh_lakehouse_and_a_full_load_after(settings):
    from components.transformation.transform import run_transform

    run_ingest(settings)
    run_transform(settings)
    done = reset_lakehouse(settings)
    assert any("bronze.orders dropped" in line for line in done)
    assert lakehouse_tables(settings) == []
    assert not (settings.home / "dlt").exists() and not (settings.home / "dbt.duckdb").exists()
    assert run_ingest(settings).rows_loaded["orders"] == len(ROWS["orders"])


def test_cli_reset_asks_first_and_generate_says_how_new_data_is_merged(settings, capsys):
    run_ingest(settings)
    assert main(["reset"]) == 1
    assert "--yes" in capsys.readouterr().out
    assert lakehouse_tables(settings)
    assert main(["data", "generate", "--scale", "0.02", "--no-dvc"]) == 0
    out = capsys.readouterr().out
    assert "merges the new files into them as updates" in out and "lakehouse reset --yes" in out
    assert main(["reset", "--yes"]) == 0
    assert "reset done" in capsys.readouterr().out
    assert lakehouse_tables(settings) == []
    assert main(["maintenance"]) == 0
