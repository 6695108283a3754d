"""End to end on the `local` profile: generate, run the KFP pipeline with kfp.local, serve, predict."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pyarrow.compute as pc
import pytest

from components.core.catalog import read_table, snapshot_ids
from components.core.feature_store import FEATURE_COLUMNS
from components.core.lineage import source_data_hash
from components.core.model.split import training_set_hash
from components.core.results import Evaluation, Promotion
from components.core.serving_client import running_server
from components.core.settings import SERVED_MODEL_NAME, get_settings
from components.features.materialize import get_training_set, rebuild_training_set
from components.ingestion.ingest import run_ingest
from components.sources.ecommerce import read_source_file
from components.sources.ecommerce.generator import generate
from components.sources.ecommerce.settings import PRIMARY_KEYS
from pipelines.cli import main
from pipelines.run_local import run_local
from testing.expected import champion_probability, latest_features

pytestmark = pytest.mark.e2e

FEATURES = list(FEATURE_COLUMNS)


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory):
    """One pipeline run at a small scale, shared by the assertions below."""
    root = tmp_path_factory.mktemp("e2e")
    patch = pytest.MonkeyPatch()
    patch.setenv("LAKEHOUSE_HOME", str(root / "home"))
    patch.setenv("LAKEHOUSE_DATA_DIR", str(root / "data"))
    patch.setenv("LAKEHOUSE_SERVING_PORT", "18081")
    settings = get_settings("local")
    generate(settings.data_dir, scale=0.2, seed=11)
    result = run_local(settings)
    yield settings, result
    patch.undo()


def test_bronze_holds_every_source_row_once(lakehouse):
    settings, _ = lakehouse
    for table, keys in PRIMARY_KEYS.items():
        source = read_source_file(settings.data_dir / f"{table}.csv", table)
        bronze = read_table(f"bronze.{table}", settings)
        assert bronze.num_rows == source.num_rows, table
        assert bronze.group_by(list(keys)).aggregate([]).num_rows == bronze.num_rows, table


def test_silver_and_gold_are_iceberg_tables_with_consistent_counts(lakehouse):
    settings, _ = lakehouse
    silver, gold = snapshot_ids("silver", settings), snapshot_ids("gold", settings)
    assert {"silver.dim_customer", "silver.dim_product", "silver.dim_store", "silver.dim_date"} <= set(silver)
    assert {"gold.fct_orders", "gold.customer_features", "gold.churn_labels"} <= set(gold)
    orders = read_table("bronze.orders", settings)
    fct = read_table("gold.fct_orders", settings)
    assert 0 < fct.num_rows <= orders.num_rows
    assert fct.group_by(["order_id"]).aggregate([]).num_rows == fct.num_rows
    customers = read_table("bronze.customers", settings)
    dim = read_table("silver.dim_customer", settings)
    assert dim.num_rows == customers.num_rows  # one SCD2 row per customer version
    assert pc.sum(dim["is_current"]).as_py() == len(pc.unique(customers["customer_id"]))


def test_customer_history_is_scd2(lakehouse):
    settings, _ = lakehouse
    dim = read_table("silver.dim_customer", settings).to_pandas()
    versions = dim.groupby("customer_id").size()
    assert (versions > 1).any(), "the generator gives some customers several versions"
    for _, rows in dim[dim.customer_id.isin(versions[versions > 1].index[:20])].groupby("customer_id"):
        rows = rows.sort_values("valid_from")
        assert rows.is_current.tolist() == [False] * (len(rows) - 1) + [True]
        assert rows.valid_to.iloc[:-1].tolist() == rows.valid_from.iloc[1:].tolist()
        assert pd.isna(rows.valid_to.iloc[-1])


def test_training_rows_are_point_in_time_correct(lakehouse):
    settings, _ = lakehouse
    training = get_training_set(settings)
    features = read_table("gold.customer_features", settings).to_pandas()
    assert len(training) > 0 and set(FEATURES) <= set(training.columns)
    sample = training.sample(25, random_state=0)
    for row in sample.itertuples():
        as_of = row.as_of_ts.tz_convert(None) if row.as_of_ts.tzinfo else row.as_of_ts
        history = features[(features.customer_id == row.customer_id) & (features.as_of_ts <= as_of)]
        expected = history.sort_values("as_of_ts").iloc[-1]  # latest row not after the as-of date
        assert expected.as_of_ts <= as_of
        for name in ("orders_90d", "tenure_days", "loyalty_tier"):
            assert getattr(row, name) == expected[name], (row.customer_id, as_of, name)


def test_champion_alias_points_at_a_registered_version(lakehouse):
    settings, result = lakehouse
    client = mlflow.MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )
    champion = client.get_model_version_by_alias(settings.model_name, "champion")
    assert str(result.model_version) == str(champion.version)
    run = client.get_run(champion.run_id)
    assert run.data.tags["feature_service"] == "churn_v1"
    assert "roc_auc" in " ".join(run.data.metrics)


def test_served_prediction_matches_the_online_features_and_the_batch_scores(lakehouse):
    settings, result = lakehouse
    latest = latest_features(settings)
    customer = int(latest.customer_id.iloc[0])
    expected = champion_probability(settings, latest, customer)
    scores = read_table("gold.churn_scores", settings).to_pandas().set_index("customer_id")
    as_of = latest.as_of_ts.max()
    current = sorted(int(c) for c in latest.customer_id[latest.as_of_ts == as_of])
    assert sorted(scores.index) == current and set(scores.as_of_ts) == {as_of}
    assert set(scores.model_version) == {result.model_version}
    sample = current[:: max(1, len(current) // 50)]
    with running_server(settings) as base:
        v1 = httpx.post(
            f"{base}/v1/models/{SERVED_MODEL_NAME}:predict", json={"instances": [customer, 10**9]}
        )
        assert v1.status_code == 200
        known, unknown = v1.json()["predictions"]
        assert known["known"] is True and known["churn_probability"] == pytest.approx(expected, abs=1e-9)
        assert unknown["known"] is False and unknown["churn_probability"] is None
        bad = httpx.post(f"{base}/v1/models/{SERVED_MODEL_NAME}:predict", json={"instances": ["x"]})
        assert bad.status_code == 400
        served = httpx.post(f"{base}/v1/models/{SERVED_MODEL_NAME}:predict", json={"instances": sample})
    for answer in served.json()["predictions"]:
        stored = scores.loc[answer["customer_id"], "churn_probability"]
        assert answer["churn_probability"] == pytest.approx(stored, rel=0, abs=1e-9), answer


def _executor_output(result: dict, step: str) -> dict:
    """What kfp.local recorded for a step: its output artifacts with their metadata."""
    return json.loads((Path(result.run_folder) / step / "executor_output.json").read_text())["artifacts"]


def test_the_run_leaves_typed_artifacts_kfp_can_show(lakehouse):
    settings, result = lakehouse
    artifacts = {name: Path(path) for name, path in result.artifacts.items()}
    assert all(path.is_file() and path.is_relative_to(settings.home / "kfp") for path in artifacts.values())
    train = _executor_output(result, "train")
    model = train["model"]["artifacts"][0]["metadata"]
    assert model["model_uri"].startswith(f"models:/{settings.model_name}/")
    metrics = train["metrics"]["artifacts"][0]["metadata"]
    assert {"roc_auc", "pr_auc", "log_loss", "brier_score", "ece", "train_rows", "holdout_rows"} <= set(
        metrics
    )
    curves = train["holdout_curves"]["artifacts"][0]["metadata"]
    assert curves["confidenceMetrics"] and len(curves["confusionMatrix"]["rows"]) == 2
    assert json.loads(artifacts["holdout_metrics"].read_text())["roc_auc"] == metrics["roc_auc"]
    dbt = _executor_output(result, "transform")["dbt_tests"]["artifacts"][0]["metadata"]
    assert dbt["dbt_tests_passed"] > 0 and dbt["dbt_tests_failed"] == 0
    champion = Evaluation.from_dict(json.loads(artifacts["champion"].read_text()))
    assert champion.decision is Promotion.FIRST_CHAMPION and champion.champion_version == result.model_version
    assert result.decision is Promotion.FIRST_CHAMPION
    report = artifacts["run_report"].read_text()
    for section in ("Data volumes per layer", "dbt build", "Promotion", "Batch scores", "Drift"):
        assert section in report
    for table in ("bronze.orders", "silver.dim_customer", "gold.customer_features", "gold.churn_scores"):
        assert table in report


def test_drift_rows_compare_the_latest_week_with_the_training_window(lakehouse):
    settings, result = lakehouse
    drift = read_table("gold.feature_drift", settings).to_pandas()
    assert sorted(drift.column_name) == sorted([*FEATURES, "churn_probability"])
    assert set(drift.as_of_ts) == set(read_table("gold.churn_scores", settings).to_pandas().as_of_ts)
    assert (drift.reference_rows > drift.current_rows).all() and drift.psi.notna().all()
    assert sorted(drift.column_name[drift.is_drifted]) == sorted(result.drifted)


def test_lineage_names_the_chain_and_rebuilds_the_training_set(lakehouse, tmp_path, capsys):
    settings, result = lakehouse
    assert main(["lineage", "--json"]) == 0
    chain = json.loads(capsys.readouterr().out)
    assert chain["model"]["version"] == result.model_version and "champion" in chain["model"]["aliases"]
    assert (
        chain["bronze"]["snapshot_ids"] == snapshot_ids("bronze", settings) and chain["bronze"]["dlt_load_id"]
    )
    assert chain["source_data"]["sha256"] == source_data_hash(settings.data_dir)
    assert chain["dbt_invocation_id"] and chain["feature_service"] == "churn_v1"
    assert chain["gold"]["features_snapshot_id"] == chain["gold"]["snapshot_ids"]["gold.customer_features"]
    rebuilt = rebuild_training_set(settings, chain, tmp_path)
    assert len(rebuilt) == chain["training_set"]["training_set_rows"]
    assert training_set_hash(rebuilt) == chain["training_set"]["sha256"]


def test_reingesting_finds_no_duplicate_keys_and_changes_nothing(lakehouse):
    settings, _ = lakehouse
    before = snapshot_ids("bronze", settings)
    result = run_ingest(settings)
    assert sum(result.rows_loaded.values()) == 0
    assert snapshot_ids("bronze", settings) == before
    for table, keys in PRIMARY_KEYS.items():
        bronze = read_table(f"bronze.{table}", settings)
        assert bronze.group_by(list(keys)).aggregate([]).num_rows == bronze.num_rows, table


def test_monitor_retrains_when_drift_is_injected_and_not_otherwise_once_per_cooldown(lakehouse):
    """Last in this module: the retraining run it starts adds a model version."""
    import pyarrow as pa

    from components.core.catalog import get_catalog
    from components.monitoring.triggers import RETRAINING_TRIGGERS
    from pipelines.monitoring import check_and_retrain

    settings, _ = lakehouse
    quiet = check_and_retrain(settings)
    assert quiet.decision.reasons == [] and quiet.started is None, quiet.decision.summary

    features = get_catalog(settings).load_table("gold.customer_features")
    frame = features.scan().to_pandas()
    week = frame[frame["as_of_ts"] == frame["as_of_ts"].max()].copy()
    week["as_of_ts"] = week["as_of_ts"] + pd.Timedelta(weeks=1)
    week["orders_90d"] = week["orders_90d"] * 5 + 3  # every customer suddenly orders far more
    week["recency_days"] = None
    features.append(pa.Table.from_pandas(week, schema=features.schema().as_arrow(), preserve_index=False))
    versions_before = mlflow.MlflowClient(settings.mlflow_tracking_uri).search_model_versions(
        f"name='{settings.model_name}'"
    )

    retrained = check_and_retrain(settings)

    assert retrained.decision.retrain and "orders_90d" in retrained.drifted
    assert retrained.started and (Path(retrained.started) / "report").is_dir(), "a whole run started"
    versions = mlflow.MlflowClient(settings.mlflow_tracking_uri).search_model_versions(
        f"name='{settings.model_name}'"
    )
    assert len(versions) == len(versions_before) + 1, "the run trained a new version"
    triggers = read_table(RETRAINING_TRIGGERS, settings).to_pylist()
    assert len(triggers) == 1 and "orders_90d" in triggers[0]["reasons"]
    alerts = [json.loads(line) for line in Path(settings.alert_file).read_text().splitlines()]
    assert [a["kind"] for a in alerts].count("retraining") == 1

    features = features.refresh()
    if (
        features.scan(row_filter=f"as_of_ts = '{week['as_of_ts'].iloc[0].isoformat()}'").to_arrow().num_rows
        == 0
    ):
        features.append(pa.Table.from_pandas(week, schema=features.schema().as_arrow(), preserve_index=False))
    held = check_and_retrain(settings)
    assert held.decision.reasons and not held.decision.retrain and held.started is None
    assert held.decision.cooldown_until is not None and "cooldown" in held.decision.summary
    assert len(read_table(RETRAINING_TRIGGERS, settings).to_pylist()) == 1
