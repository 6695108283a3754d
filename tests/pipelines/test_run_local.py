"""The local runner checks the profile's services first and names the ones that do not answer."""

from __future__ import annotations

import json
import os

import pytest

from components.core.ports import free_ports
from components.core.settings import get_settings
from pipelines.cli import main
from pipelines.run_local import ServicesUnavailable, require_services, run_local, service_endpoints


@pytest.fixture
def stack_on_closed_ports(monkeypatch, tmp_path):
    """`stack` settings whose every service is on a loopback port nothing listens on."""
    for name in [name for name in os.environ if name.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    (port,) = free_ports()  # nothing listens there
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LAKEHOUSE_S3_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LAKEHOUSE_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LAKEHOUSE_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("LAKEHOUSE_TRINO_PORT", str(port))
    return port


def test_local_profile_needs_no_service(monkeypatch, tmp_path):
    for name in [name for name in os.environ if name.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    settings = get_settings("local")
    assert service_endpoints(settings) == {}
    require_services(settings)


def test_stack_services_that_do_not_answer_are_named(stack_on_closed_ports):
    settings = get_settings("stack")
    assert set(service_endpoints(settings)) == {
        "Iceberg catalog",
        "S3",
        "MLflow",
        "Redis",
        "Trino",
    }
    with pytest.raises(ServicesUnavailable) as raised:
        run_local(settings)
    message = str(raised.value)
    for name in ("Iceberg catalog", "S3", "MLflow", "Redis", "Trino"):
        assert f"{name}" in message
    assert f"127.0.0.1:{stack_on_closed_ports}" in message and "make stack-up" in message
    assert not (settings.home / "kfp").exists(), "nothing ran"


def test_cli_run_reports_a_stopped_stack(stack_on_closed_ports, capsys):
    assert main(["run", "--profile", "stack"]) == 2
    assert f"no answer from Iceberg catalog at 127.0.0.1:{stack_on_closed_ports}" in capsys.readouterr().err


def test_cli_serve_checks_only_what_the_model_server_talks_to(stack_on_closed_ports, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    assert main(["serve", "--profile", "stack"]) == 2
    err = capsys.readouterr().err
    assert "no answer from MLflow" in err and "Redis" in err
    for unused in ("catalog", "S3", "Trino", "credentials"):
        assert unused not in err


def test_stack_without_s3_keys_is_refused(stack_on_closed_ports, monkeypatch):
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(ServicesUnavailable, match="without credentials .*AWS_SECRET_ACCESS_KEY not set"):
        require_services(get_settings("stack"))


def test_a_failing_step_is_named_with_its_error_in_one_line(monkeypatch, tmp_path, capsys):
    from components.sources.ecommerce.generator import generate

    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LAKEHOUSE_DATA_DIR", str(tmp_path / "data"))
    generate(tmp_path / "data", scale=0.02, seed=3)
    orders = tmp_path / "data" / "orders.csv"
    orders.write_text(orders.read_text(encoding="utf-8")[:-30], encoding="utf-8")  # cut mid-row
    assert main(["run"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: step 'ingest' failed: SourceFileError: ")
    assert f"{orders}:" in last and "truncated" in last
    # and the failed run is an alert (on `local`, a line of the state folder's alert file)
    (alert,) = [json.loads(line) for line in (tmp_path / "home" / "alerts.jsonl").read_text().splitlines()]
    assert alert["kind"] == "run_failed" and "step 'ingest' failed: SourceFileError" in alert["summary"]


def test_failure_summary_takes_the_steps_last_exception_line():
    from pipelines.run_local import _failure_summary

    lines = [
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "    components.transformation.transform.TransformError: dbt build failed: 1 failing nodes",
        "\x1b[91mERROR\x1b[0m - Task 'transform' finished with status FAILURE",
    ]
    message = "Pipeline 'churn-training' finished with status FAILURE. Inner task failed: \x1b[96m'transform'"
    assert (
        _failure_summary(message, lines)
        == "step 'transform' failed: TransformError: dbt build failed: 1 failing nodes"
    )
