"""The dbt project parses for the Trino target (no server needed) and keeps its layering and contracts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from components.core.settings import REPO_ROOT

PROJECT = REPO_ROOT / "dbt"
LAYERS = {"bronze": "view", "silver": "incremental", "gold": "incremental"}
FEATURE_COLUMNS = [
    "customer_id", "as_of_ts", "recency_days", "orders_7d", "orders_30d", "orders_90d", "spend_7d_amount",
    "spend_30d_amount", "spend_90d_amount", "avg_order_amount", "tenure_days", "distinct_categories_90d",
    "top_category_share_90d", "loyalty_tier", "loyalty_tier_rank",
]  # fmt: skip


@pytest.fixture(scope="module")
def trino_manifest(tmp_path_factory):
    out = tmp_path_factory.mktemp("dbt_trino")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LAKEHOUSE_", "DBT_"))}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dbt.cli.main",
            "parse",
            "--project-dir",
            str(PROJECT),
            "--profiles-dir",
            str(PROJECT),
            "--target",
            "trino",
            "--target-path",
            str(out / "target"),
            "--log-path",
            str(out / "logs"),
            "--no-version-check",
        ],  # fmt: skip
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    return json.loads((out / "target" / "manifest.json").read_text())


def models(manifest: dict) -> dict[str, dict]:
    return {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def test_trino_target_parses_with_layers_and_merge(trino_manifest):
    assert trino_manifest["metadata"]["adapter_type"] == "trino"
    nodes = models(trino_manifest)
    assert nodes, "no models parsed"
    for name, node in nodes.items():
        layer = node["fqn"][1]
        assert node["schema"] == layer, name
        assert name.startswith({"bronze": "stg_", "silver": "dim_"}.get(layer, "")), name
        expected = "table" if name in ("customer_features", "churn_labels") else LAYERS[layer]
        assert node["config"]["materialized"] == expected, name
        if expected == "incremental":
            assert node["config"]["incremental_strategy"] == "merge", name
            assert node["config"]["unique_key"].endswith(("_sk", "_key")), name
    for source in trino_manifest["sources"].values():
        assert source["relation_name"] == f'"lakehouse"."bronze"."{source["name"]}"'


def test_every_model_has_tests_and_the_subtle_ones_unit_tests(trino_manifest):
    tested = {
        node["attached_node"].split(".")[-1]
        for node in trino_manifest["nodes"].values()
        if node["resource_type"] == "test" and node.get("attached_node")
    }
    assert tested == set(models(trino_manifest))
    unit_tested = {test["model"] for test in trino_manifest["unit_tests"].values()}
    assert {"dim_customer", "stg_orders", "stg_order_items", "customer_features"} <= unit_tested


def test_feature_mart_documents_the_gold_contract(trino_manifest):
    nodes = models(trino_manifest)
    assert list(nodes["customer_features"]["columns"]) == FEATURE_COLUMNS
    assert list(nodes["churn_labels"]["columns"]) == ["customer_id", "as_of_ts", "is_churned"]


def test_sqlfluff_passes_on_the_models_and_names_a_planted_violation(tmp_path):
    """`make lint`'s sqlfluff run: the models and tests pass as they are; in a copy, an upper-case keyword in
    one model is reported with its file, line and rule."""
    import shutil

    sqlfluff = [
        str(os.path.join(os.path.dirname(sys.executable), "sqlfluff")),
        "lint",
        "--disable-progress-bar",
    ]
    clean = subprocess.run(
        [*sqlfluff, "models", "tests"], cwd=PROJECT, capture_output=True, text=True, timeout=300
    )
    assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-2000:]
    copy = tmp_path / "dbt"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    model = copy / "models" / "silver" / "dim_store.sql"
    text = model.read_text()
    line = text[: text.index("select")].count("\n") + 1
    model.write_text(text.replace("select", "SELECT", 1))
    planted = subprocess.run(
        [*sqlfluff, "models/silver/dim_store.sql"], cwd=copy, capture_output=True, text=True, timeout=300
    )
    assert planted.returncode == 1, planted.stdout + planted.stderr
    assert "dim_store.sql" in planted.stdout and f"L:{line:>4} |" in planted.stdout, planted.stdout
    assert "CP01" in planted.stdout, planted.stdout
