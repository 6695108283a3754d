"""The local runner checks the profile's services first and names the ones that do not answer."""

from __future__ import annotations

import os
import socket

import pytest

from components.settings import get_settings
from pipelines.cli import main
from pipelines.run_local import ServicesUnavailable, require_services, run_local, service_endpoints


@pytest.fixture
def stack_on_closed_ports(monkeypatch, tmp_path):
    """`stack` settings whose every service is on a loopback port nothing listens on."""
    for name in [name for name in os.environ if name.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free again once closed: nothing listens there
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv(
        "LAKEHOUSE_CATALOG_URI", f"postgresql+psycopg2://lakehouse@127.0.0.1:{port}/iceberg_catalog"
    )
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
        "Iceberg catalog (PostgreSQL)",
        "S3",
        "MLflow",
        "Redis",
        "Trino",
    }
    with pytest.raises(ServicesUnavailable) as raised:
        run_local(settings)
    message = str(raised.value)
    for name in ("PostgreSQL", "S3", "MLflow", "Redis", "Trino"):
        assert f"{name}" in message
    assert f"127.0.0.1:{stack_on_closed_ports}" in message and "stack.sh up" in message
    assert not (settings.home / "kfp").exists(), "nothing ran"


def test_cli_run_reports_a_stopped_stack(stack_on_closed_ports, capsys):
    assert main(["run", "--profile", "stack"]) == 2
    assert "no answer from Iceberg catalog (PostgreSQL)" in capsys.readouterr().err


def test_cli_serve_checks_only_what_the_model_server_talks_to(stack_on_closed_ports, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    assert main(["serve", "--profile", "stack"]) == 2
    err = capsys.readouterr().err
    assert "no answer from MLflow" in err and "Redis" in err
    for unused in ("PostgreSQL", "S3", "Trino", "credentials"):
        assert unused not in err


def test_stack_without_s3_keys_is_refused(stack_on_closed_ports, monkeypatch):
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    with pytest.raises(ServicesUnavailable, match="without credentials .*AWS_SECRET_ACCESS_KEY not set"):
        require_services(get_settings("stack"))
