"""The exports in the object store, as the `cluster` profile keeps them (its image holds none): uploaded with
`lakehouse data upload`, copied by the ingest step into its data folder, loaded into bronze; a missing one
named before anything is written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.core.catalog import read_table
from components.core.settings import SOURCE_TABLES, Settings, get_settings, scoped_environ
from components.ingestion.ingest import run_ingest
from components.sources.ecommerce.files import SourceFileError
from pipelines.cli import main
from testing.engines import clear_lakehouse
from testing.stack import StackServices
from testing.tiny_source import ROWS, write_source

pytestmark = pytest.mark.stack


@pytest.fixture
def prefix(stack: StackServices) -> Iterator[str]:
    """A prefix of the stack's bucket of its own, removed afterwards with the tables the test loaded."""
    from pyarrow.fs import FileSelector

    from components.sources.store import _store

    uri = f"s3://lakehouse/sources-test-{uuid.uuid4().hex[:8]}"
    yield uri
    with scoped_environ({**stack.env, "LAKEHOUSE_SOURCES_URI": uri}):
        fs, root = _store(get_settings("stack"))
    for info in fs.get_file_info(FileSelector(root, allow_not_found=True)):
        fs.delete_file(info.path)
    clear_lakehouse(stack)


def _settings(stack: StackServices, home: Path, data: Path, sources_uri: str = "") -> Settings:
    overrides = {"LAKEHOUSE_HOME": str(home), "LAKEHOUSE_DATA_DIR": str(data)}
    with scoped_environ({**stack.env, **overrides, "LAKEHOUSE_SOURCES_URI": sources_uri}):
        return get_settings("stack")


def test_uploaded_exports_are_what_the_ingest_step_loads(stack, prefix, tmp_path, capsys):
    exports = tmp_path / "exports"
    write_source(exports, ROWS)
    overrides = {"LAKEHOUSE_HOME": str(tmp_path / "laptop"), "LAKEHOUSE_DATA_DIR": str(exports)}
    with scoped_environ({**stack.env, **overrides}):
        assert main(["data", "upload", "--profile", "stack", "--to", prefix]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[: len(SOURCE_TABLES)] == [f"{prefix}/{table}.csv" for table in SOURCE_TABLES]

    step = tmp_path / "step"  # the step's own data folder starts empty, as in a pod
    settings = _settings(stack, step / "home", step / "data", prefix)
    with scoped_environ(stack.env):
        result = run_ingest(settings)
        stored = {table: read_table(f"bronze.{table}", settings).num_rows for table in SOURCE_TABLES}
    for table in SOURCE_TABLES:
        assert (step / "data" / f"{table}.csv").read_bytes() == (exports / f"{table}.csv").read_bytes()
    assert result.rows_loaded == {table: len(set(ROWS[table])) for table in SOURCE_TABLES}
    assert stored == result.rows_loaded
    assert not list((step / "data").glob(".*.part")), "no partial copy left"


def test_an_export_missing_from_the_store_is_named_and_nothing_is_written(stack, prefix, tmp_path):
    from components.sources.store import upload_exports

    exports = tmp_path / "exports"
    write_source(exports, {table: rows for table, rows in ROWS.items() if table != "stores"})
    laptop = _settings(stack, tmp_path / "laptop", exports, prefix)
    with scoped_environ(stack.env):  # the clients read the stack's keys from the environment
        with pytest.raises(SourceFileError, match=r"no export file .*stores\.csv"):
            upload_exports(laptop)
        write_source(exports, {"stores": ROWS["stores"]})
        assert upload_exports(laptop, ["customers"]) == [f"{prefix}/customers.csv"]

    settings = _settings(stack, tmp_path / "step" / "home", tmp_path / "step" / "data", prefix)
    with scoped_environ(stack.env), pytest.raises(SourceFileError) as missing:
        run_ingest(settings)
    assert f"{prefix}/products.csv is missing: upload the exports first (`lakehouse data upload`)" in str(
        missing.value
    )
    assert not stack.trino("SHOW SCHEMAS LIKE 'bronze'") or not stack.trino("SHOW TABLES FROM bronze")


def test_upload_needs_an_object_store_prefix(stack, tmp_path, capsys):
    write_source(tmp_path / "exports", ROWS)
    overrides = {"LAKEHOUSE_HOME": str(tmp_path / "home"), "LAKEHOUSE_DATA_DIR": str(tmp_path / "exports")}
    with scoped_environ({**stack.env, **overrides}):
        assert main(["data", "upload", "--profile", "stack"]) == 2
        assert "sources_uri is empty" in capsys.readouterr().err
        assert main(["data", "upload", "--profile", "stack", "--to", str(tmp_path / "elsewhere")]) == 2
        assert "is not an object store prefix (s3://bucket/prefix)" in capsys.readouterr().err
