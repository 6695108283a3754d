"""The stack's Iceberg REST catalog: freshness across clients, OAuth2, faults, tables it does not hold."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from components.core.catalog import get_catalog, read_table, snapshot_ids
from components.core.ports import free_port
from components.core.rest_catalog import CatalogUnavailable, fetch_token
from components.core.settings import BRONZE, SOURCE_TABLES, Settings, get_settings, scoped_environ
from components.ingestion.ingest import run_ingest
from components.sources.ecommerce import read_source_file
from components.sources.ecommerce.generator import generate
from infrastructure.local.rest_catalog import RestCatalog
from infrastructure.local.rest_catalog import fetch_token as fetch_rest_token
from infrastructure.local.service import Launch
from testing.engines import clear_lakehouse
from testing.stack import (
    StackServices,
    start_alone,
    start_catalog,
    stop_alone,
    stop_catalog,
)

pytestmark = pytest.mark.stack

NAMESPACE = "rest_check"


def stack_settings(stack: StackServices, **overrides: str) -> Settings:
    """The `stack` profile on the session's services, with LAKEHOUSE_*/credential overrides."""
    with scoped_environ({**stack.env, **overrides}):
        return get_settings("stack")


def events(count: int, start: int = 0) -> pa.Table:
    ids = pa.array(range(start, start + count), pa.int64())
    return pa.table({"event_id": ids, "kind": pa.array(["view"] * count, pa.string())})


@pytest.fixture
def scratch(stack: StackServices):
    """A namespace of the session's catalog for one test, dropped with its tables afterwards."""
    from pyiceberg.catalog import load_catalog

    catalog = load_catalog("lakehouse", **stack.catalog_properties)
    catalog.create_namespace_if_not_exists(NAMESPACE)
    try:
        yield catalog
    finally:
        for identifier in catalog.list_tables(NAMESPACE):
            catalog.purge_table(identifier)
        catalog.drop_namespace(NAMESPACE)


def test_trino_sees_a_pyiceberg_commit_through_rest_within_a_second(stack: StackServices, scratch) -> None:
    """The first Trino query after each pyiceberg commit reads the new snapshot (nothing cached), and at
    least one of three rounds sees it within a second of the commit (a busy machine slows some queries)."""
    table = scratch.create_table(f"{NAMESPACE}.events", schema=events(0).schema)
    table.append(events(3))
    assert stack.trino(f"SELECT count(*) FROM {NAMESPACE}.events") == [[3]]  # Trino has loaded it once
    took = []
    for round_ in range(3):
        table.append(events(2, start=10 * (round_ + 1)))
        committed, snapshot = time.monotonic(), table.current_snapshot().snapshot_id
        seen = stack.trino_snapshot(f"{NAMESPACE}.events")  # the first query after the commit
        took.append(time.monotonic() - committed)
        assert seen == snapshot, "Trino read a stale snapshot: the REST catalog's answer was cached"
        assert stack.trino(f"SELECT count(*) FROM {NAMESPACE}.events") == [[3 + 2 * (round_ + 1)]]
    assert min(took) < 1.0, f"Trino saw the commits only after {', '.join(f'{t:.2f}' for t in took)} s"


def test_a_wrong_client_secret_is_one_line_naming_the_catalog(stack: StackServices) -> None:
    wrong_secret = "not-the-secret"  # pragma: allowlist secret
    settings = stack_settings(stack, LAKEHOUSE_CATALOG_CLIENT_SECRET=wrong_secret)
    with scoped_environ({**stack.env, "LAKEHOUSE_CATALOG_CLIENT_SECRET": wrong_secret}):
        with pytest.raises(CatalogUnavailable) as raised:
            get_catalog(settings)
        with pytest.raises(CatalogUnavailable) as token:
            fetch_token(settings)
    message = str(raised.value)
    assert "\n" not in message
    assert f"Iceberg catalog at {stack.config.catalog_url} refused OAuth2 client" in message
    assert "invalid_client" in message and "LAKEHOUSE_CATALOG_CLIENT_SECRET" in message
    assert stack.config.catalog_url in str(token.value) and "401" in str(token.value)


def test_tokens_expire_and_clients_fetch_new_ones(stack: StackServices, tmp_path: Path) -> None:
    """Tokens live 2 s on a second server: an old token is refused, a client holding one carries on."""
    with stack.second_catalog(tmp_path / "catalog", token_ttl=2) as config:
        settings = stack_settings(stack, LAKEHOUSE_CATALOG_URI=config.catalog_url)
        with scoped_environ(stack.env):
            token = fetch_token(settings)
            catalog = get_catalog(settings)
        before = catalog.list_namespaces()
        time.sleep(2.5)
        answer = requests.get(
            f"{config.catalog_url}/v1/config", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "NotAuthorizedException"
        assert catalog.list_namespaces() == before, "pyiceberg fetched a new token and retried"


def test_an_unreachable_catalog_is_one_line_naming_it(stack: StackServices, tmp_path: Path) -> None:
    with stack.second_catalog(tmp_path / "catalog") as config:
        url = config.catalog_url
        settings = stack_settings(stack, LAKEHOUSE_CATALOG_URI=url)
        with scoped_environ(stack.env):
            catalog = get_catalog(settings)
            stop_catalog(config)
            with pytest.raises(CatalogUnavailable) as during:
                catalog.list_namespaces()
            with pytest.raises(CatalogUnavailable) as loading:
                get_catalog(settings)
    for raised, detail in ((during, " during GET /v1/namespaces"), (loading, "")):
        message = str(raised.value)
        assert "\n" not in message
        assert f"Iceberg catalog at {url} is unreachable (Connection refused){detail}" in message


def test_catalog_down_mid_ingest_fails_naming_it_and_a_rerun_completes(
    stack: StackServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog stops while dlt loads its third table: the step fails naming the catalog, the two tables
    already loaded keep whole snapshots and the third has none; restarted, a re-run completes."""
    import components.core.tables as writer

    generate(tmp_path / "data", scale=0.02, seed=11)
    clear_lakehouse(stack)
    with stack.second_catalog(tmp_path / "catalog") as config:
        overrides = {
            "LAKEHOUSE_CATALOG_URI": config.catalog_url,
            "LAKEHOUSE_HOME": str(tmp_path / "home"),
            "LAKEHOUSE_DATA_DIR": str(tmp_path / "data"),
        }
        settings = stack_settings(stack, **overrides)
        original, calls = writer.ensure_table, []

        def stop_before_the_third_table(catalog, identifier, schema):
            calls.append(identifier)
            if len(calls) == 3:
                stop_catalog(config)
            return original(catalog, identifier, schema)

        monkeypatch.setattr(writer, "ensure_table", stop_before_the_third_table)
        with scoped_environ(stack.env), pytest.raises(Exception) as raised:  # noqa: PT011 - dlt wraps it
            run_ingest(settings)
        assert f"Iceberg catalog at {config.catalog_url} is unreachable" in str(raised.value)
        monkeypatch.setattr(writer, "ensure_table", original)

        loaded = {
            name: read_source_file(settings.data_dir / f"{name}.csv", name).num_rows for name in SOURCE_TABLES
        }
        with scoped_environ(stack.env):
            start_catalog(config)
            after_failure = snapshot_ids(BRONZE, settings)
            assert set(after_failure) == set(calls[:2]), (calls, after_failure)  # the third: no snapshot
            for identifier in calls[:2]:
                assert read_table(identifier, settings).num_rows == loaded[identifier.split(".")[1]]
            result = run_ingest(settings)
            assert set(result.snapshots) == {f"{BRONZE}.{name}" for name in SOURCE_TABLES}
            for name in SOURCE_TABLES:
                assert read_table(f"{BRONZE}.{name}", settings).num_rows == loaded[name], name
    clear_lakehouse(stack)


def test_a_table_written_outside_the_catalog_is_not_picked_up(
    stack: StackServices, tmp_path: Path, scratch
) -> None:
    """Data and metadata files at the very place the catalog would put a table, registered only in another
    catalog: the REST catalog does not list or load it, Trino does not see it, and a table later created
    there through the catalog starts empty."""
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import NoSuchTableError

    from infrastructure.local.object_store import s3_client

    location = f"s3://lakehouse/warehouse/{NAMESPACE}/ghost"
    props = {k: v for k, v in stack.catalog_properties.items() if k.startswith("s3.")}
    outside = SqlCatalog(
        "outside", uri=f"sqlite:///{tmp_path}/outside.db", warehouse="s3://lakehouse/x", **props
    )
    outside.create_namespace(NAMESPACE)
    ghost = outside.create_table(f"{NAMESPACE}.ghost", schema=events(0).schema, location=location)
    ghost.append(events(5))
    s3 = s3_client(stack.s3_endpoint, stack.access_key, stack.secret_key)
    listed = s3.list_objects_v2(Bucket="lakehouse", Prefix=f"warehouse/{NAMESPACE}/ghost/")
    assert any(item["Key"].endswith(".parquet") for item in listed.get("Contents", []))
    try:
        assert (NAMESPACE, "ghost") not in scratch.list_tables(NAMESPACE)
        with pytest.raises(NoSuchTableError):
            scratch.load_table(f"{NAMESPACE}.ghost")
        assert ["ghost"] not in stack.trino(f"SHOW TABLES FROM {NAMESPACE}")
        with scoped_environ(stack.env):
            assert f"{NAMESPACE}.ghost" not in snapshot_ids(NAMESPACE, stack_settings(stack))
        created = scratch.create_table(f"{NAMESPACE}.ghost", schema=events(0).schema)
        assert created.location() == location
        assert created.scan().to_arrow().num_rows == 0
        assert stack.trino(f"SELECT count(*) FROM {NAMESPACE}.ghost") == [[0]]
    finally:
        outside.purge_table(f"{NAMESPACE}.ghost")


def test_the_duckdb_publish_path_commits_through_rest(stack: StackServices, tmp_path: Path, scratch) -> None:
    """A DuckDB model published to the REST catalog reads back the same in pyiceberg and Trino; publishing
    unchanged rows again keeps the snapshot."""
    import duckdb

    from components.transformation.transform import publish_models

    database = tmp_path / "models.duckdb"
    with duckdb.connect(str(database)) as con:
        con.sql(f"create schema {NAMESPACE}")
        con.sql(
            f"create table {NAMESPACE}.dim_kind as select * from (values (1, 'view'), (2, 'buy')) t(id, kind)"
        )
    settings = stack_settings(stack, LAKEHOUSE_DBT_DUCKDB_PATH=str(database))
    with scoped_environ(stack.env):
        first = publish_models(settings, [(NAMESPACE, "dim_kind")])
        again = publish_models(settings, [(NAMESPACE, "dim_kind")])
        rows = read_table(f"{NAMESPACE}.dim_kind", settings).to_pylist()
    assert first == again and first[f"{NAMESPACE}.dim_kind"] is not None
    assert sorted((r["id"], r["kind"]) for r in rows) == [(1, "view"), (2, "buy")]
    assert stack.trino_snapshot(f"{NAMESPACE}.dim_kind") == first[f"{NAMESPACE}.dim_kind"]
    assert sorted(map(tuple, stack.trino(f"SELECT id, kind FROM {NAMESPACE}.dim_kind"))) == [
        (1, "view"),
        (2, "buy"),
    ]


class _ClusterCatalog(RestCatalog):
    """The server as the `node` overlay runs it: the API under Polaris' path, one client per Secret."""

    clients = {"trino-1a2b": "trino-secret-1", "pipeline-3c4d": "pipeline-2"}  # pragma: allowlist secret

    def launch(self) -> Launch:
        launch = super().launch()
        pairs = " ".join(f"{client}:{secret}" for client, secret in self.clients.items())
        env = {**launch.env, "REST_BASE_PATH": "/api/catalog", "REST_CLIENTS": pairs}
        return dataclasses.replace(launch, env=env)

    def check(self) -> str:
        """Healthy once a client of REST_CLIENTS gets a token under the base path."""
        client, secret = next(iter(self.clients.items()))
        fetch_rest_token(f"{self.config.catalog_url}/api/catalog", client, secret, "PRINCIPAL_ROLE:ALL")
        return "Iceberg REST under /api/catalog"


def test_the_api_under_a_base_path_for_several_clients(stack: StackServices, tmp_path: Path) -> None:
    """`REST_BASE_PATH` and `REST_CLIENTS`, as the `node` overlay sets them in Polaris' place: the
    platform's settings for Polaris (`.../api/catalog`) work unchanged with either client, paths outside the
    base are 404, a client's secret does not open another's id, and probes get /healthz without a token."""
    config = dataclasses.replace(stack.config, rest_port=free_port(), home=tmp_path / "catalog")
    server = _ClusterCatalog(config)
    root = f"http://127.0.0.1:{config.rest_port}"
    start_alone(server)
    try:
        assert requests.get(f"{root}/healthz", timeout=5).json() == {"status": "ok"}
        outside = requests.get(f"{root}/v1/config", timeout=5)
        assert outside.status_code == 404 and "/api/catalog" in outside.json()["error"]["message"]
        form = {"grant_type": "client_credentials", "scope": "PRINCIPAL_ROLE:ALL"}
        # trino's id with the pipeline's secret
        pipeline_secret = _ClusterCatalog.clients["pipeline-3c4d"]
        crossed = {**form, "client_id": "trino-1a2b", "client_secret": pipeline_secret}
        refused = requests.post(f"{root}/api/catalog/v1/oauth/tokens", data=crossed, timeout=5)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
        with scoped_environ(stack.env):
            expected = sorted(get_catalog(stack_settings(stack)).list_namespaces())
        for client, secret in _ClusterCatalog.clients.items():
            settings = stack_settings(stack, LAKEHOUSE_CATALOG_URI=f"{root}/api/catalog")
            client_env = {"LAKEHOUSE_CATALOG_CLIENT_ID": client, "LAKEHOUSE_CATALOG_CLIENT_SECRET": secret}
            with scoped_environ({**stack.env, **client_env}):
                assert sorted(get_catalog(settings).list_namespaces()) == expected
    finally:
        stop_alone(server)
