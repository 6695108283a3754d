"""Fast checks of the stack scripts without the services: ports, failed starts, stopping, downloads."""

from __future__ import annotations

import hashlib
import http.server
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.local import builds, stack
from infrastructure.local.config import StackConfigError, load_config
from infrastructure.local.downloads import DownloadError, cached_download
from infrastructure.local.object_store import ObjectStore
from infrastructure.local.procs import PidFile, ProcessRecord, family, spawn, start_ticks, stop
from infrastructure.local.service import Launch, Service, ServiceError, own, unprivileged_user
from infrastructure.local.trino_server import Trino

REPO = Path(__file__).resolve().parents[2]
STACK_SH = REPO / "infrastructure" / "local" / "stack.sh"


class ShellService(Service):
    """A stand-in server: a shell script with a port of its own and a health check that may never pass."""

    name = "broken"
    port_variable = "STACK_BROKEN_PORT"

    def __init__(self, config, script: str, port: int, healthy: bool = False) -> None:
        super().__init__(config)
        self.script, self._port, self.healthy = script, port, healthy

    @property
    def port(self) -> int:
        return self._port

    def launch(self) -> Launch:
        return Launch(command=["sh", "-c", self.script])

    def check(self) -> str:
        if not self.healthy:
            raise ServiceError("not answering")
        return "ok"


def _alive(pid: int, ticks: int) -> bool:
    return start_ticks(pid) == ticks


def test_port_taken_is_reported_before_anything_starts(stack_env: dict[str, str]) -> None:
    port = int(stack_env["STACK_REDIS_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        done = subprocess.run(
            [str(STACK_SH), "up"], env={**os.environ, **stack_env}, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == stack.EXIT_PORT_TAKEN, done.stdout + done.stderr
    assert f"port {port} wanted by redis is already in use" in done.stdout
    assert "STACK_REDIS_PORT" in done.stdout
    assert "nothing was started" in done.stdout
    home = Path(stack_env["STACK_HOME"])
    assert not list((home / "run").glob("*.pid"))
    assert not (home / "postgres").exists(), "postgres was prepared although a port was taken"


def test_failing_start_prints_the_log_tail_and_the_port(stack_env, capsys) -> None:
    config = load_config()
    script = "for i in $(seq 1 45); do echo boot line $i; done; echo 'fatal: cannot open socket'; exit 3"
    service = ShellService(config, script, port=int(stack_env["STACK_PG_PORT"]))
    assert stack.up(config, [service]) == stack.EXIT_FAILED
    out = capsys.readouterr().out
    assert f"broken (port {service.port}) exited during start-up" in out
    assert "fatal: cannot open socket" in out
    assert "boot line 45" in out and "boot line 17" in out
    assert "boot line 16\n" not in out, "more than the last 30 lines were printed"
    assert PidFile(config.run, "broken").read() is None


def test_unhealthy_start_times_out_and_leaves_no_process(stack_env, capsys) -> None:
    config = load_config({**stack_env, "STACK_START_TIMEOUT": "1"})
    script, port = "echo waiting forever; exec sleep 300", int(stack_env["STACK_S3_PORT"])
    service = ShellService(config, script, port=port)
    assert stack.up(config, [service]) == stack.EXIT_FAILED
    out = capsys.readouterr().out
    assert f"broken (port {service.port}) was not healthy within 1 s" in out
    assert "waiting forever" in out
    leftovers = subprocess.run(["pgrep", "-f", "exec sleep 300"], capture_output=True, text=True).stdout
    assert leftovers.strip() == ""


def test_up_twice_and_down_twice_with_a_healthy_service(stack_env, capsys) -> None:
    config = load_config()
    service = ShellService(config, "exec sleep 300", port=int(stack_env["STACK_S3_PORT"]), healthy=True)
    assert stack.up(config, [service]) == stack.EXIT_OK
    record = PidFile(config.run, "broken").read()
    assert record is not None and _alive(record.pid, record.start_ticks)
    assert stack.up(config, [service]) == stack.EXIT_OK
    assert "already running" in capsys.readouterr().out
    assert PidFile(config.run, "broken").read() == record
    assert stack.down(config, [service]) == stack.EXIT_OK
    assert not _alive(record.pid, record.start_ticks)
    assert stack.down(config, [service]) == stack.EXIT_OK
    assert "not running" in capsys.readouterr().out


def test_down_and_status_when_nothing_runs(stack_env: dict[str, str]) -> None:
    env = {**os.environ, **stack_env}
    down = subprocess.run([str(STACK_SH), "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.count("not running") == len(stack.SERVICE_CLASSES)
    status = subprocess.run([str(STACK_SH), "status"], env=env, capture_output=True, text=True, timeout=60)
    assert status.returncode == stack.EXIT_NOT_HEALTHY
    assert status.stdout.count("stopped") == len(stack.SERVICE_CLASSES)


def test_stop_reaches_children_outside_the_process_group(tmp_path: Path) -> None:
    """A child in a session of its own (like a PostgreSQL backend) escapes the group signal: SIGKILL."""
    script = "sleep 301 & setsid sleep 302 & wait"
    pid = spawn(["sh", "-c", script], tmp_path / "fam.log")
    time.sleep(0.5)
    members = family(pid)
    assert len(members) == 3, members
    record = ProcessRecord(pid=pid, start_ticks=start_ticks(pid), port=0, command=["sh"])
    assert stop(record, grace=1) == "killed"
    assert not [p for p, ticks in members.items() if _alive(p, ticks)]


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    pid = spawn([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                 "print('ready', flush=True); time.sleep(300)"], tmp_path / "stubborn.log")  # fmt: skip
    deadline = time.monotonic() + 10
    while "\nready" not in (tmp_path / "stubborn.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    record = ProcessRecord(pid=pid, start_ticks=start_ticks(pid), port=0, command=["python"])
    assert stop(record, signal.SIGTERM, grace=0.5) == "killed"
    assert not _alive(record.pid, record.start_ticks)


def test_stale_pid_file_is_discarded(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path, "trino")
    pidfile.write(ProcessRecord(pid=os.getpid(), start_ticks=1, port=8085, command=["java"]))
    assert pidfile.alive() is None
    assert not pidfile.path.exists()


def test_config_rejects_bad_and_shared_ports(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match="STACK_PG_PORT must be a TCP port number"):
        load_config({"STACK_PG_PORT": "fivefive"})
    with pytest.raises(StackConfigError, match="trino and postgres are both configured on port 5432"):
        load_config({"STACK_PG_PORT": "5432", "STACK_TRINO_PORT": "5432"})
    with pytest.raises(StackConfigError, match="STACK_CATALOG_TOKEN_TTL must be a whole number"):
        load_config({"STACK_CATALOG_TOKEN_TTL": "soon"})
    dev = load_config({"STACK_HOME": str(tmp_path)})
    assert dev.dev_credentials and dev.home == tmp_path
    given = {"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk"}
    given |= {"LAKEHOUSE_CATALOG_CLIENT_ID": "ci", "LAKEHOUSE_CATALOG_CLIENT_SECRET": "cs"}
    own = load_config({**given, "STACK_HOME": str(tmp_path)})
    assert not own.dev_credentials and own.catalog_properties()["s3.access-key-id"] == "ak"
    assert own.catalog_properties()["credential"] == "ci:cs"


def test_development_keys_are_generated_once_per_machine_and_kept_private(tmp_path: Path, capsys) -> None:
    env = {"STACK_HOME": str(tmp_path)}
    first, other_machine = load_config(env), load_config({"STACK_HOME": str(tmp_path / "elsewhere")})
    assert first.access_key != other_machine.access_key, "keys are random, not fixed in code"
    assert len(first.secret_key) >= 30 and len(first.catalog_client_secret) >= 30
    first.env_file.parent.mkdir(parents=True, exist_ok=True)
    first.env_file.write_text("# a copy someone left readable\n")
    first.env_file.chmod(0o644)
    stack.write_env_file(first)
    assert stat.S_IMODE(first.env_file.stat().st_mode) == 0o600, "rewritten readable by its owner only"
    again = load_config(env)
    assert (again.access_key, again.secret_key) == (first.access_key, first.secret_key)
    assert again.catalog_client_secret == first.catalog_client_secret
    text = first.env_file.read_text()
    assert f"AWS_SECRET_ACCESS_KEY={first.secret_key}\n" in text
    assert f"LAKEHOUSE_CATALOG_URI={first.catalog_url}\n" in text
    # keys given in the environment win over the stored ones
    given = load_config({**env, "AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk-given"})
    assert (given.access_key, given.catalog_client_secret) == ("ak", first.catalog_client_secret)
    assert stack.print_env(again) == stack.EXIT_OK
    assert f"export LAKEHOUSE_CATALOG_CLIENT_SECRET={first.catalog_client_secret}" in capsys.readouterr().out


def test_trino_catalog_file_names_the_rest_catalog(stack_env: dict[str, str]) -> None:
    config = load_config()
    trino = Trino(config)
    trino._write_config()
    catalog = trino.etc / "catalog" / "lakehouse.properties"
    text = catalog.read_text()
    assert "iceberg.catalog.type=rest\n" in text
    assert f"iceberg.rest-catalog.uri=http://127.0.0.1:{config.rest_port}\n" in text
    assert "iceberg.rest-catalog.security=OAUTH2\n" in text
    assert "iceberg.rest-catalog.oauth2.scope=PRINCIPAL_ROLE:ALL\n" in text
    assert "iceberg.rest-catalog.vended-credentials-enabled=false\n" in text
    assert f"s3.endpoint=http://127.0.0.1:{config.s3_port}\n" in text
    assert stat.S_IMODE(catalog.stat().st_mode) == 0o600, "the catalog file holds S3 keys and a client secret"


def test_minio_without_go_says_what_to_install(stack_env, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("STACK_GO", str(tmp_path / "no-such-go"))
    config = load_config()
    assert stack.up(config, [ObjectStore(config)]) == stack.EXIT_FAILED
    out = capsys.readouterr().out
    assert f"s3 (port {config.s3_port}) could not be prepared: no Go toolchain found" in out
    assert "install Go 1.24 or newer" in out


def test_minio_on_a_full_disk_says_how_much_room_it_needs(stack_env, monkeypatch, capsys) -> None:
    monkeypatch.setattr(builds, "GO_BUILD_FREE_BYTES", 1 << 60)
    config = load_config()
    assert stack.up(config, [ObjectStore(config)]) == stack.EXIT_FAILED
    out = capsys.readouterr().out
    assert "not enough disk space to build minio" in out and "MiB free in" in out


def test_minio_build_failure_shows_the_build_log(stack_env, tmp_path, monkeypatch, capsys) -> None:
    """A toolchain that fails the way `go install` does on a full disk: the log tail and the cause."""
    go = tmp_path / "go"
    failure = "echo 'compile: write /tmp/b001/_pkg_.a: no space left on device'; exit 1"
    go.write_text(f'#!/bin/sh\n[ "$1" = env ] && exit 0\n{failure}\n')
    go.chmod(0o755)
    monkeypatch.setenv("STACK_GO", str(go))
    config = load_config()
    assert stack.up(config, [ObjectStore(config)]) == stack.EXIT_FAILED
    out = capsys.readouterr().out
    assert "building minio (github.com/minio/minio@" in out and "failed with exit code 1" in out
    assert "(the disk is full: free some space)" in out
    assert "no space left on device" in out and "minio-build.log" in out


@pytest.fixture
def artifact_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a folder, standing in for a Maven repository."""
    root = tmp_path / "repo"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_download_is_verified_and_cached(artifact_server, tmp_path: Path) -> None:
    base, root = artifact_server
    payload = b"jar bytes" * 1000
    (root / "a.jar").write_bytes(payload)
    (root / "a.jar.sha1").write_text(hashlib.sha1(payload).hexdigest() + "  a.jar\n")
    (root / "bad.jar").write_bytes(payload)
    (root / "bad.jar.sha1").write_text("0" * 40)
    cache, lines = tmp_path / "cache", []
    first = cached_download(f"{base}/a.jar", cache, lines.append)
    assert first.read_bytes() == payload and len(lines) == 2
    (root / "a.jar").unlink()  # a second call must not go to the network
    assert cached_download(f"{base}/a.jar", cache, lines.append) == first and len(lines) == 2
    with pytest.raises(DownloadError, match="does not match the published"):
        cached_download(f"{base}/bad.jar", cache, lines.append)
    assert sorted(p.name for p in cache.iterdir()) == ["a.jar"]


@pytest.mark.skipif(os.geteuid() != 0, reason="servers switch to an unprivileged user only under root")
def test_private_stack_home_is_reported_before_initdb(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    user = unprivileged_user("postgres")
    with pytest.raises(ServiceError, match=f"user {user} cannot reach .*choose a STACK_HOME"):
        own(tmp_path / "stack" / "postgres", user)


def test_env_points_clients_at_the_configured_ports(stack_env: dict[str, str], capsys) -> None:
    assert stack.main(["env"]) == 0
    out = capsys.readouterr().out
    rest, s3 = stack_env["STACK_REST_PORT"], stack_env["STACK_S3_PORT"]
    assert f"export LAKEHOUSE_CATALOG_URI=http://127.0.0.1:{rest}\n" in out
    assert "export LAKEHOUSE_CATALOG_TYPE=rest\n" in out
    assert f"export LAKEHOUSE_S3_ENDPOINT=http://127.0.0.1:{s3}" in out
    assert f"export MLFLOW_S3_ENDPOINT_URL=http://127.0.0.1:{s3}" in out
