"""The `stack` services for real: up, health, a pyiceberg <-> Trino round trip on the REST catalog, down."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from components.core.ports import port_in_use
from infrastructure.local.config import StackConfig, load_config
from infrastructure.local.procs import PidFile, family, start_ticks
from infrastructure.local.stack import SERVICE_CLASSES
from infrastructure.local.trino_server import Trino
from testing.prerequisites import in_ci
from testing.stack import TEST_CREDENTIALS, unavailable_reason
from tests.infrastructure.conftest import stack_environment

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
STACK_SH = REPO / "infrastructure" / "local" / "stack.sh"
NAMESPACE = "stack_check"


@dataclass(frozen=True)
class RunningStack:
    config: StackConfig
    env: dict[str, str]
    up_output: str


def _run(env: dict[str, str], action: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(STACK_SH), action], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def running_stack() -> Iterator[RunningStack]:
    """A private stack (own home, own free ports, the repository's download cache); always stopped."""
    # Not under pytest's tmp folder: that is private to root, and PostgreSQL runs as an unprivileged user.
    home = Path(tempfile.mkdtemp(prefix="lakehouse-stack-test-"))
    home.chmod(0o711)
    env = {**os.environ, **stack_environment(home, REPO / ".cache" / "stack")}
    env.update(TEST_CREDENTIALS)
    config = load_config(env)
    reason = unavailable_reason(config)
    if reason:
        message = f"the stack services cannot start on this machine: {reason}"
        if in_ci():
            pytest.fail(f"{message} (CI=true: the stack must run in CI)", pytrace=False)
        pytest.skip(message)
    try:
        up = _run(env, "up")
        assert up.returncode == 0, f"stack.sh up failed:\n{up.stdout}\n{up.stderr}"
        yield RunningStack(config=config, env=env, up_output=up.stdout)
    finally:
        _run(env, "down", timeout=300)
        shutil.rmtree(home, ignore_errors=True)


def test_up_starts_every_service_healthy(running_stack: RunningStack) -> None:
    for cls in SERVICE_CLASSES:
        assert f"{cls.name:8} started" in running_stack.up_output, running_stack.up_output
    assert "development-only keys" not in running_stack.up_output, "credentials came from the environment"
    status = _run(running_stack.env, "status", timeout=120)
    assert status.returncode == 0, status.stdout
    assert status.stdout.count(" healthy ") == len(SERVICE_CLASSES), status.stdout
    assert "Trino 476" in status.stdout or f"Trino {running_stack.config.trino_version}" in status.stdout


def _orders() -> pa.Table:
    return pa.table(
        {
            "order_id": pa.array([1, 2, 3], pa.int64()),
            "customer_id": pa.array([10, 10, 11], pa.int64()),
            "status": pa.array(["placed", "shipped", None], pa.string()),
            "ordered_at": pa.array(
                [1_700_000_000_000_000, 1_700_000_360_000_000, 1_700_086_400_000_000], pa.timestamp("us")
            ),
        }
    )


def test_pyiceberg_and_trino_share_one_catalog(running_stack: RunningStack) -> None:
    from pyiceberg.catalog import load_catalog

    config = running_stack.config
    catalog = load_catalog("lakehouse", **config.catalog_properties())
    trino = Trino(config)
    catalog.create_namespace(NAMESPACE)

    # pyiceberg writes, Trino reads the identical rows and the same snapshot.
    orders = _orders()
    table = catalog.create_table(f"{NAMESPACE}.orders", schema=orders.schema)
    table.append(orders)
    py_snapshot = table.current_snapshot().snapshot_id
    rows = trino.query(f"SELECT order_id, customer_id, status, ordered_at FROM {NAMESPACE}.orders ORDER BY 1")
    assert [tuple(r) for r in rows] == [
        (r["order_id"], r["customer_id"], r["status"], r["ordered_at"]) for r in orders.to_pylist()
    ]
    seen = trino.query(f'SELECT snapshot_id FROM {NAMESPACE}."orders$snapshots" ORDER BY committed_at DESC')
    assert seen[0][0] == py_snapshot

    table.append(orders.slice(0, 1))
    assert trino.query(f"SELECT count(*) FROM {NAMESPACE}.orders") == [[4]]

    # Trino writes, pyiceberg reads the identical rows and the same snapshot.
    trino.query(f"CREATE TABLE {NAMESPACE}.customer_spend (customer_id bigint, spend_amount double)")
    trino.query(
        f"INSERT INTO {NAMESPACE}.customer_spend "
        f"SELECT customer_id, count(*) * 10.5 FROM {NAMESPACE}.orders GROUP BY customer_id"
    )
    spend = catalog.load_table(f"{NAMESPACE}.customer_spend")
    assert sorted(spend.scan().to_arrow().to_pylist(), key=lambda r: r["customer_id"]) == [
        {"customer_id": 10, "spend_amount": 31.5},
        {"customer_id": 11, "spend_amount": 10.5},
    ]
    latest = trino.query(
        f'SELECT snapshot_id FROM {NAMESPACE}."customer_spend$snapshots" ORDER BY committed_at DESC'
    )
    assert spend.current_snapshot().snapshot_id == latest[0][0]

    # A schema Trino creates is a namespace pyiceberg lists.
    trino.query("CREATE SCHEMA lakehouse.made_by_trino")
    assert ("made_by_trino",) in catalog.list_namespaces()


def test_mlflow_stores_artifacts_in_the_bucket(running_stack: RunningStack, tmp_path: Path) -> None:
    import mlflow

    from infrastructure.local.object_store import s3_client

    config = running_stack.config
    client = mlflow.MlflowClient(tracking_uri=config.mlflow_url)
    experiment = client.create_experiment("stack-check")
    run = client.create_run(experiment)
    (tmp_path / "note.txt").write_text("champion candidate")
    client.log_metric(run.info.run_id, "auc", 0.75)
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    s3 = s3_client(config.s3_endpoint, config.access_key, config.secret_key)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lakehouse", Prefix="mlflow/").get("Contents", [])]
    assert any(key.endswith(f"{run.info.run_id}/artifacts/note.txt") for key in keys), keys


def test_second_up_only_checks_health(running_stack: RunningStack) -> None:
    config = running_stack.config
    before = {cls.name: PidFile(config.run, cls.name).read() for cls in SERVICE_CLASSES}
    began = time.monotonic()
    again = _run(running_stack.env, "up", timeout=300)
    assert again.returncode == 0, again.stdout
    assert again.stdout.count("already running") == len(SERVICE_CLASSES)
    assert "downloading" not in again.stdout
    assert time.monotonic() - began < 60
    assert {cls.name: PidFile(config.run, cls.name).read() for cls in SERVICE_CLASSES} == before


def test_down_leaves_no_process_behind(running_stack: RunningStack) -> None:
    config = running_stack.config
    owned: dict[int, int] = {}
    for cls in SERVICE_CLASSES:
        record = PidFile(config.run, cls.name).read()
        assert record is not None
        owned.update(family(record.pid))
    assert len(owned) >= len(SERVICE_CLASSES)
    down = _run(running_stack.env, "down", timeout=300)
    assert down.returncode == 0, down.stdout
    assert [pid for pid, ticks in owned.items() if start_ticks(pid) == ticks] == []
    ps = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True, check=True).stdout
    assert [line for line in ps.splitlines() if str(config.home) in line and " Z" not in line] == []
    assert [port for port in config.ports().values() if port_in_use(port)] == []
    assert list(config.run.glob("*.pid")) == []
