"""The whole `churn-training` pipeline on the stack profile: S3, the REST catalog, Trino, Redis, MLflow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pytest

from components.core.catalog import get_catalog, read_table
from components.core.feature_store import FEATURE_COLUMNS
from components.core.ports import free_port
from components.core.serving_client import running_server
from components.core.settings import (
    BRONZE,
    FEATURE_SERVICE,
    GOLD,
    SERVED_MODEL_NAME,
    SILVER,
    SOURCE_TABLES,
    Settings,
    get_settings,
)
from components.monitoring.performance import MODEL_PERFORMANCE
from components.sources.ecommerce import read_source_file
from components.sources.ecommerce.generator import generate
from pipelines.run_local import RunSummary, run_local
from testing.expected import champion_probability, latest_features
from testing.stack import StackServices

pytestmark = pytest.mark.stack

SCALE = 0.1
SEED = 5
LAYERS = (BRONZE, SILVER, GOLD)
FEATURES = list(FEATURE_COLUMNS)


@dataclass(frozen=True)
class StackRun:
    """The settings of the run, the deploy step's result, and the stack it ran on."""

    settings: Settings
    result: RunSummary
    stack: StackServices


def empty_lakehouse(settings: Settings) -> None:
    """Drop every bronze/silver/gold table of the shared catalog, files included.

    The stack of a test session is shared: the tables other stack tests built must not mix with this
    run's, and this run's must not stay behind for theirs.
    """
    catalog = get_catalog(settings)
    namespaces = {ns[0] for ns in catalog.list_namespaces()}
    for layer in set(LAYERS) & namespaces:
        for identifier in catalog.list_tables(layer):
            catalog.purge_table(identifier)


@pytest.fixture(scope="module")
def stack_run(stack: StackServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackRun]:
    """Scale 0.1 data, run through the KFP pipeline (kfp.local) with the `stack` profile, once."""
    root = tmp_path_factory.mktemp("stack-pipeline")
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("LAKEHOUSE_")]:
            patch.delenv(name)
        for name, value in stack.env.items():
            patch.setenv(name, value)
        patch.setenv("LAKEHOUSE_HOME", str(root / "home"))
        patch.setenv("LAKEHOUSE_DATA_DIR", str(root / "data"))
        patch.setenv("LAKEHOUSE_SERVING_PORT", str(free_port()))
        settings = get_settings("stack")
        generate(settings.data_dir, scale=SCALE, seed=SEED)
        empty_lakehouse(settings)
        try:
            yield StackRun(settings=settings, result=run_local(settings), stack=stack)
        finally:
            empty_lakehouse(settings)


def test_settings_point_at_the_test_stack(stack_run: StackRun) -> None:
    settings, stack = stack_run.settings, stack_run.stack
    assert (settings.catalog_type, settings.catalog_uri) == ("rest", stack.config.catalog_url)
    assert (settings.s3_endpoint, settings.mlflow_tracking_uri) == (stack.s3_endpoint, stack.mlflow_uri)
    assert (settings.trino_port, settings.redis_url) == (stack.trino_port, stack.redis_url)
    assert (settings.dbt_target, settings.feast_online_store) == ("trino", "redis")


def test_every_layer_is_on_s3_and_reads_the_same_in_pyiceberg_and_trino(stack_run: StackRun) -> None:
    settings, stack = stack_run.settings, stack_run.stack
    catalog = get_catalog(settings)
    tables = {layer: sorted(".".join(ident) for ident in catalog.list_tables(layer)) for layer in LAYERS}
    assert tables[BRONZE] == sorted(f"{BRONZE}.{name}" for name in SOURCE_TABLES)
    assert {"silver.dim_customer", "silver.dim_product", "silver.dim_store"} <= set(tables[SILVER])
    assert {"gold.fct_orders", "gold.customer_features", "gold.churn_labels"} <= set(tables[GOLD])
    for identifier in (ident for layer in LAYERS for ident in tables[layer]):
        table = catalog.load_table(identifier)
        assert table.location().startswith("s3://lakehouse/"), identifier
        assert table.metadata_location.startswith("s3://lakehouse/"), identifier
        rows = table.scan().to_arrow().num_rows
        # every table holds rows, but the quality of past predictions: none has its label window closed yet
        assert rows > 0 or identifier == MODEL_PERFORMANCE, identifier
        assert stack.trino(f"SELECT count(*) FROM {identifier}") == [[rows]], identifier


def test_bronze_holds_each_source_row_once(stack_run: StackRun) -> None:
    settings = stack_run.settings
    for table in SOURCE_TABLES:
        source = read_source_file(settings.data_dir / f"{table}.csv", table)
        assert read_table(f"{BRONZE}.{table}", settings).num_rows == source.num_rows, table


def test_champion_is_on_the_mlflow_server_with_its_artifacts_in_s3(stack_run: StackRun) -> None:
    import boto3

    settings, stack = stack_run.settings, stack_run.stack
    client = mlflow.MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    assert str(champion.version) == str(stack_run.result.model_version)
    assert client.get_run(champion.run_id).data.tags["feature_service"] == "churn_v1"
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint,
        aws_access_key_id=stack.access_key,
        aws_secret_access_key=stack.secret_key,
        region_name="us-east-1",
    )
    listed = s3.list_objects_v2(Bucket="lakehouse", Prefix="mlflow/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert any(key.endswith("/model.skops") for key in keys), keys


def test_loading_the_champion_leaves_no_download_behind(
    stack_run: StackRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the MLflow server, a model is downloaded before it is loaded: MLflow's own loader leaves that
    copy in the system's temporary folder (every step that scores, every switch of a model server's
    champion); the platform's loader removes it once the pipeline is in memory."""
    import tempfile

    from components.core.model.registry import load_champion

    settings = stack_run.settings
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the temporary folder, in this process
    pipeline, version = load_champion(settings)
    assert version == str(stack_run.result.model_version) and hasattr(pipeline, "predict_proba")
    assert list(tmp_path.iterdir()) == []
    mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    kept = [path.name for path in tmp_path.iterdir() if (path / "MLmodel").exists()]
    assert kept, "MLflow's own loader keeps its copy (what the platform's loader is there to avoid)"


def test_online_features_are_in_redis_not_sqlite(stack_run: StackRun) -> None:
    import redis
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    settings = stack_run.settings
    customer = int(latest_features(settings).customer_id.iloc[0])

    def key(customer_id: int) -> bytes:
        entity = EntityKey(join_keys=["customer_id"], entity_values=[Value(int64_val=customer_id)])
        return _redis_key("lakehouse", entity, entity_key_serialization_version=3)

    client = redis.Redis.from_url(stack_run.stack.redis_url)
    try:
        fields = client.hkeys(key(customer))
        assert {b"_ts:customer_activity", b"_ts:customer_profile"} <= set(fields)
        assert not client.exists(key(10**9))
    finally:
        client.close()
    assert not Path(settings.feast_online_path).exists()


def test_the_model_servers_reader_gets_whole_rows_from_redis(stack_run: StackRun) -> None:
    from components.core.feature_store import get_store
    from serving.online_features import OnlineFeatureReader

    settings = stack_run.settings
    latest = latest_features(settings).set_index("customer_id")
    customer = int(latest.index[0])
    store = get_store(settings)
    assert store.config.online_store.type == "redis"
    reader = OnlineFeatureReader(store, FEATURE_SERVICE)
    for _ in range(3):  # repeated reads give the same rows: no state builds up between requests
        rows, known = reader.read([customer, 10**9])
        assert known == [True, False]
        assert set(rows[0]) == set(FEATURES) == set(rows[1])
        assert rows[0]["orders_90d"] == latest.loc[customer, "orders_90d"]
        assert rows[0]["loyalty_tier"] == latest.loc[customer, "loyalty_tier"]
        assert all(value is None for value in rows[1].values())


def test_served_prediction_uses_the_champion_and_redis_features(stack_run: StackRun) -> None:
    settings = stack_run.settings
    latest = latest_features(settings)
    customer = int(latest.customer_id.iloc[0])
    expected = champion_probability(settings, latest, customer)
    with running_server(settings) as base:
        answer = httpx.post(
            f"{base}/v1/models/{SERVED_MODEL_NAME}:predict", json={"instances": [customer, 10**9]}, timeout=30
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert str(body["model_version"]) == str(stack_run.result.model_version)
    known, unknown = body["predictions"]
    assert known["known"] is True and known["churn_probability"] == pytest.approx(expected, abs=1e-9)
    assert unknown["known"] is False and unknown["churn_probability"] is None
