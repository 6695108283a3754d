"""Same bronze data, same dbt project: DuckDB and Trino build identical silver and gold tables."""

from __future__ import annotations

import pytest

from testing.engines import MODELS, Engines
from testing.fingerprints import content_fingerprint, differences

pytestmark = pytest.mark.stack


def test_both_engines_run_every_model_and_test(engines: Engines) -> None:
    duckdb, trino = engines.builds["duckdb"][-1], engines.builds["trino"][-1]
    assert (duckdb.target, trino.target) == ("local", "trino")
    model_files = list((engines.trino.dbt_project_dir / "models").rglob("*.sql"))
    assert duckdb.models == trino.models == len(model_files)
    assert duckdb.tests == trino.tests > 90
    assert set(duckdb.published) == set(trino.published) == set(MODELS)


@pytest.mark.parametrize("identifier", MODELS)
def test_every_model_has_the_same_rows_on_both_engines(engines: Engines, identifier: str) -> None:
    duckdb, trino = engines.read("duckdb", identifier), engines.read("trino", identifier)
    assert duckdb.num_rows > 0
    assert duckdb.schema == trino.schema
    assert differences(content_fingerprint(duckdb), content_fingerprint(trino)) == {}


def test_surrogate_keys_hash_the_same_text_on_both_engines(engines: Engines) -> None:
    """customer_sk hashes valid_from as text: Trino's timestamp(6) must render like DuckDB's timestamp."""
    keys = {
        engine: {
            (row["customer_id"], row["valid_from"]): row["customer_sk"]
            for row in engines.read(engine, "silver.dim_customer").to_pylist()
        }
        for engine in ("duckdb", "trino")
    }
    assert keys["duckdb"] == keys["trino"]
    churned = [
        sum(engines.read(engine, "gold.churn_labels")["is_churned"].to_pylist())
        for engine in ("duckdb", "trino")
    ]
    assert churned[0] == churned[1] > 0
